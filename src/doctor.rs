//! `agora doctor`: the preflight an operator runs after install (and `serve` runs at start).
//! Each check is one line, OK / WARN / FAIL, with what to do when it is not OK.

use std::path::Path;
use std::time::Duration;

use crate::config::Loaded;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but deserves attention.
    Warn,
    /// Agora will not work (well) until this is fixed.
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// The outcome.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// What to do, when not OK.
    pub advice: String,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self { name, level: Level::Ok, detail: detail.into(), advice: String::new() }
    }
    fn warn(name: &'static str, detail: impl Into<String>, advice: impl Into<String>) -> Self {
        Self { name, level: Level::Warn, detail: detail.into(), advice: advice.into() }
    }
    fn fail(name: &'static str, detail: impl Into<String>, advice: impl Into<String>) -> Self {
        Self { name, level: Level::Fail, detail: detail.into(), advice: advice.into() }
    }

    /// The report line: `OK    database      PostgreSQL 15.8 …  → what to do`.
    pub fn line(&self) -> String {
        let mut line = format!("{:<5} {:<13} {}", self.level.label(), self.name, self.detail);
        if !self.advice.is_empty() {
            line.push_str(&format!("\n{:<19}→ {}", "", self.advice));
        }
        line
    }
}

/// Runs every check. `database_url` is `None` when the private cluster is not running yet.
pub async fn run(loaded: &Loaded, database_url: Option<&str>) -> Vec<Check> {
    let config = &loaded.config;
    let state_dir = config.paths.resolved_state_dir();
    let mut checks = Vec::new();

    let source = loaded.file.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    let overrides = loaded.env_overrides.len();
    checks.push(Check::ok("configuration", format!("valid: {source}, {overrides} environment overrides")));
    checks.push(Check::ok("version", format!("agora {} ({})", env!("CARGO_PKG_VERSION"), crate::GIT_REVISION)));

    let mut related = Vec::new();
    let database = database_check(config, database_url, &mut related).await;
    checks.push(database);
    checks.extend(related);
    checks.extend(archiving_checks(config, database_url).await);
    checks.push(disk_check(&state_dir));
    for (name, dir) in [
        ("state dir", state_dir.clone()),
        ("queue dir", state_dir.join("queue")),
        ("backup dir", config.backup.resolved_dir(&state_dir)),
    ] {
        checks.push(writable(name, &dir));
    }
    checks.push(media_check(config, &state_dir).await);
    checks.push(tls_check(config, &state_dir));
    checks.push(smtp_check(config).await);
    let providers = crate::summaries::Summarizer::from_config(&config.summaries)
        .map(|s| s.describe())
        .unwrap_or_else(|err| err.to_string());
    checks.push(Check::ok("summaries", providers));
    checks
}

/// Where uploaded images go: the local directory is writable, or the S3 bucket answers a
/// read with these credentials (a missing probe object is the expected answer).
async fn media_check(config: &crate::config::Config, state_dir: &std::path::Path) -> Check {
    use crate::media::store::Store;
    let store = match Store::from_config(&config.media, state_dir) {
        Ok(store) => store,
        Err(err) => return Check::fail("media", err.to_string(), "fix [media] in agora.toml"),
    };
    match &store {
        Store::Local(dir) => {
            let check = writable("media", dir);
            if check.level == Level::Ok { Check::ok("media", store.describe()) } else { check }
        }
        Store::S3 { .. } => {
            let probe = crate::domain::media::MediaKey::original(&"0".repeat(64));
            match tokio::time::timeout(Duration::from_secs(10), store.get(&probe)).await {
                Ok(Ok(_)) => Check::ok("media", format!("{}: reachable", store.describe())),
                Ok(Err(err)) => Check::fail(
                    "media",
                    format!("{}: {err}", store.describe()),
                    "check media.s3_endpoint, s3_bucket and the keys",
                ),
                Err(_) => {
                    Check::fail("media", format!("{}: no answer in 10 s", store.describe()), "check media.s3_endpoint")
                }
            }
        }
    }
}

