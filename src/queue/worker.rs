//! Running jobs: the producer handle requests use ([`Jobs`]) and the dispatcher that leases
//! jobs by priority, runs them under their enqueuing request's trace, and retries or
//! dead-letters failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Enqueued, Job, JobKind, NewJob, Queue, QueueError, now_ms};
use crate::config::QueueConfig;
use crate::metrics::Metrics;

/// Why an attempt failed.
#[derive(Debug)]
pub enum JobError {
    /// Worth trying again later (a server down, a timeout).
    Retry(String),
    /// Will never succeed (bad payload, the target is gone): dead-letter at once.
    Permanent(String),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retry(message) => write!(f, "{message}"),
            Self::Permanent(message) => write!(f, "permanent: {message}"),
        }
    }
}

/// Runs a job. Handlers must be idempotent: a job may run again after a crash.
pub trait Handler: Send + Sync + 'static {
    /// Does the job's work.
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), JobError>>;
}

/// What requests use to add jobs: durable enqueue, metrics, the enqueuing trace, and a wake-up
/// for the dispatcher.
#[derive(Clone)]
pub struct Jobs {
    queue: Queue,
    config: Arc<QueueConfig>,
    metrics: Metrics,
    wake: Arc<Notify>,
}

struct TraceparentInjector(Option<String>);

impl Injector for TraceparentInjector {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

impl Jobs {
    /// A producer over `queue`.
    pub fn new(queue: Queue, config: Arc<QueueConfig>, metrics: Metrics) -> Self {
        prime_series(&metrics);
        Self { queue, config, metrics, wake: Arc::new(Notify::new()) }
    }

    /// The underlying queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The dispatcher's wake-up, for whoever makes jobs ready outside [`Jobs::enqueue`].
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Adds a job carrying the current span's trace context; durable when this returns.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let kind = job.kind;
        let outcome = self.queue.enqueue(job, self.config.max_attempts(kind), current_traceparent()).await?;
        match outcome {
            Enqueued::New(id) => {
                self.metrics.queue_enqueued.with_label_values(&[kind.as_str()]).inc();
                tracing::debug!(job.id = id, job.kind = kind.as_str(), "job enqueued");
                self.wake.notify_one();
            }
            Enqueued::Duplicate(id) => {
                tracing::debug!(job.id = id, job.kind = kind.as_str(), "job already pending");
            }
        }
        Ok(outcome)
    }
}

impl Jobs {
    /// Adds many jobs with one flush to disk; see [`Queue::enqueue_many`].
    pub async fn enqueue_many(&self, batch: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        let kinds: Vec<JobKind> = batch.iter().map(|job| job.kind).collect();
        let config = self.config.clone();
        let outcomes = self.queue.enqueue_many(batch, |kind| config.max_attempts(kind), current_traceparent()).await?;
        for (kind, outcome) in kinds.iter().zip(&outcomes) {
            if matches!(outcome, Enqueued::New(_)) {
                self.metrics.queue_enqueued.with_label_values(&[kind.as_str()]).inc();
            }
        }
        self.wake.notify_one();
        Ok(outcomes)
    }
}

/// The W3C `traceparent` of the current span, when it is traced.
fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut injector = TraceparentInjector(None);
    TraceContextPropagator::new().inject_context(&context, &mut injector);
    injector.0
}

/// The running dispatcher; [`WorkerHandle::stop`] drains it.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops leasing, waits up to `grace` for running jobs, and leaves unfinished ones leased
    /// (they are handed out again at the next start).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace + Duration::from_secs(1), &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Starts the dispatcher: releases leases a previous process left, then leases and runs jobs.
pub fn start(jobs: &Jobs, handler: Arc<dyn Handler>, grace: Duration) -> Result<WorkerHandle, QueueError> {
    let released = jobs.queue.release_expired(now_ms(), true, &|_| false)?;
    if released > 0 {
        tracing::warn!(released, "jobs leased by a previous run were put back in the queue");
    }
    let (stop, stopped) = watch::channel(false);
    let dispatcher = Dispatcher { jobs: jobs.clone(), handler, running: Arc::new(Mutex::new(HashMap::new())), grace };
    let task = tokio::spawn(dispatcher.run(stopped));
    Ok(WorkerHandle { stop, task })
}

struct Dispatcher {
    jobs: Jobs,
    handler: Arc<dyn Handler>,
    running: Running,
    grace: Duration,
}

