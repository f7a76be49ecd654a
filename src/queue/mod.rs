//! The durable job queue: sled trees under `<state_dir>/queue`.
//!
//! Layout (all keys big-endian so byte order is numeric order):
//! - `jobs`: id → the [`Job`] record (JSON).
//! - `ready/<kind>`: (run_at ms, id) → nothing. Ready when `run_at` has passed, delayed before.
//! - `leased`: id → lease expiry ms. A lease outlives neither its worker nor its timeout.
//! - `dead`: id → nothing; the record stays in `jobs` with its last error.
//! - `dedup`: key → id, while the job is pending (ready, delayed or leased).
//!
//! Every state change is one sled transaction over the trees it touches; enqueue flushes to
//! disk before it returns. Delivery is at-least-once: handlers must be idempotent.

pub mod control;
pub mod worker;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// What a job does. The order of [`JobKind::BY_PRIORITY`] is the leasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Generate an AI summary of a thread (high priority).
    Summary,
    /// Process an uploaded image (normal priority).
    Image,
    /// Send an email (low priority).
    Email,
}

impl JobKind {
    /// Every kind, highest priority first.
    pub const BY_PRIORITY: [Self; 3] = [Self::Summary, Self::Image, Self::Email];

    /// The kind's name in metrics, logs and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Image => "image",
            Self::Email => "email",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::BY_PRIORITY.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl crate::config::QueueConfig {
    /// Jobs of `kind` run at once.
    pub fn concurrency(&self, kind: JobKind) -> usize {
        match kind {
            JobKind::Summary => self.summary_concurrency,
            JobKind::Image => self.image_concurrency,
            JobKind::Email => self.email_concurrency,
        }
    }

    /// Attempts a job of `kind` gets.
    pub fn max_attempts(&self, kind: JobKind) -> u32 {
        match kind {
            JobKind::Summary => self.summary_max_attempts,
            JobKind::Image => self.image_max_attempts,
            JobKind::Email => self.email_max_attempts,
        }
    }
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique, increasing id.
    pub id: u64,
    /// What the job does.
    pub kind: JobKind,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Attempts started so far (a leased job counts its current attempt).
    pub attempts: u32,
    /// Attempts allowed before the job is dead-lettered.
    pub max_attempts: u32,
    /// At most one pending job per key.
    pub dedup_key: Option<String>,
    /// The W3C `traceparent` of the request that enqueued the job.
    pub traceparent: Option<String>,
    /// When the job was enqueued, ms since the epoch.
    pub enqueued_at_ms: u64,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker.
    Ready,
    /// Waiting for its retry time.
    Delayed,
    /// Held by a worker.
    Leased,
    /// Out of attempts; kept for an operator.
    Dead,
}

impl JobState {
    /// Every state, for metrics.
    pub const ALL: [Self; 4] = [Self::Ready, Self::Delayed, Self::Leased, Self::Dead];

    /// The state's name in metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Delayed => "delayed",
            Self::Leased => "leased",
            Self::Dead => "dead",
        }
    }
}

/// What to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What the job does.
    pub kind: JobKind,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// At most one pending job per key (e.g. `summary:42:<content hash>`).
    pub dedup_key: Option<String>,
    /// Attempts allowed; `None` takes the kind's configured default.
    pub max_attempts: Option<u32>,
}

impl NewJob {
    /// A job of `kind` with `payload`, no dedup key and the default attempts.
    pub fn new(kind: JobKind, payload: serde_json::Value) -> Self {
        Self { kind, payload, dedup_key: None, max_attempts: None }
    }

    /// Sets the dedup key.
    #[must_use]
    pub fn dedup(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }
}

/// What enqueueing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job with this id.
    New(u64),
    /// A pending job with the same dedup key already exists.
    Duplicate(u64),
}

impl Enqueued {
    /// The id of the job that will do the work.
    pub fn id(self) -> u64 {
        match self {
            Self::New(id) | Self::Duplicate(id) => id,
        }
    }
}

/// Counts of one kind's jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KindStats {
    /// Ready now.
    pub ready: u64,
    /// Waiting for a retry time.
    pub delayed: u64,
    /// Held by workers.
    pub leased: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Age of the oldest ready job in seconds (how long it has been ready).
    pub oldest_ready_seconds: f64,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// sled failed (I/O, corruption).
    #[error("job queue storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored record does not decode.
    #[error("job queue record {id}: {source}")]
    Corrupt {
        /// The job id.
        id: u64,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// No job with that id is in the state the operation needs.
    #[error("no {state} job with id {id}")]
    NotFound {
        /// The job id.
        id: u64,
        /// The state looked in.
        state: &'static str,
    },
    /// The queue directory is held by another process (a running daemon).
    #[error("the job queue at {path} is in use by another process (is agora running?)")]
    Locked {
        /// The queue directory.
        path: String,
    },
}