/// Continuous archiving (how far behind it is) and the last restore drill.
async fn archiving_checks(config: &crate::config::Config, url: Option<&str>) -> Vec<Check> {
    use crate::backup::pitr;
    if !config.backup.pitr {
        return Vec::new();
    }
    if pitr::program().is_none() {
        return vec![Check::warn(
            "archiving",
            "off: pgBackRest is not installed, so only the logical backups protect the data",
            if pitr::wanted(config) {
                "apt install pgbackrest, then restart agora"
            } else {
                "apt install pgbackrest, then sudo agora dr enable"
            },
        )];
    }
    let Some(status_dir) = pitr::drill_status_dir(config) else {
        return vec![Check::warn(
            "archiving",
            "off: the system PostgreSQL is not archived, so only the logical backups protect the data",
            "sudo agora dr enable (docs/disaster-recovery.md)",
        )];
    };
    let drill_command = if pitr::wanted(config) {
        "agora backup --drill` (the backup timer runs one weekly)"
    } else {
        "sudo agora dr backup --drill` (agora-dr.timer runs one weekly)"
    };
    let mut checks = Vec::new();
    if let Some(url) = url
        && let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), crate::db::ops::connect(url)).await
        && let Ok(state) = crate::db::ops::archiver_state_direct(&mut conn).await
    {
        let since = state.last_archived_at.map(|at| state.now - at);
        let detail = match since {
            Some(age) => format!(
                "last WAL segment archived {age:.0} s ago, {} failed attempts{}",
                state.failed_count,
                if state.pending { ", writes waiting" } else { ", nothing waiting" }
            ),
            None => "no WAL segment archived yet".to_owned(),
        };
        let stalled = state.pending && since.is_none_or(|age| age > 300.0);
        checks.push(if stalled {
            Check::warn("archiving", detail, "see the runbook's AgoraWalArchivingStalled")
        } else {
            Check::ok("archiving", detail)
        });
    }
    let status = crate::backup::Status::read(&status_dir);
    checks.push(match (&status.last_drill_error, status.last_drill_success_at) {
        (Some(error), _) => Check::warn(
            "drill",
            format!("the last restore drill failed: {error}"),
            "see the runbook's AgoraRestoreDrillTooOld",
        ),
        (None, Some(at)) => Check::ok(
            "drill",
            format!(
                "last passed {} h ago: restored in {:.1} s (RTO), archive {:.1} s behind (RPO)",
                (chrono::Utc::now() - at).num_hours(),
                status.last_drill_rto_seconds,
                status.last_drill_rpo_seconds
            ),
        ),
        (None, None) => Check::warn("drill", "no restore drill has run yet", format!("run `{drill_command}")),
    });
    checks
}

/// Whether `daemons` daemons of `per_daemon` connections each fit under a server's
/// `max_connections` (less the 3 it reserves for superusers by default).
fn connection_budget(name: &'static str, daemons: i64, per_daemon: i64, max_connections: i32, key: &str) -> Check {
    let needed = daemons * per_daemon;
    let allowed = i64::from(max_connections) - 3;
    let detail = format!("{daemons} daemon(s) x {per_daemon} connections = {needed} of {allowed} the server allows");
    if needed > allowed {
        Check::warn(name, detail, format!("lower {key}, run fewer daemons, or raise max_connections"))
    } else {
        Check::ok(name, detail)
    }
}