/// The jobs this process is running, by id. Entries are removed by [`RunningGuard`], so a
/// panicking handler frees its slot too.
type Running = Arc<Mutex<HashMap<u64, JobKind>>>;

struct RunningGuard {
    running: Running,
    id: u64,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.id);
        }
    }
}

impl Dispatcher {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let config = self.jobs.config.clone();
        let poll = Duration::from_millis(config.poll_interval_ms.max(10));
        let visibility = Duration::from_secs(config.visibility_timeout_seconds.max(1));
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut last_sweep = Instant::now();
        loop {
            if *stopped.borrow() {
                break;
            }
            self.fill(&mut in_flight, visibility).await;
            if last_sweep.elapsed() >= visibility / 2 {
                last_sweep = Instant::now();
                let running = self.running.clone();
                let held = move |id: u64| running.lock().is_ok_and(|set| set.contains_key(&id));
                let swept = self.jobs.queue.off_runtime(move |queue| queue.release_expired(now_ms(), false, &held));
                match swept.await {
                    Ok(0) => {}
                    Ok(released) => tracing::warn!(released, "expired job leases were put back in the queue"),
                    Err(err) => tracing::error!(error = %err, "cannot sweep expired job leases"),
                }
            }
            tokio::select! {
                Some(_) = in_flight.join_next() => {}
                () = self.jobs.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                _ = stopped.changed() => {}
            }
        }
        let running = in_flight.len();
        if running > 0 {
            tracing::info!(running, grace_seconds = self.grace.as_secs(), "waiting for running jobs to finish");
        }
        let drained = tokio::time::timeout(self.grace, async { while in_flight.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = in_flight.len(),
                "jobs still running after the grace period stay leased and run again at the next start"
            );
            in_flight.abort_all();
        }
        if let Err(err) = self.jobs.queue.flush().await {
            tracing::error!(error = %err, "cannot flush the job queue");
        }
    }

    /// Leases jobs while workers are free, always from the highest-priority kind that has a
    /// ready job and a free slot, so a flood of low-priority jobs never delays a summary.
    async fn fill(&self, in_flight: &mut JoinSet<()>, visibility: Duration) {
        let config = self.jobs.config.clone();
        loop {
            let busy: Vec<JobKind> = self.running.lock().map(|r| r.values().copied().collect()).unwrap_or_default();
            if busy.len() >= config.workers.max(1) {
                return;
            }
            let mut leased = None;
            for kind in JobKind::BY_PRIORITY {
                if busy.iter().filter(|k| **k == kind).count() >= config.concurrency(kind) {
                    continue;
                }
                match self.jobs.queue.off_runtime(move |queue| queue.lease(kind, visibility)).await {
                    Ok(Some(job)) => {
                        leased = Some(job);
                        break;
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(error = %err, job.kind = kind.as_str(), "cannot lease a job"),
                }
            }
            let Some(job) = leased else { return };
            if let Ok(mut running) = self.running.lock() {
                running.insert(job.id, job.kind);
            }
            let guard = RunningGuard { running: self.running.clone(), id: job.id };
            in_flight.spawn(execute(self.jobs.clone(), self.handler.clone(), guard, job, visibility));
        }
    }
}

