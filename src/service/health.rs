//! Readiness: whether this instance can serve requests now.

use std::path::Path;
use std::time::Duration;

use crate::service::Context;

/// Free space in the state directory below which Agora reports itself unready.
pub const DISK_MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;

/// How the state directory's file system is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskState {
    /// Enough free space.
    Ok,
    /// Less than [`DISK_MIN_FREE_BYTES`] free.
    Full,
    /// The directory cannot be inspected.
    Unknown,
}

impl DiskState {
    /// The value shown in `/health/ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Full => "full",
            Self::Unknown => "unknown",
        }
    }
}

/// The result of every readiness check.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// The primary answered `SELECT 1` in time.
    pub database_up: bool,
    /// The state directory's free space.
    pub disk: DiskState,
    /// The job queue can be read.
    pub queue_ok: bool,
    /// Migrations are still being applied.
    pub migrating: bool,
    /// Each configured replica: its name and `up, lag …` or `out: <reason>`.
    pub replicas: Vec<crate::db::ReplicaReport>,
    /// At least one replica serves reads.
    pub replica_in: bool,
}

impl Readiness {
    /// Ready when every check passes.
    pub fn ready(&self) -> bool {
        self.database_up && self.others_pass()
    }

    /// The primary is down but a replica serves reads: writes answer 503, reads keep working,
    /// so a load balancer should keep sending traffic here.
    pub fn degraded(&self) -> bool {
        !self.database_up && self.replica_in && self.others_pass()
    }

    fn others_pass(&self) -> bool {
        self.disk != DiskState::Full && self.queue_ok && !self.migrating
    }
}

/// Runs every readiness check; the database check is bounded by `database.health_timeout_ms`.
pub async fn readiness(ctx: &Context) -> Readiness {
    let timeout = Duration::from_millis(ctx.config.database.health_timeout_ms);
    let database_up = match ctx.db.ping(timeout).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database check failed");
            false
        }
    };
    let queue_ok = match ctx.jobs.queue().check() {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "readiness: job queue check failed");
            false
        }
    };
    let migrating = ctx.migrating.load(std::sync::atomic::Ordering::Acquire);
    Readiness {
        database_up,
        disk: disk_state(&ctx.state_dir),
        queue_ok,
        migrating,
        replicas: ctx.db.replica_reports(),
        replica_in: ctx.db.any_replica_in(),
    }
}

fn disk_state(dir: &Path) -> DiskState {
    match free_bytes(dir) {
        Some(free) if free < DISK_MIN_FREE_BYTES => DiskState::Full,
        Some(_) => DiskState::Ok,
        None => DiskState::Unknown,
    }
}

/// Bytes available to unprivileged users on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    filesystem(dir).map(|(available, _)| available)
}

/// (bytes available to unprivileged users, total bytes) of the file system holding `dir`.
pub fn filesystem(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stats` is writable memory of the right type.
    #[allow(unsafe_code)]
    let stats = unsafe {
        if libc::statvfs(path.as_ptr(), stats.as_mut_ptr()) != 0 {
            return None;
        }
        stats.assume_init()
    };
    Some((stats.f_bavail.saturating_mul(stats.f_frsize), stats.f_blocks.saturating_mul(stats.f_frsize)))
}

/// Sets the storage and backup gauges (read at scrape time: `agora backup` runs as its own
/// process and leaves its status in the backup directory).
pub fn export_storage_gauges(ctx: &Context) {
    let backup_dir = ctx.config.backup.resolved_dir(&ctx.state_dir);
    let status = crate::backup::Status::read(&backup_dir);
    let metrics = &ctx.metrics;
    metrics.backup_last_success.set(status.last_success_at.map_or(0.0, |t| t.timestamp() as f64));
    metrics.backup_last_verify.set(status.last_verify_at.map_or(0.0, |t| t.timestamp() as f64));
    metrics.backup_duration.set(status.last_duration_seconds);
    metrics.backup_size.set(i64::try_from(status.last_size_bytes).unwrap_or(i64::MAX));
    let stored: u64 = crate::backup::archives(&backup_dir)
        .iter()
        .filter_map(|(_, path)| std::fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    metrics.backups_storage.set(i64::try_from(stored).unwrap_or(i64::MAX));
    let status = crate::backup::pitr::drill_status_dir(&ctx.config)
        .filter(|dir| *dir != backup_dir)
        .map_or(status, |dir| crate::backup::Status::read(&dir));
    metrics.dr_last_drill_rto.set(status.last_drill_rto_seconds);
    metrics.dr_last_drill_success.set(status.last_drill_success_at.map_or(0.0, |t| t.timestamp() as f64));
    metrics.dr_last_drill_passed.set(i64::from(status.last_drill_at.is_none() || status.last_drill_error.is_none()));
    if let Some((available, size)) = filesystem(&ctx.state_dir) {
        ctx.metrics.state_dir_fs_avail.set(i64::try_from(available).unwrap_or(i64::MAX));
        ctx.metrics.state_dir_fs_size.set(i64::try_from(size).unwrap_or(i64::MAX));
    }
}

/// Sets the continuous-archiving gauges from `pg_stat_archiver` (one query, at scrape time),
/// when Agora archives its database (the private cluster, or a system PostgreSQL after
/// `agora dr enable`).
pub async fn export_archiving(ctx: &Context) {
    if crate::backup::pitr::drill_status_dir(&ctx.config).is_none() {
        return;
    }
    let state = async {
        let mut conn = ctx.db.conn().await?;
        ctx.db
            .observe("backup.archiver_state", &mut conn, async |conn| crate::db::ops::archiver_state(conn).await)
            .await
    };
    // A scrape must not wait on a database that does not answer (the pool would wait longer).
    let timeout = Duration::from_millis(ctx.config.database.health_timeout_ms);
    let state = match tokio::time::timeout(timeout, state).await {
        Ok(Ok(state)) => state,
        Ok(Err(err)) => return tracing::debug!(error = %err, "archiving gauges: the database does not answer"),
        Err(_) => return tracing::debug!("archiving gauges: the database did not answer in time"),
    };
    let metrics = &ctx.metrics;
    if let Some(at) = state.last_archived_at {
        metrics.wal_archive_last_success.set(at);
    }
    let failures = u64::try_from(state.failed_count).unwrap_or(0);
    let counted = metrics.wal_archive_failures.get();
    if failures > counted {
        metrics.wal_archive_failures.inc_by(failures - counted);
    }
    let rpo = match (state.pending, state.last_archived_at) {
        (false, _) => 0.0,
        (true, Some(at)) => (state.now - at).max(0.0),
        // Nothing archived since the server started: everything it wrote since is at stake.
        (true, None) => (state.now - state.server_started_at).max(0.0),
    };
    metrics.dr_rpo.set(rpo);
}