/// One replica: reachable, in recovery, how far its replay is behind the primary, and whether
/// every daemon's replica pool fits under its connection limit.
async fn replica_check(config: &crate::config::Config, url: &str, primary_lsn: Option<u64>, daemons: i64) -> Check {
    let name = crate::db::replicas::server_name(url);
    let connect = tokio::time::timeout(Duration::from_secs(5), crate::db::ops::connect(url)).await;
    let mut conn = match connect {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            return Check::fail("replica", format!("cannot connect to {name}: {err}"), "start it, or fix its URL");
        }
        Err(_) => return Check::fail("replica", format!("{name} did not answer in 5 s"), "check the network"),
    };
    let (in_recovery, replayed) = match crate::db::ops::replica_facts(&mut conn).await {
        Ok(found) => found,
        Err(err) => return Check::fail("replica", format!("{name}: {err}"), "check the role's rights"),
    };
    if !in_recovery {
        return Check::fail(
            "replica",
            format!("{name} is not in recovery: it is a primary (promoted?), not a replica"),
            "make it a streaming replica (pg_basebackup -R) or remove it from database.replicas",
        );
    }
    let behind = match (primary_lsn, replayed) {
        (Some(primary), Some(replayed)) => format!("{} bytes of WAL behind", primary.saturating_sub(replayed)),
        _ => "replay position unknown".to_owned(),
    };
    let local_now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let budget = match crate::db::ops::server_facts(&mut conn, local_now).await {
        Ok(facts) => {
            let per_daemon = i64::from(config.database.replica_pool_size);
            let needed = daemons * per_daemon;
            let allowed = i64::from(facts.max_connections) - 3;
            if needed > allowed {
                return Check::warn(
                    "replica",
                    format!(
                        "{name}: in recovery, {behind}; {daemons} daemon(s) x {per_daemon} = {needed} connections of {allowed} allowed"
                    ),
                    "lower database.replica_pool_size or raise the replica's max_connections",
                );
            }
            format!("{needed} of {allowed} connections")
        }
        Err(_) => "connection limit unknown".to_owned(),
    };
    Check::ok("replica", format!("{name}: in recovery, {behind}, {budget}"))
}

async fn database_check(config: &crate::config::Config, url: Option<&str>, extra: &mut Vec<Check>) -> Check {
    let Some(url) = url else {
        return match crate::db::cluster::find_bindir() {
            Some(dir) => Check::ok(
                "database",
                format!("private cluster (not running now); `agora serve` starts it with {}", dir.display()),
            ),
            None => Check::fail(
                "database",
                "no database.url and no PostgreSQL server binaries for the private cluster",
                "apt install postgresql, or set database.url",
            ),
        };
    };
    let shown = crate::config::mask_url_password(url);
    let connect = tokio::time::timeout(Duration::from_secs(5), crate::db::ops::connect(url)).await;
    let mut conn = match connect {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            return Check::fail(
                "database",
                format!("cannot connect to {shown}: {err}"),
                "start PostgreSQL, check database.url, and for peer authentication run as the agora user",
            );
        }
        Err(_) => {
            return Check::fail("database", format!("{shown} did not answer in 5 s"), "check the network and server");
        }
    };
    let local_now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let facts = crate::db::ops::server_facts(&mut conn, local_now).await;
    let facts = match facts {
        Ok(facts) => facts,
        Err(err) => return Check::fail("database", format!("{shown}: {err}"), "check the role's rights"),
    };
    let daemons = crate::db::ops::running_daemons(&mut conn).await.unwrap_or(0).max(1);
    // Each daemon: its pool, the cache listener, and a connection `agora backup` or the CLI may open.
    let per_daemon = i64::from(config.database.pool_size) + 2;
    extra.push(connection_budget(
        "connection budget",
        daemons,
        per_daemon,
        facts.max_connections,
        "database.pool_size",
    ));
    let primary_lsn = crate::db::ops::primary_wal_lsn(&mut conn).await.ok();
    for replica in &config.database.replicas {
        extra.push(replica_check(config, replica, primary_lsn, daemons).await);
    }
    extra.push(if facts.clock_skew > 60.0 {
        Check::fail(
            "clock",
            format!("{:.0} s apart from the database server", facts.clock_skew),
            "enable NTP (systemd-timesyncd) on both machines",
        )
    } else if facts.clock_skew > 5.0 {
        Check::warn(
            "clock",
            format!("{:.1} s apart from the database server", facts.clock_skew),
            "enable NTP (systemd-timesyncd)",
        )
    } else {
        Check::ok("clock", format!("within {:.1} s of the database server", facts.clock_skew))
    });
    if let Ok(pending) = crate::db::migrations::pending(url).await
        && !pending.is_empty()
    {
        extra.push(Check::warn(
            "migrations",
            format!("{} pending: {}", pending.len(), pending.join(", ")),
            "they run when agora starts, or now with `agora migrate`",
        ));
    }
    let short = facts.version.split(" on ").next().unwrap_or(&facts.version).to_owned();
    if facts.version_num < 130_000 {
        Check::fail("database", format!("{short} at {shown}"), "Agora needs PostgreSQL 13 or newer")
    } else {
        Check::ok("database", format!("{short} at {shown}"))
    }
}