/// Runs one attempt inside a span that continues the enqueuing request's trace, then records
/// the outcome.
async fn execute(jobs: Jobs, handler: Arc<dyn Handler>, _running: RunningGuard, job: Job, visibility: Duration) {
    let kind = job.kind;
    let span = tracing::info_span!(
        "job",
        otel.name = %format!("job {}", kind.as_str()),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job.id = job.id,
        job.kind = kind.as_str(),
        job.attempt = job.attempts,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if let Some(traceparent) = &job.traceparent {
        let carrier = std::collections::HashMap::from([("traceparent".to_owned(), traceparent.clone())]);
        let _ = span.set_parent(TraceContextPropagator::new().extract(&carrier));
    }
    let own = span.context().span().span_context().clone();
    if own.is_valid() {
        span.record("trace_id", own.trace_id().to_string());
        span.record("span_id", own.span_id().to_string());
    }
    let started = Instant::now();
    let result = match tokio::time::timeout(visibility, handler.run(job.clone())).instrument(span.clone()).await {
        Ok(result) => result,
        Err(_) => Err(JobError::Retry(format!("timed out after {} s", visibility.as_secs()))),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = &jobs.metrics;
    let label = kind.as_str();
    // Decide and log inside the job's span; the sled write then runs on the blocking pool.
    let (outcome, retry_at, error) = span.in_scope(|| match result {
        Ok(()) => {
            metrics.queue_completed.with_label_values(&[label]).inc();
            tracing::info!(duration_ms = elapsed * 1000.0, "job completed");
            ("completed", None, None)
        }
        Err(error) => {
            metrics.queue_failed.with_label_values(&[label]).inc();
            let permanent = matches!(error, JobError::Permanent(_));
            let message = error.to_string();
            if permanent || job.attempts >= job.max_attempts {
                span.record("otel.status_code", "error");
                metrics.queue_dead_lettered.with_label_values(&[label]).inc();
                tracing::error!(error = %message, attempts = job.attempts, "job failed for good: moved to dead letters");
                ("dead", None, Some(message))
            } else {
                let delay = backoff(&jobs.config, job.attempts);
                metrics.queue_retried.with_label_values(&[label]).inc();
                tracing::warn!(error = %message, attempts = job.attempts, retry_in_ms = delay.as_millis() as u64, "job failed: will retry");
                let at = now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
                ("retry", Some(at), Some(message))
            }
        }
    });
    let recorded = jobs
        .queue
        .off_runtime(move |queue| match error {
            None => queue.complete(&job),
            Some(message) => queue.fail(&job, &message, retry_at),
        })
        .await
        .map(|()| outcome);
    let outcome = recorded.unwrap_or_else(|err| {
        span.in_scope(
            || tracing::error!(error = %err, "cannot record the job's outcome; it runs again after its lease"),
        );
        "error"
    });
    metrics.queue_job_duration.with_label_values(&[label, outcome]).observe(elapsed);
}

/// The wait before retry number `attempt` (1-based): base × 2^(attempt−1), capped, with
/// "equal jitter" (half fixed, half random) so retries of many jobs spread out.
pub fn backoff(config: &QueueConfig, attempt: u32) -> Duration {
    let base = config.backoff_base_ms.max(1);
    let cap = config.backoff_max_seconds.saturating_mul(1000).max(base);
    let exponential = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30)).min(cap);
    let mut random = [0u8; 8];
    let jitter =
        if getrandom::fill(&mut random).is_ok() { u64::from_le_bytes(random) % (exponential / 2 + 1) } else { 0 };
    Duration::from_millis(exponential / 2 + jitter)
}

/// Refreshes the queue depth, oldest-ready age and storage gauges every `every`.
pub async fn export_stats_periodically(jobs: Jobs, metrics: Metrics, every: Duration) {
    loop {
        let queue = jobs.queue.clone();
        match tokio::task::spawn_blocking(move || queue.stats().map(|stats| (stats, queue.size_on_disk()))).await {
            Ok(Ok((stats, bytes))) => {
                for (kind, counts) in stats {
                    let kind = kind.as_str();
                    for (state, value) in [
                        ("ready", counts.ready),
                        ("delayed", counts.delayed),
                        ("leased", counts.leased),
                        ("dead", counts.dead),
                    ] {
                        metrics
                            .queue_jobs
                            .with_label_values(&[kind, state])
                            .set(i64::try_from(value).unwrap_or(i64::MAX));
                    }
                    metrics.queue_oldest_ready_age.with_label_values(&[kind]).set(counts.oldest_ready_seconds);
                }
                metrics.queue_storage.set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            Ok(Err(err)) => tracing::error!(error = %err, "cannot read job queue statistics"),
            Err(err) => tracing::error!(error = %err, "job queue statistics task failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Creates every queue series at zero, so `rate()` and alerts see them before the first job.
fn prime_series(metrics: &Metrics) {
    for kind in JobKind::BY_PRIORITY {
        let kind = kind.as_str();
        for state in super::JobState::ALL {
            metrics.queue_jobs.with_label_values(&[kind, state.as_str()]);
        }
        metrics.queue_oldest_ready_age.with_label_values(&[kind]);
        for counter in [
            &metrics.queue_enqueued,
            &metrics.queue_completed,
            &metrics.queue_failed,
            &metrics.queue_retried,
            &metrics.queue_dead_lettered,
        ] {
            counter.with_label_values(&[kind]);
        }
        metrics.queue_job_duration.with_label_values(&[kind, "completed"]);
    }
}
