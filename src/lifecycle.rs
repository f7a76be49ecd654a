//! The daemon's life: resolve the database (starting a private cluster if needed), build the
//! app, tell systemd, keep the watchdog fed, and stop in order on SIGTERM/SIGINT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::app::{App, StartError};
use crate::backup::pitr::{self, Archiving};
use crate::config::Loaded;
use crate::db::cluster::{ClusterOptions, PrivateCluster, Supervisor};
use crate::db::{self, migrations};

/// The database a private cluster serves Agora from.
pub const PRIVATE_DATABASE: &str = "agora";

/// Why `serve` or `migrate` failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Starting failed.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Signals could not be watched.
    #[error("cannot watch signals: {0}")]
    Signals(std::io::Error),
    /// A backup, verification or restore failed.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// An admin task failed; the operator reads the detail and, for a failure, its cause.
    #[error("{}", operator_message(.0))]
    Admin(#[from] crate::error::AppError),
}

fn operator_message(error: &crate::error::AppError) -> String {
    match &error.source {
        Some(cause) => format!("{}: {cause}", error.detail),
        None => error.detail.clone(),
    }
}

/// The database Agora uses: the configured server, or a private cluster kept alive (and
/// restarted after a crash) by this value.
pub struct DatabaseTarget {
    /// The URL of Agora's database.
    pub url: String,
    /// The private cluster's supervisor, when one was started; stopping it is dropping it.
    pub cluster: Option<Supervisor>,
    /// Restarts of the private cluster, counted into the app's metrics once it has them.
    restarts: Arc<RestartCount>,
    /// The private cluster's continuous archiving, when it is on.
    pub archiving: Option<Archiving>,
}

/// Restarts of the private cluster: kept here until the app's metrics exist, then counted there.
#[derive(Default)]
struct RestartCount {
    before_metrics: AtomicU64,
    counter: OnceLock<prometheus::IntCounter>,
}