impl QueueError {
    /// Whether the queue's disk is full (its write was refused with ENOSPC).
    pub fn disk_full(&self) -> bool {
        match self {
            Self::Storage(sled::Error::Io(err)) => {
                err.kind() == std::io::ErrorKind::StorageFull || err.raw_os_error() == Some(libc::ENOSPC)
            }
            _ => false,
        }
    }
}

impl From<QueueError> for crate::error::AppError {
    #[track_caller]
    fn from(err: QueueError) -> Self {
        use crate::error::{AppError, ErrorCode};
        let (code, detail) = if err.disk_full() {
            (
                ErrorCode::InsufficientStorage,
                "the job queue's disk is full: nothing was written; writes work again once space is freed",
            )
        } else {
            (ErrorCode::InternalError, "internal error")
        };
        AppError { source: Some(Box::new(err)), ..AppError::new(code, detail) }
    }
}

impl From<TransactionError<QueueError>> for QueueError {
    fn from(err: TransactionError<QueueError>) -> Self {
        match err {
            TransactionError::Abort(inner) => inner,
            TransactionError::Storage(inner) => Self::Storage(inner),
        }
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<QueueError>>;

/// The queue's trees.
#[derive(Clone)]
pub struct Queue {
    db: sled::Db,
    flusher: GroupCommit,
    jobs: sled::Tree,
    ready: BTreeMap<JobKind, sled::Tree>,
    leased: sled::Tree,
    dead: sled::Tree,
    dedup: sled::Tree,
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ready_key(run_at_ms: u64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&run_at_ms.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn split_ready_key(key: &[u8]) -> Option<(u64, u64)> {
    let run_at = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let id = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    Some((run_at, id))
}

fn id_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(..8)?.try_into().ok()?))
}

fn decode(id: u64, bytes: &[u8]) -> Result<Job, QueueError> {
    serde_json::from_slice(bytes).map_err(|source| QueueError::Corrupt { id, source })
}

fn encode(job: &Job) -> Vec<u8> {
    // A Job is plain data (no maps with non-string keys): serializing cannot fail.
    serde_json::to_vec(job).unwrap_or_default()
}

fn abort(err: QueueError) -> ConflictableTransactionError<QueueError> {
    ConflictableTransactionError::Abort(err)
}

impl Queue {
    /// Opens (creating) the queue at `dir` with sled's default page cache (1 GiB at most).
    pub fn open(dir: &Path) -> Result<Self, QueueError> {
        Self::open_with_cache(dir, 1024)
    }

    /// Opens (creating) the queue at `dir`, keeping at most `cache_mib` of its pages in memory.
    pub fn open_with_cache(dir: &Path, cache_mib: u64) -> Result<Self, QueueError> {
        let config = sled::Config::new().path(dir).cache_capacity(cache_mib.saturating_mul(1024 * 1024));
        let db = config.open().map_err(|err| match err {
            // sled wraps the failed flock in an io::Error of its own whose text names it.
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.raw_os_error() == Some(libc::EWOULDBLOCK)
                    || io.to_string().contains("could not acquire lock") =>
            {
                QueueError::Locked { path: dir.display().to_string() }
            }
            other => QueueError::Storage(other),
        })?;
        let mut ready = BTreeMap::new();
        for kind in JobKind::BY_PRIORITY {
            ready.insert(kind, db.open_tree(format!("ready/{}", kind.as_str()))?);
        }
        Ok(Self {
            flusher: GroupCommit::new(db.clone()),
            jobs: db.open_tree("jobs")?,
            leased: db.open_tree("leased")?,
            dead: db.open_tree("dead")?,
            dedup: db.open_tree("dedup")?,
            ready,
            db,
        })
    }

    fn ready_tree(&self, kind: JobKind) -> &sled::Tree {
        // Every kind's tree is opened in `open`.
        &self.ready[&kind]
    }

