//! `agora backup --drill`: proves the continuous archive restores, and measures how long that
//! takes (RTO) and how far behind the live database the archive is (RPO).
//!
//! 1. Mark: the counted tables' row counts and a named restore point holding exactly them
//!    (the tables are share-locked while they are counted and the point is written; reads
//!    go on).
//! 2. Switch WAL and wait until the segment holding the mark is archived: the wait is the RPO.
//! 3. Restore the newest base backup plus the archived WAL up to the point into a scratch
//!    cluster (under the backup directory, or `backup.pitr_dir` for a system PostgreSQL), start it and wait until it promotes: the RTO.
//! 4. Compare its row counts with the mark's and check the audit log's hash chain there.
//!
//! A missing or damaged segment makes step 3 fail: the drill exits non-zero, logs why and
//! records the failure in the status file (exported as metrics by the daemon).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::backup::pitr::Archiving;
use crate::backup::{BackupError, Status, connect};
use crate::db::cluster::{ClusterOptions, PrivateCluster};

/// The counted tables in the order writers usually lock them (a post's row, then its votes,
/// then the author's karma), so the drill's share locks rarely wait behind a writer that
/// waits for them.
const MARKED_TABLES: [&str; 7] =
    ["posts", "comments", "post_votes", "comment_votes", "users", "communities", "audit_log"];

/// How often marking may time out on a busy lock before the drill gives up.
const MARK_ATTEMPTS: u32 = 100;

/// What a successful drill measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Seconds from the start of the restore until the scratch copy served, promoted.
    pub rto_seconds: f64,
    /// Seconds from the mark until the archive held it.
    pub rpo_seconds: f64,
    /// The mark's WAL position.
    pub lsn: String,
    /// The rows compared.
    pub rows: BTreeMap<String, i64>,
}

/// One drill's inputs.
pub struct Drill<'a> {
    /// The live database.
    pub database_url: &'a str,
    /// The archive to restore from.
    pub archiving: &'a Archiving,
    /// `backup.archive_timeout_seconds`: how long archiving the point may normally take.
    pub archive_timeout: Duration,
    /// `database.private_start_timeout`: how long the restored copy may take to serve.
    pub start_timeout: Duration,
}