impl RestartCount {
    fn restarted(&self) {
        match self.counter.get() {
            Some(counter) => counter.inc(),
            None => {
                self.before_metrics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl DatabaseTarget {
    fn configured(url: String) -> Self {
        Self { url, cluster: None, restarts: Arc::default(), archiving: None }
    }

    /// Counts the private cluster's restarts in `agora_private_database_restarts_total` of `metrics`.
    pub fn count_restarts_in(&self, metrics: &crate::metrics::Metrics) {
        let counter = metrics.private_database_restarts.clone();
        counter.inc_by(self.restarts.before_metrics.swap(0, Ordering::Relaxed));
        let _ = self.restarts.counter.set(counter);
    }
}

/// Resolves `database.url`, or creates/starts the private cluster and its database.
/// Must run on the main thread: the cluster is told to stop if the starting thread dies.
pub async fn database_target(loaded: &Loaded) -> Result<DatabaseTarget, StartError> {
    let url = loaded.config.database_url()?;
    if !url.is_empty() {
        return Ok(DatabaseTarget::configured(url));
    }
    let state_dir = loaded.config.paths.resolved_state_dir();
    let root = state_dir.join("postgres");
    if let Some(url) = PrivateCluster::running_url(&root, PRIVATE_DATABASE).await {
        // The daemon runs it: use it as it is (backups and admin commands while Agora runs).
        return Ok(DatabaseTarget::configured(url));
    }
    tracing::info!(dir = %root.display(), "no database.url configured: using the private PostgreSQL cluster");
    let archiving = private_archiving(loaded)?;
    let options = ClusterOptions {
        start_timeout: Duration::from_secs(loaded.config.database.private_start_timeout),
        archive: archiving.as_ref().map(|a| (a.archive_command(), loaded.config.backup.archive_timeout_seconds)),
        ..ClusterOptions::default()
    };
    let cluster = PrivateCluster::start(&root, &options)?;
    if let Some(archiving) = &archiving
        && let Err(err) = archiving.ensure_stanza()
    {
        tracing::error!(error = %err, "continuous archiving: the pgBackRest stanza cannot be created");
    }
    let restarts = Arc::new(RestartCount::default());
    let counted = restarts.clone();
    let cluster = cluster.supervise(move || counted.restarted())?;
    db::create_database_if_missing(&cluster.url("postgres"), PRIVATE_DATABASE).await?;
    Ok(DatabaseTarget { url: cluster.url(PRIVATE_DATABASE), cluster: Some(cluster), restarts, archiving })
}

/// The private cluster's archiving set-up, or `None` (logged) when it is off or pgBackRest is
/// missing.
fn private_archiving(loaded: &Loaded) -> Result<Option<Archiving>, StartError> {
    match Archiving::private(&loaded.config) {
        Ok(None) if pitr::wanted(&loaded.config) => {
            tracing::warn!(
                "continuous archiving is off: pgBackRest is not installed (apt install pgbackrest); \
                 only the logical backups of `agora backup` protect the data"
            );
            Ok(None)
        }
        Ok(archiving) => Ok(archiving),
        Err(err) => Err(StartError::Io {
            context: "setting up continuous archiving".into(),
            source: std::io::Error::other(err.to_string()),
        }),
    }
}

/// `agora serve`.
pub async fn serve(loaded: Loaded) -> Result<(), RunError> {
    // Watch the signals first: a SIGTERM while the app starts (it serves, and may even answer
    // ready, before start-up ends) stops it cleanly once started, instead of killing it.
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let state_dir = loaded.config.paths.resolved_state_dir();
    std::fs::create_dir_all(&state_dir).map_err(|source| StartError::Io {
        context: format!("creating the state directory {}", state_dir.display()),
        source,
    })?;
    let target = database_target(&loaded).await?;
    let listen: Vec<String> = loaded.config.server.listen.iter().map(ToString::to_string).collect();
    let grace = loaded.config.server.shutdown_grace_seconds;
    let loaded_for_doctor = loaded.clone();
    let mut app = App::build(loaded.config, &target.url, state_dir).await?;
    target.count_restarts_in(&app.state().metrics);
    if let Some(archiving) = target.archiving.clone() {
        // A point-in-time restore needs a base backup to start from: take the first one now.
        tokio::task::spawn_blocking(move || match archiving.base_backups() {
            Ok(backups) if !backups.is_empty() => {}
            _ => match archiving.base_backup() {
                Ok(taken) => tracing::info!(label = %taken.label, "continuous archiving: first base backup taken"),
                Err(err) => tracing::error!(error = %err, "continuous archiving: the first base backup failed"),
            },
        });
    }
    let bound: Vec<String> = app.public_addrs().iter().map(ToString::to_string).collect();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = ?listen,
        bound = %bound.join(" "),
        metrics = %app.admin_addr().map_or_else(|| "public listeners".to_owned(), |a| a.to_string()),
        "agora is serving"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    // The preflight of `agora doctor`, logged once after start (it may wait on SMTP).
    let preflight_url = target.url.clone();
    let preflight = tokio::spawn(async move {
        for check in crate::doctor::run(&loaded_for_doctor, Some(&preflight_url)).await {
            match check.level {
                crate::doctor::Level::Ok => tracing::info!(check = check.name, detail = %check.detail, "preflight"),
                crate::doctor::Level::Warn => {
                    tracing::warn!(check = check.name, detail = %check.detail, advice = %check.advice, "preflight")
                }
                crate::doctor::Level::Fail => {
                    tracing::error!(check = check.name, detail = %check.detail, advice = %check.advice, "preflight")
                }
            }
        }
    });
    let watchdog = tokio::spawn(feed_watchdog(app.state().db.clone(), app.state().config.database.health_timeout_ms));

    loop {
        tokio::select! {
            _ = terminate.recv() => {
                tracing::info!(grace_seconds = grace, "SIGTERM: draining in-flight requests");
                break;
            }
            _ = interrupt.recv() => {
                tracing::info!(grace_seconds = grace, "SIGINT: draining in-flight requests");
                break;
            }
            _ = hangup.recv() => match app.reload_tls() {
                Ok(()) if app.state().tls.is_some() => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(()) => tracing::info!("SIGHUP: nothing to reload (HTTPS is off); restart Agora to apply other configuration changes"),
                Err(err) => tracing::error!(error = %err, "SIGHUP: the new TLS certificate is refused; the old one keeps serving"),
            },
            () = app.stopped() => {
                tracing::warn!("the HTTP server stopped by itself; shutting down");
                break;
            }
        }
    }
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    watchdog.abort();
    preflight.abort();
    app.stop().await;
    tracing::info!("HTTP servers stopped");
    drop(target);
    tracing::info!("agora stopped");
    Ok(())
}

/// `agora migrate [--dry-run]`.
pub async fn migrate(loaded: Loaded, dry_run: bool) -> Result<(), RunError> {
    let target = database_target(&loaded).await?;
    if dry_run {
        let pending = migrations::pending(&target.url).await.map_err(StartError::from)?;
        if pending.is_empty() {
            println!("no pending migrations");
        }
        for name in pending {
            println!("would apply {name}");
        }
    } else {
        let applied = migrations::run_pending(&target.url).await.map_err(StartError::from)?;
        if applied.is_empty() {
            println!("no pending migrations");
        }
        for version in applied {
            println!("applied {version}");
        }
    }
    drop(target);
    Ok(())
}

/// Sends `WATCHDOG=1` at half the interval systemd asks for, but only while the database
/// answers (or, with the primary down, a replica still serves reads): a daemon that cannot
/// reach any database should be restarted; one that serves reads while the primary is away
/// should not.
async fn feed_watchdog(db: db::Database, health_timeout_ms: u64) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    tracing::info!(interval_ms = interval.as_millis(), "systemd watchdog enabled");
    let timeout = Duration::from_millis(health_timeout_ms).min(period);
    loop {
        match db.ping(timeout).await {
            Ok(()) => notify_systemd(&[sd_notify::NotifyState::Watchdog]),
            Err(err) if db.any_replica_in() => {
                tracing::warn!(error = %err, "watchdog: the primary does not answer; replicas serve reads");
                notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            }
            Err(err) => {
                tracing::warn!(error = %err, "watchdog: database check failed; not feeding the watchdog")
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// Tells systemd about a state change; a no-op outside systemd.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(state) {
        tracing::warn!(error = %err, "cannot notify systemd");
    }
}

/// `agora seed`: applies migrations, then generates the synthetic data set into an empty database.
pub async fn seed(loaded: Loaded, size: db::seed::SeedSize) -> Result<(), RunError> {
    use crate::error::AppError;

    let target = database_target(&loaded).await?;
    migrations::run_pending(&target.url).await.map_err(StartError::from)?;
    let mut conn = db::ops::connect(&target.url).await.map_err(StartError::Database)?;
    if !db::seed::is_empty(&mut conn).await.map_err(AppError::from)? {
        return Err(AppError::bad_request("the database already has users; seed only fills an empty database").into());
    }
    let hash = tokio::task::spawn_blocking(|| crate::security::hash_password("seed-password"))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let started = std::time::Instant::now();
    let mut step_started = started;
    let mut last_step = String::new();
    db::seed::generate(&mut conn, size, &hash, |step| {
        if !last_step.is_empty() {
            println!("  {last_step}: {:.1} s", step_started.elapsed().as_secs_f64());
        }
        last_step = step.to_owned();
        step_started = std::time::Instant::now();
    })
    .await
    .map_err(AppError::from)?;
    // A daemon already serving this database may have cached it empty.
    crate::service::cache_sync::flush_everywhere(&mut conn).await.map_err(AppError::from)?;
    println!("  {last_step}: {:.1} s", step_started.elapsed().as_secs_f64());
    println!(
        "seeded {} users, {} communities, {} posts, {} comments, up to {} votes in {:.1} s; every user's password is seed-password",
        size.users,
        size.communities,
        size.posts,
        size.comments,
        size.votes,
        started.elapsed().as_secs_f64()
    );
    drop(conn);
    drop(target);
    Ok(())
}

fn backup_paths(loaded: &Loaded) -> crate::backup::Paths {
    let state_dir = loaded.config.paths.resolved_state_dir();
    crate::backup::Paths { backup_dir: loaded.config.backup.resolved_dir(&state_dir), state_dir }
}

/// `agora backup [--verify]`.
pub async fn backup(loaded: Loaded, verify: bool) -> Result<(), RunError> {
    let target = database_target(&loaded).await?;
    let paths = backup_paths(&loaded);
    if verify {
        let archive = crate::backup::verify_newest(&target.url, &paths).await?;
        println!("verified {}", archive.display());
    } else {
        let config = &loaded.config.backup;
        let archive = crate::backup::backup(&target.url, &paths, config.keep_daily, config.keep_weekly).await?;
        println!("{}", archive.display());
        if let Some(archiving) = target.archiving.clone().or_else(|| Archiving::private(&loaded.config).ok().flatten())
        {
            let taken = tokio::task::spawn_blocking(move || archiving.base_backup())
                .await
                .map_err(|err| crate::backup::BackupError::Database(err.to_string()))??;
            println!("base backup {} ({})", taken.label, taken.kind);
        }
    }
    Ok(())
}

/// `agora backup --drill [--when-due]`.
pub async fn drill(loaded: Loaded, when_due: bool) -> Result<(), RunError> {
    use crate::backup::BackupError;
    let config = &loaded.config;
    let week = chrono::Duration::days(7) - chrono::Duration::hours(6);
    let last_passed = pitr::drill_status_dir(config)
        .map(|dir| crate::backup::Status::read(&dir))
        .and_then(|status| status.last_drill_success_at);
    if when_due && last_passed.is_some_and(|at| chrono::Utc::now() - at < week) {
        println!("the last drill passed less than a week ago: not due");
        return Ok(());
    }
    let target = database_target(&loaded).await?;
    let Some(archiving) = target.archiving.clone().or_else(|| running_archiving(&loaded)) else {
        let why = "nothing to drill: continuous archiving is off (backup.pitr, pgBackRest not installed, or \
                   `agora dr enable` not run for a system PostgreSQL)";
        if when_due {
            // The timer runs this everywhere; where nothing is archived there is nothing due.
            println!("{why}");
            return Ok(());
        }
        return Err(BackupError::Refused(why.into()).into());
    };
    if let Err(refused) = archiving.check_can_run() {
        if when_due {
            // agora-backup.timer runs as agora; root's agora-dr.timer drills a system PostgreSQL.
            println!("{refused}");
            return Ok(());
        }
        return Err(refused.into());
    }
    let report = crate::backup::drill::Drill {
        database_url: &target.url,
        archiving: &archiving,
        archive_timeout: Duration::from_secs(config.backup.archive_timeout_seconds),
        start_timeout: Duration::from_secs(config.database.private_start_timeout),
    }
    .run()
    .await?;
    println!(
        "drill passed: restored {} rows to WAL position {} in {:.1} s (RTO); the archive was {:.1} s behind (RPO)",
        report.rows.values().sum::<i64>(),
        report.lsn,
        report.rto_seconds,
        report.rpo_seconds
    );
    Ok(())
}

/// `agora dr enable [--socket-dir DIR] [--restart]`.
pub async fn dr_enable(loaded: Loaded, socket_dir: Option<std::path::PathBuf>, restart: bool) -> Result<(), RunError> {
    let url = loaded.config.database_url().map_err(StartError::from)?;
    if url.is_empty() {
        println!(
            "Agora uses its private PostgreSQL, which archives by itself while backup.pitr is on: nothing to enable"
        );
        return Ok(());
    }
    let say = &mut |line| println!("{line}");
    crate::backup::system::enable(&loaded.config, &url, socket_dir.as_deref(), restart, say).await?;
    Ok(())
}

/// `agora dr backup [--drill]`: a base backup of the continuous archive, then the restore drill
/// when it is due (or at once with `drill`).
pub async fn dr_backup(loaded: Loaded, drill_now: bool) -> Result<(), RunError> {
    use crate::backup::BackupError;
    let archiving = Archiving::for_config(&loaded.config)?.ok_or_else(|| {
        BackupError::Refused(
            "continuous archiving is off: backup.pitr, pgBackRest (apt install pgbackrest), or `agora dr enable` for \
             a system PostgreSQL"
                .into(),
        )
    })?;
    archiving.check_can_run()?;
    if archiving.system_cluster().is_none() && running_private_url(&loaded).await.is_none() {
        return Err(BackupError::Refused("the private PostgreSQL is not running: start Agora first".into()).into());
    }
    let taken = tokio::task::spawn_blocking(move || archiving.base_backup())
        .await
        .map_err(|err| BackupError::Database(err.to_string()))??;
    println!("base backup {} ({})", taken.label, taken.kind);
    drill(loaded, !drill_now).await
}

async fn running_private_url(loaded: &Loaded) -> Option<String> {
    let root = loaded.config.paths.resolved_state_dir().join("postgres");
    PrivateCluster::running_url(&root, PRIVATE_DATABASE).await
}

/// The archiving of the database a running daemon uses: the private cluster's (its
/// configuration file is there) or a system PostgreSQL's set up by `agora dr enable`, for
/// commands that run beside it.
fn running_archiving(loaded: &Loaded) -> Option<Archiving> {
    Archiving::for_config(&loaded.config).ok().flatten()
}

/// `agora restore --to-time T | --to-latest [--force]`: the private cluster back to a moment
/// (or to the end of the archive) from its base backups and archived WAL. Agora must be
/// stopped; the data directory it replaces is kept beside it.
pub async fn restore_to(loaded: Loaded, target: pitr::Target, force: bool) -> Result<(), RunError> {
    use crate::backup::BackupError;
    let state_dir = loaded.config.paths.resolved_state_dir();
    let root = state_dir.join("postgres");
    if running_private_url(&loaded).await.is_some() || crate::queue::Queue::open(&state_dir.join("queue")).is_err() {
        return Err(
            BackupError::Refused("Agora is running: stop it (systemctl stop agora) before a restore".into()).into()
        );
    }
    let archiving = running_archiving(&loaded).ok_or_else(|| {
        BackupError::Refused(
            "continuous archiving is off: backup.pitr, pgBackRest (apt install pgbackrest), or `agora dr enable` for \
             a system PostgreSQL"
                .into(),
        )
    })?;
    let started = std::time::Instant::now();
    let (what, replaced) = if archiving.system_cluster().is_some() {
        let archiving = archiving.clone();
        let opened = tokio::task::spawn_blocking(move || {
            crate::backup::system::restore(&archiving, target, force, &mut |line| println!("{line}"))
        })
        .await
        .map_err(|err| BackupError::Database(err.to_string()))??;
        if opened {
            let url = loaded.config.database_url().map_err(StartError::from)?;
            crate::backup::wait_out_of_recovery(&url, crate::backup::system::REPLAY_TIMEOUT).await?;
        }
        ("the system PostgreSQL", None)
    } else {
        ("the private database", restore_private(&loaded, &archiving, &root, target, force).await?)
    };
    let before = match target {
        pitr::Target::Time(at) => Some(at),
        pitr::Target::Latest => None,
    };
    match crate::backup::restore_queue_and_media_before(&backup_paths(&loaded), before)? {
        Some(archive) => println!("job queue and media restored from {}", archive.display()),
        None => println!("no archive from before the target: the job queue and media are left as they are"),
    }
    let replaced = replaced
        .map(|kept| {
            format!("; the data directory it replaced is kept in {} (delete it when satisfied)", kept.display())
        })
        .unwrap_or_default();
    println!(
        "restored {what} to {} in {:.1} s{replaced}",
        match target {
            pitr::Target::Time(at) => at.to_rfc3339(),
            pitr::Target::Latest => "the end of the archive".into(),
        },
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// The private cluster's part of a point-in-time restore: the data directory put back and the
/// server started once to replay up to the target; where the replaced directory was kept.
async fn restore_private(
    loaded: &Loaded,
    archiving: &Archiving,
    root: &std::path::Path,
    target: pitr::Target,
    force: bool,
) -> Result<Option<std::path::PathBuf>, RunError> {
    use crate::backup::BackupError;
    let data_dir = root.join("data");
    if data_dir.join("PG_VERSION").exists() && !force {
        let target = database_target(loaded).await?;
        let users = crate::backup::user_count(&target.url).await?;
        drop(target);
        if users > 0 {
            return Err(BackupError::Refused(
                "the database holds users; pass --force to replace it (the current data directory is kept beside it)"
                    .into(),
            )
            .into());
        }
    }
    let kept = root.join(format!("data.before-restore-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    if data_dir.exists() {
        std::fs::rename(&data_dir, &kept).map_err(crate::backup::io(format!("moving {} aside", data_dir.display())))?;
    }
    let restored = {
        let archiving = archiving.clone();
        let data_dir = data_dir.clone();
        tokio::task::spawn_blocking(move || archiving.restore(&data_dir, target))
            .await
            .map_err(|err| BackupError::Database(err.to_string()))?
    };
    if let Err(err) = restored {
        let _ = std::fs::remove_dir_all(&data_dir);
        if kept.exists() {
            let _ = std::fs::rename(&kept, &data_dir);
        }
        return Err(err.into());
    }
    // Start it once: it replays the archived WAL up to the target and promotes itself.
    let target_db = database_target(loaded).await?;
    crate::backup::wait_out_of_recovery(
        &target_db.url,
        Duration::from_secs(loaded.config.database.private_start_timeout),
    )
    .await?;
    drop(target_db);
    Ok(kept.exists().then_some(kept))
}

/// `agora restore ARCHIVE [--force]`.
pub async fn restore(loaded: Loaded, archive: std::path::PathBuf, force: bool) -> Result<(), RunError> {
    let target = database_target(&loaded).await?;
    let manifest = crate::backup::restore(&target.url, &backup_paths(&loaded), &archive, force).await?;
    println!(
        "restored {} ({} rows, {} queue entries)",
        archive.display(),
        manifest.rows.values().sum::<i64>(),
        manifest.queue_entries
    );
    Ok(())
}