    /// Adds a job, durable on disk before this returns. With a dedup key that a pending job
    /// already holds, nothing is added and that job's id is returned.
    pub async fn enqueue(
        &self,
        new: NewJob,
        default_attempts: u32,
        traceparent: Option<String>,
    ) -> Result<Enqueued, QueueError> {
        let outcome = self.off_runtime(move |queue| queue.insert(new, default_attempts, traceparent)).await?;
        if matches!(outcome, Enqueued::New(_)) {
            self.flusher.flush().await?;
        }
        Ok(outcome)
    }

    /// Runs `work` on the blocking pool: a sled call may wait on the disk, and must not hold
    /// an async worker thread while it does.
    pub async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Queue) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        let queue = self.clone();
        tokio::task::spawn_blocking(move || work(&queue))
            .await
            .map_err(|err| QueueError::Storage(sled::Error::Io(std::io::Error::other(err.to_string()))))?
    }

    fn insert(&self, new: NewJob, default_attempts: u32, traceparent: Option<String>) -> Result<Enqueued, QueueError> {
        let id = self.db.generate_id()? + 1;
        let now = now_ms();
        let job = Job {
            id,
            kind: new.kind,
            payload: new.payload,
            attempts: 0,
            max_attempts: new.max_attempts.unwrap_or(default_attempts).max(1),
            dedup_key: new.dedup_key,
            traceparent,
            enqueued_at_ms: now,
            last_error: None,
        };
        let record = encode(&job);
        let ready = self.ready_tree(job.kind);
        let outcome = (&self.jobs, ready, &self.dedup).transaction(|(jobs, ready, dedup)| -> TxResult<Enqueued> {
            if let Some(key) = &job.dedup_key {
                if let Some(existing) = dedup.get(key.as_bytes())?.as_deref().and_then(id_of) {
                    return Ok(Enqueued::Duplicate(existing));
                }
                dedup.insert(key.as_bytes(), &id.to_be_bytes())?;
            }
            jobs.insert(&id.to_be_bytes(), record.clone())?;
            ready.insert(&ready_key(now, id), &[])?;
            Ok(Enqueued::New(id))
        })?;
        Ok(outcome)
    }

    /// Adds many jobs with one flush to disk (a fan-out, a backfill): each is durable when this
    /// returns. Dedup keys apply as in [`Queue::enqueue`].
    pub async fn enqueue_many(
        &self,
        batch: Vec<NewJob>,
        default_attempts: impl Fn(JobKind) -> u32,
        traceparent: Option<String>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let batch: Vec<(NewJob, u32)> = batch
            .into_iter()
            .map(|new| {
                let attempts = default_attempts(new.kind);
                (new, attempts)
            })
            .collect();
        let outcomes = self
            .off_runtime(move |queue| {
                batch
                    .into_iter()
                    .map(|(new, attempts)| queue.insert(new, attempts, traceparent.clone()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        if outcomes.iter().any(|o| matches!(o, Enqueued::New(_))) {
            self.flusher.flush().await?;
        }
        Ok(outcomes)
    }

    /// Leases the first ready job of `kind` until `now + visibility`, counting an attempt.
    pub fn lease(&self, kind: JobKind, visibility: Duration) -> Result<Option<Job>, QueueError> {
        let ready = self.ready_tree(kind);
        let now = now_ms();
        loop {
            let Some((key, _)) = ready.first()? else { return Ok(None) };
            let Some((run_at, id)) = split_ready_key(&key) else {
                ready.remove(key)?;
                continue;
            };
            if run_at > now {
                return Ok(None);
            }
            let expiry = now.saturating_add(u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX));
            let leased =
                (&self.jobs, ready, &self.leased).transaction(|(jobs, ready, leased)| -> TxResult<Option<Job>> {
                    // Another worker may have taken it between `first` and here.
                    if ready.remove(&key)?.is_none() {
                        return Ok(None);
                    }
                    let Some(bytes) = jobs.get(id.to_be_bytes())? else { return Ok(None) };
                    let mut job = decode(id, &bytes).map_err(abort)?;
                    job.attempts += 1;
                    jobs.insert(&id.to_be_bytes(), encode(&job))?;
                    leased.insert(&id.to_be_bytes(), &expiry.to_be_bytes())?;
                    Ok(Some(job))
                })?;
            if leased.is_some() {
                return Ok(leased);
            }
        }
    }

    /// The job finished: it is gone (and its dedup key is free again).
    pub fn complete(&self, job: &Job) -> Result<(), QueueError> {
        (&self.jobs, &self.leased, &self.dedup).transaction(|(jobs, leased, dedup)| -> TxResult<()> {
            jobs.remove(&job.id.to_be_bytes())?;
            leased.remove(&job.id.to_be_bytes())?;
            if let Some(key) = &job.dedup_key {
                dedup.remove(key.as_bytes())?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The attempt failed: back to the ready tree at `retry_at_ms`, or dead when `retry_at_ms`
    /// is `None`.
    pub fn fail(&self, job: &Job, error: &str, retry_at_ms: Option<u64>) -> Result<(), QueueError> {
        let mut updated = job.clone();
        updated.last_error = Some(error.chars().take(2000).collect());
        let record = encode(&updated);
        let ready = self.ready_tree(job.kind);
        (&self.jobs, ready, &self.leased, &self.dead, &self.dedup).transaction(
            |(jobs, ready, leased, dead, dedup)| -> TxResult<()> {
                jobs.insert(&job.id.to_be_bytes(), record.clone())?;
                leased.remove(&job.id.to_be_bytes())?;
                match retry_at_ms {
                    Some(at) => {
                        ready.insert(&ready_key(at, job.id), &[])?;
                    }
                    None => {
                        dead.insert(&job.id.to_be_bytes(), &[])?;
                        if let Some(key) = &job.dedup_key {
                            dedup.remove(key.as_bytes())?;
                        }
                    }
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Puts leased jobs whose lease expired before `now_ms` (every leased job when `all`: at
    /// start, no worker holds any) back in the ready tree, ready at once, skipping `held`.
    /// Returns how many were released.
    pub fn release_expired(&self, now_ms: u64, all: bool, held: &dyn Fn(u64) -> bool) -> Result<usize, QueueError> {
        let mut released = 0;
        for entry in &self.leased {
            let (key, expiry) = entry?;
            let (Some(id), Some(expiry)) = (id_of(&key), id_of(&expiry)) else { continue };
            if (!all && expiry > now_ms) || held(id) {
                continue;
            }
            let Some(bytes) = self.jobs.get(key)? else {
                self.leased.remove(id.to_be_bytes())?;
                continue;
            };
            let job = decode(id, &bytes)?;
            let ready = self.ready_tree(job.kind);
            (ready, &self.leased).transaction(|(ready, leased)| -> TxResult<()> {
                if leased.remove(&id.to_be_bytes())?.is_some() {
                    ready.insert(&ready_key(now_ms, id), &[])?;
                }
                Ok(())
            })?;
            released += 1;
        }
        Ok(released)
    }

    /// Moves a dead job back to ready with fresh attempts.
    pub fn retry_dead(&self, id: u64) -> Result<(), QueueError> {
        let bytes = match (self.dead.get(id.to_be_bytes())?, self.jobs.get(id.to_be_bytes())?) {
            (Some(_), Some(bytes)) => bytes,
            _ => return Err(QueueError::NotFound { id, state: "dead" }),
        };
        let mut job = decode(id, &bytes)?;
        job.attempts = 0;
        let record = encode(&job);
        let ready = self.ready_tree(job.kind);
        (&self.jobs, ready, &self.dead, &self.dedup).transaction(|(jobs, ready, dead, dedup)| -> TxResult<()> {
            if dead.remove(&id.to_be_bytes())?.is_none() {
                return Err(abort(QueueError::NotFound { id, state: "dead" }));
            }
            if let Some(key) = &job.dedup_key {
                dedup.insert(key.as_bytes(), &id.to_be_bytes())?;
            }
            jobs.insert(&id.to_be_bytes(), record.clone())?;
            ready.insert(&ready_key(now_ms(), id), &[])?;
            Ok(())
        })?;
        self.db.flush()?;
        Ok(())
    }

    /// Moves every dead job back to ready. Returns how many.
    pub fn retry_all_dead(&self) -> Result<usize, QueueError> {
        let ids: Vec<u64> = self.dead.iter().keys().filter_map(|k| k.ok().as_deref().and_then(id_of)).collect();
        for id in &ids {
            self.retry_dead(*id)?;
        }
        Ok(ids.len())
    }

    /// Deletes every dead job. Returns how many.
    pub fn purge_dead(&self) -> Result<usize, QueueError> {
        let mut purged = 0;
        for key in self.dead.iter().keys() {
            let key = key?;
            (&self.jobs, &self.dead).transaction(|(jobs, dead)| -> TxResult<()> {
                dead.remove(&key)?;
                jobs.remove(&key)?;
                Ok(())
            })?;
            purged += 1;
        }
        self.db.flush()?;
        Ok(purged)
    }

    /// Up to `limit` jobs in `state`, oldest first, with their run time for ready/delayed ones.
    pub fn list(&self, state: JobState, limit: usize) -> Result<Vec<(Job, JobState)>, QueueError> {
        let now = now_ms();
        let mut out = Vec::new();
        let mut push = |id: u64, state: JobState| -> Result<bool, QueueError> {
            if let Some(bytes) = self.jobs.get(id.to_be_bytes())? {
                out.push((decode(id, &bytes)?, state));
            }
            Ok(out.len() < limit)
        };
        match state {
            JobState::Ready | JobState::Delayed => {
                'kinds: for kind in JobKind::BY_PRIORITY {
                    for key in self.ready_tree(kind).iter().keys() {
                        let Some((run_at, id)) = split_ready_key(&key?) else { continue };
                        let this = if run_at > now { JobState::Delayed } else { JobState::Ready };
                        if this == state && !push(id, this)? {
                            break 'kinds;
                        }
                    }
                }
            }
            JobState::Leased | JobState::Dead => {
                let tree = if state == JobState::Leased { &self.leased } else { &self.dead };
                for key in tree.iter().keys() {
                    let Some(id) = id_of(&key?) else { continue };
                    if !push(id, state)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Counts by kind and state. Ready trees are scanned from their delayed end, so the cost
    /// is the number of delayed jobs, not of all jobs; leased and dead are read in full (few).
    pub fn stats(&self) -> Result<BTreeMap<JobKind, KindStats>, QueueError> {
        let now = now_ms();
        let mut stats: BTreeMap<JobKind, KindStats> =
            JobKind::BY_PRIORITY.into_iter().map(|kind| (kind, KindStats::default())).collect();
        for kind in JobKind::BY_PRIORITY {
            let tree = self.ready_tree(kind);
            let entry = stats.entry(kind).or_default();
            let total = tree.len() as u64;
            let delayed = tree.range(ready_key(now.saturating_add(1), 0)..).count() as u64;
            entry.delayed = delayed;
            entry.ready = total.saturating_sub(delayed);
            if let Some((key, _)) = tree.first()?
                && let Some((run_at, _)) = split_ready_key(&key)
                && run_at <= now
            {
                entry.oldest_ready_seconds = (now - run_at) as f64 / 1000.0;
            }
        }
        for (tree, dead) in [(&self.leased, false), (&self.dead, true)] {
            for key in tree.iter().keys() {
                let Some(bytes) = self.jobs.get(key?)? else { continue };
                let Ok(job) = serde_json::from_slice::<Job>(&bytes) else { continue };
                let entry = stats.entry(job.kind).or_default();
                if dead {
                    entry.dead += 1;
                } else {
                    entry.leased += 1;
                }
            }
        }
        Ok(stats)
    }

    /// Reads the head of every ready tree: fails when the storage does.
    pub fn check(&self) -> Result<(), QueueError> {
        for tree in self.ready.values() {
            tree.first()?;
        }
        Ok(())
    }

    /// Whether a job holding `dedup_key` is pending (ready, delayed or leased).
    pub fn is_pending(&self, dedup_key: &str) -> Result<bool, QueueError> {
        Ok(self.dedup.contains_key(dedup_key.as_bytes())?)
    }

    /// Bytes the queue occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Writes every tree as JSON lines (`{"tree", "key", "value"}`, base64) to `out`, one tree
    /// after the other; returns the number of entries. [`Queue::import`] repairs what changed
    /// between trees while the export ran.
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<u64, QueueError> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut trees: Vec<(String, &sled::Tree)> = vec![
            ("jobs".to_owned(), &self.jobs),
            ("leased".to_owned(), &self.leased),
            ("dead".to_owned(), &self.dead),
            ("dedup".to_owned(), &self.dedup),
        ];
        for (kind, tree) in &self.ready {
            trees.push((format!("ready/{}", kind.as_str()), tree));
        }
        let mut count = 0;
        for (name, tree) in trees {
            for entry in tree.iter() {
                let (key, value) = entry?;
                let line =
                    serde_json::json!({"tree": name, "key": engine.encode(&key), "value": engine.encode(&value)});
                writeln!(out, "{line}").map_err(|err| QueueError::Storage(sled::Error::Io(err)))?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Loads an [`Queue::export`] into this (empty) queue. Leased jobs come back ready, index
    /// entries whose job is missing are dropped, and jobs in no state are made ready.
    pub fn import(&self, input: &mut dyn std::io::BufRead) -> Result<u64, QueueError> {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let bad = |reason: String| QueueError::Storage(sled::Error::Unsupported(format!("queue export: {reason}")));
        let mut count = 0;
        for line in std::io::BufRead::lines(&mut *input) {
            let line = line.map_err(|err| QueueError::Storage(sled::Error::Io(err)))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry: serde_json::Value = serde_json::from_str(&line).map_err(|err| bad(err.to_string()))?;
            let field = |name: &str| -> Result<Vec<u8>, QueueError> {
                let text = entry[name].as_str().ok_or_else(|| bad(format!("no `{name}`")))?;
                engine.decode(text).map_err(|err| bad(err.to_string()))
            };
            let (key, value) = (field("key")?, field("value")?);
            match entry["tree"].as_str().unwrap_or_default() {
                "jobs" => self.jobs.insert(key, value).map(|_| ())?,
                "dead" => self.dead.insert(key, value).map(|_| ())?,
                "dedup" => self.dedup.insert(key, value).map(|_| ())?,
                // A lease ends with the process that held it: the job is made ready below.
                "leased" => {}
                name => {
                    let kind = name.strip_prefix("ready/").and_then(JobKind::parse);
                    let tree = kind.map(|k| self.ready_tree(k)).ok_or_else(|| bad(format!("unknown tree `{name}`")))?;
                    tree.insert(key, value)?;
                }
            }
            count += 1;
        }
        // Reconcile: every job in exactly one place, every index entry pointing at a job.
        let mut placed = std::collections::HashSet::new();
        for tree in self.ready.values() {
            for key in tree.iter().keys() {
                let key = key?;
                match split_ready_key(&key) {
                    Some((_, id)) if self.jobs.contains_key(id.to_be_bytes())? && placed.insert(id) => {}
                    _ => {
                        tree.remove(&key)?;
                    }
                }
            }
        }
        for key in self.dead.iter().keys() {
            let key = key?;
            match id_of(&key) {
                Some(id) if self.jobs.contains_key(key.clone())? && placed.insert(id) => {}
                _ => {
                    self.dead.remove(&key)?;
                }
            }
        }
        let now = now_ms();
        for entry in self.jobs.iter() {
            let (key, bytes) = entry?;
            let Some(id) = id_of(&key) else { continue };
            if !placed.contains(&id) {
                let job = decode(id, &bytes)?;
                self.ready_tree(job.kind).insert(ready_key(now, id), &[])?;
            }
        }
        for entry in self.dedup.iter() {
            let (key, id) = entry?;
            let live = id_of(&id).is_some_and(|id| self.jobs.contains_key(id.to_be_bytes()).unwrap_or(false))
                && !self.dead.contains_key(&id)?;
            if !live {
                self.dedup.remove(&key)?;
            }
        }
        self.db.flush()?;
        Ok(count)
    }

    /// Whether the queue holds no job at all.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Writes everything to disk, blocking.
    pub fn flush_blocking(&self) -> Result<(), QueueError> {
        self.db.flush()?;
        Ok(())
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), QueueError> {
        self.flusher.flush().await?;
        Ok(())
    }
}

/// Durable writes for many concurrent callers with few fsyncs: a caller whose writes are done
/// asks for a flush; one flush at a time runs (sled's blocking `flush`, on the blocking pool)
/// and answers every caller that asked before it started. (sled 0.34's `flush_async` can
/// deadlock when called concurrently, so it is not used.)
#[derive(Clone)]
struct GroupCommit {
    db: sled::Db,
    state: std::sync::Arc<tokio::sync::Mutex<()>>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl GroupCommit {
    fn new(db: sled::Db) -> Self {
        Self {
            db,
            state: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            generation: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// Returns once every write made before the call is on disk.
    async fn flush(&self) -> Result<(), sled::Error> {
        use std::sync::atomic::Ordering;
        // Flushes that complete after this point started after our writes.
        let seen = self.generation.load(Ordering::Acquire);
        let _turn = self.state.lock().await;
        // A flush that started after we arrived and finished while we waited covers us.
        if self.generation.load(Ordering::Acquire) >= seen + 2 {
            return Ok(());
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        let db = self.db.clone();
        let result = tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|err| sled::Error::Io(std::io::Error::other(err.to_string())))?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result.map(|_| ())
    }
}