impl Drill<'_> {
    /// Runs the drill, records the outcome in the backup status, and returns it.
    pub async fn run(&self) -> Result<Report, BackupError> {
        let outcome = self.attempt().await;
        let status_dir = self.archiving.status_dir();
        let mut status = Status::read(status_dir);
        status.last_drill_at = Some(Utc::now());
        match &outcome {
            Ok(report) => {
                status.last_drill_success_at = status.last_drill_at;
                status.last_drill_rto_seconds = report.rto_seconds;
                status.last_drill_rpo_seconds = report.rpo_seconds;
                status.last_drill_error = None;
                tracing::info!(rto_seconds = report.rto_seconds, rpo_seconds = report.rpo_seconds, lsn = %report.lsn,
                    "restore drill passed");
            }
            Err(err) => {
                status.last_drill_error = Some(err.to_string());
                tracing::error!(error = %err, "restore drill FAILED: the continuous archive does not restore");
            }
        }
        status.write(status_dir)?;
        outcome
    }

    async fn attempt(&self) -> Result<Report, BackupError> {
        let Self { database_url, archiving, archive_timeout, start_timeout } = *self;
        let mut live = connect(database_url).await?;
        let point = format!("agora-drill-{}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
        let mut attempts = 0;
        let (rows, lsn) = loop {
            attempts += 1;
            match crate::db::ops::counts_at_restore_point(&mut live, &MARKED_TABLES, &point).await {
                Ok(marked) => break marked,
                Err(err) if attempts < MARK_ATTEMPTS && err.to_string().contains("lock timeout") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => {
                    return Err(BackupError::Database(format!(
                        "marking the drill's point (attempt {attempts}): {err}"
                    )));
                }
            }
        };
        let marked = Instant::now();
        let segment = crate::db::ops::switch_wal(&mut live)
            .await
            .map_err(|err| BackupError::Database(format!("switching WAL: {err}")))?;
        let archived_within = archive_timeout * 2 + Duration::from_secs(60);
        loop {
            let state = crate::db::ops::archiver_state_direct(&mut live)
                .await
                .map_err(|err| BackupError::Database(format!("reading pg_stat_archiver: {err}")))?;
            if state.last_archived_wal.as_deref().is_some_and(|wal| wal >= segment.as_str()) {
                break;
            }
            if marked.elapsed() > archived_within {
                return Err(BackupError::Tool {
                    tool: "archiving",
                    detail: format!(
                        "WAL segment {segment} was not archived within {} s (last archived: {}, {} failures): archiving is stalled",
                        archived_within.as_secs(),
                        state.last_archived_wal.as_deref().unwrap_or("none"),
                        state.failed_count
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rpo_seconds = marked.elapsed().as_secs_f64();
        drop(live);

        let scratch = Scratch::new(archiving)?;
        let restore_started = Instant::now();
        let data_dir = scratch.0.join("data");
        {
            let (archiving, data_dir, point) = (archiving.clone(), data_dir.clone(), point.clone());
            tokio::task::spawn_blocking(move || archiving.restore_to_point(&data_dir, &point))
                .await
                .map_err(|err| BackupError::Database(err.to_string()))??;
        }
        scratch.own_configuration()?;
        // Started on this (the command's main) thread, which outlives it: the server is told to
        // stop when the thread that started it ends.
        let options = ClusterOptions { start_timeout, ..ClusterOptions::default() };
        let cluster = PrivateCluster::start(&scratch.0, &options)
            .map_err(|err| BackupError::Tool { tool: "the restored server", detail: err.to_string() })?;
        let url = cluster.url("agora");
        crate::backup::wait_out_of_recovery(&url, start_timeout).await?;
        let rto_seconds = restore_started.elapsed().as_secs_f64();

        let restored = crate::backup::row_counts(&url).await?;
        if restored != rows {
            return Err(BackupError::Corrupt(format!(
                "the restored rows differ from the live database at {lsn}: live {rows:?}, restored {restored:?}"
            )));
        }
        let mut conn = connect(&url).await?;
        let broken = conn
            .run(async |conn| crate::db::audit::first_broken_link(conn).await)
            .await
            .map_err(|err| BackupError::Database(err.to_string()))?;
        if let Some(id) = broken {
            return Err(BackupError::Corrupt(format!("the restored audit log's hash chain breaks at entry {id}")));
        }
        drop(conn);
        drop(cluster);
        Ok(Report { rto_seconds, rpo_seconds, lsn, rows })
    }
}

/// The scratch directory of a drill, removed when the drill ends however it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(archiving: &Archiving) -> Result<Self, BackupError> {
        let dir = archiving.scratch_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(crate::backup::io(format!("clearing {}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir).map_err(crate::backup::io(format!("creating {}", dir.display())))?;
        archiving.give_to_server_user(&dir)?;
        Ok(Self(dir))
    }

    /// Gives the restored copy configuration of its own: a system server's copy may lack
    /// `postgresql.conf` (Debian keeps it in /etc), and its `pg_hba.conf` is the live
    /// server's. The scratch server listens only on a socket in a directory of its own.
    fn own_configuration(&self) -> Result<(), BackupError> {
        let data = self.0.join("data");
        let conf = data.join("postgresql.conf");
        if !conf.exists() {
            std::fs::write(&conf, "# The restore drill's scratch copy: settings come from its command line.\n")
                .map_err(crate::backup::io(format!("writing {}", conf.display())))?;
        }
        let hba = data.join("pg_hba.conf");
        std::fs::write(&hba, "local all all trust\n").map_err(crate::backup::io(format!("writing {}", hba.display())))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