fn disk_check(state_dir: &Path) -> Check {
    let probe = if state_dir.exists() { state_dir } else { state_dir.parent().unwrap_or(state_dir) };
    match crate::service::health::filesystem(probe) {
        Some((available, size)) => {
            let used = 1.0 - available as f64 / size.max(1) as f64;
            let detail =
                format!("{} MiB free ({:.0} % used) at {}", available / 1_048_576, used * 100.0, probe.display());
            if available < crate::service::health::DISK_MIN_FREE_BYTES {
                Check::fail("disk", detail, "free space: Agora reports unready below 64 MiB")
            } else if used > 0.8 || available < 1 << 30 {
                Check::warn("disk", detail, "free space or grow the volume before it fills")
            } else {
                Check::ok("disk", detail)
            }
        }
        None => Check::warn("disk", format!("cannot read the file system of {}", probe.display()), "check the path"),
    }
}

fn writable(name: &'static str, dir: &Path) -> Check {
    let probe = dir.join(format!(".agora-doctor-{}", std::process::id()));
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => Check::ok(name, format!("{} is writable", dir.display())),
        Err(err) => Check::fail(
            name,
            format!("{}: {err}", dir.display()),
            "run as the agora user, or give it the directory (the package's postinst does)",
        ),
    }
}

fn tls_check(config: &crate::config::Config, state_dir: &Path) -> Check {
    if !config.tls.enabled() {
        return Check::warn(
            "tls",
            "HTTPS is off",
            "set tls.cert and tls.key (or tls.self_signed) unless a proxy terminates TLS; browsers keep \
             the sign-in cookies (Secure) only over HTTPS or on localhost",
        );
    }
    let host = crate::app::public_host(config);
    let files = match crate::tls::CertificateFiles::from_config(&config.tls, state_dir, &host) {
        Ok(Some(files)) => files,
        Ok(None) => return Check::warn("tls", "HTTPS is off", "set tls.cert and tls.key"),
        Err(err) => return Check::fail("tls", err.to_string(), "check tls.cert and tls.key"),
    };
    match crate::tls::load(&files) {
        Ok(loaded) => {
            let Some(not_after) = loaded.not_after else {
                return Check::warn("tls", "certificate loads; its expiry cannot be read", "check the certificate");
            };
            let days = (not_after - chrono::Utc::now().timestamp()) / 86_400;
            let detail = format!("{} valid for {days} more days", files.cert.display());
            if days < 0 {
                Check::fail("tls", format!("{} expired", files.cert.display()), "renew it, then systemctl reload agora")
            } else if days < 14 {
                Check::warn("tls", detail, "renew it soon, then systemctl reload agora")
            } else {
                Check::ok("tls", detail)
            }
        }
        Err(err) => Check::fail("tls", err.to_string(), "fix tls.cert and tls.key (a PEM full chain and its key)"),
    }
}

async fn smtp_check(config: &crate::config::Config) -> Check {
    match crate::email::Mailer::from_config(&config.email) {
        Ok(None) => Check::warn(
            "email",
            "off: no email.smtp_host",
            "set [email] to send welcome, password-reset and notification emails",
        ),
        Ok(Some(mailer)) => {
            let reachable = tokio::time::timeout(Duration::from_secs(10), mailer.reachable()).await.unwrap_or(false);
            if reachable {
                Check::ok("email", format!("{} answers", mailer.describe))
            } else {
                Check::fail(
                    "email",
                    format!("{} does not answer", mailer.describe),
                    "check email.smtp_host, port, security and the firewall",
                )
            }
        }
        Err(err) => Check::fail("email", err.to_string(), "fix the [email] settings"),
    }
}
