//! Continuous archiving of a system PostgreSQL (the packaged server `database.url` points at):
//! `agora dr enable` sets it up once, as root, and a point-in-time restore puts its data
//! directory back. The server's configuration is changed only here, only with `ALTER SYSTEM`
//! (so `postgresql.auto.conf` shows every change), and never by the package's scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::backup::pitr::{self, Archiving, SystemCluster, Target};
use crate::backup::{BackupError, connect};
use crate::db::cluster::{self, RunAs};
use crate::db::server_admin::{self, ServerAdmin};

/// How `agora dr enable` reports what it did: one line per step.
pub type Say<'a> = &'a mut dyn FnMut(String);

fn admin_error(err: server_admin::AdminError) -> BackupError {
    BackupError::Database(err.to_string())
}

/// The archiving settings Agora needs, given what the server has now: `(name, wanted value)`
/// for each one to change. `wal_level` stays as it is when it already allows archiving.
fn wanted_settings(
    current: &std::collections::BTreeMap<String, server_admin::Setting>,
    archive_command: &str,
    archive_timeout: u64,
) -> Result<Vec<(&'static str, String)>, BackupError> {
    let now = |name: &str| current.get(name).map(server_admin::Setting::intended).unwrap_or("");
    let existing = now("archive_command");
    let ours = existing.contains(&format!("--stanza={} archive-push", pitr::STANZA));
    if !existing.is_empty() && existing != "(disabled)" && !ours {
        return Err(BackupError::Refused(format!(
            "the server already archives with archive_command = '{existing}': Agora will not replace another \
             archiver; remove it (ALTER SYSTEM RESET archive_command, or edit postgresql.conf) if Agora should archive instead"
        )));
    }
    let mut changes = Vec::new();
    if now("wal_level") == "minimal" {
        changes.push(("wal_level", "replica".to_owned()));
    }
    if !matches!(now("archive_mode"), "on" | "always") {
        changes.push(("archive_mode", "on".to_owned()));
    }
    if existing != archive_command {
        changes.push(("archive_command", archive_command.to_owned()));
    }
    if now("archive_timeout") != archive_timeout.to_string() {
        changes.push(("archive_timeout", archive_timeout.to_string()));
    }
    Ok(changes)
}

/// Debian's `<version>/<name>` of a cluster whose configuration file is
/// `/etc/postgresql/<version>/<name>/postgresql.conf`, when `pg_ctlcluster` is installed.
fn debian_cluster(config_file: &str) -> Option<String> {
    let rest = config_file.strip_prefix("/etc/postgresql/")?.strip_suffix("/postgresql.conf")?;
    let (version, name) = rest.split_once('/')?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    (plain(version) && plain(name) && Path::new("/usr/bin/pg_ctlcluster").is_file())
        .then(|| format!("{version}/{name}"))
}

/// Where packaged servers put their Unix socket.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/run/postgresql", "/var/run/postgresql", "/tmp"];

/// Where to look for the server's socket: the operator's directory alone, else the one `url`
/// names and the usual ones.
fn socket_dirs(url: &str, given: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = given {
        return vec![dir.to_path_buf()];
    }
    let named = url
        .split_once('?')
        .into_iter()
        .flat_map(|(_, query)| query.split('&'))
        .filter_map(|pair| pair.strip_prefix("host="))
        .filter(|dir| dir.starts_with('/'))
        .map(PathBuf::from);
    named.chain(DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from)).collect()
}

/// The host `url` connects to is this machine (a socket directory or a loopback address).
fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, query) = match rest.split_once('/') {
        Some((authority, path)) => (authority, path.split_once('?').map_or("", |(_, q)| q)),
        None => (rest.split_once('?').map_or(rest, |(a, _)| a), rest.split_once('?').map_or("", |(_, q)| q)),
    };
    if query.split('&').any(|pair| pair.starts_with("host=/") || pair.starts_with("host=%2F")) {
        return true;
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(h, _)| h),
        None => host_port.split_once(':').map_or(host_port, |(h, _)| h),
    };
    matches!(host, "" | "localhost" | "127.0.0.1" | "::1")
}

/// `agora dr enable`: archiving for the system PostgreSQL `url` points at, idempotently.
/// With `restart`, restarts the server when a changed setting needs it; otherwise says so and
/// stops there (running it again after the restart finishes the job).
pub async fn enable(
    config: &crate::config::Config,
    url: &str,
    socket_dir: Option<&Path>,
    restart: bool,
    say: Say<'_>,
) -> Result<(), BackupError> {
    if !cluster::is_root() {
        return Err(BackupError::Refused("run it as root: sudo agora dr enable".into()));
    }
    if !config.backup.pitr {
        return Err(BackupError::Refused("backup.pitr is off in the configuration: turn it on first".into()));
    }
    if pitr::program().is_none() {
        return Err(BackupError::Refused("pgBackRest is not installed: apt install pgbackrest".into()));
    }
    if !is_local(url) {
        return Err(BackupError::Refused(
            "database.url points at another machine: run `agora dr enable` on the database's machine, or set up \
             archiving there with that server's tools (docs/disaster-recovery.md)"
                .into(),
        ));
    }
    let mut conn = connect(url).await?;
    let location = server_admin::location_of(&mut conn).await.map_err(|err| BackupError::Database(err.to_string()))?;
    let (database, role) =
        server_admin::session_of(&mut conn).await.map_err(|err| BackupError::Database(err.to_string()))?;
    drop(conn);
    let socket_name = format!(".s.PGSQL.{}", location.port);
    let socket_dir =
        socket_dirs(url, socket_dir).into_iter().find(|dir| dir.join(&socket_name).exists()).ok_or_else(|| {
            BackupError::Refused(format!(
                "found no {socket_name} in {}: the server Agora uses runs elsewhere, or give its socket directory \
             (--socket-dir, unix_socket_directories in postgresql.conf)",
                DEFAULT_SOCKET_DIRS.join(", ")
            ))
        })?;
    let socket = socket_dir.join(&socket_name);
    let owner = RunAs::owner_of(&socket).map_err(crate::backup::io(format!("inspecting {}", socket.display())))?;
    let bindir = cluster::find_bindir()
        .ok_or_else(|| BackupError::Refused("no PostgreSQL binaries (psql) found on this machine".into()))?;
    let admin = ServerAdmin::new(&bindir, &socket_dir, location.port, owner).map_err(admin_error)?;
    if admin.postmaster_started().map_err(admin_error)? != location.started {
        return Err(BackupError::Refused(format!(
            "the server on {} is not the one database.url reaches: run `agora dr enable` on the database's machine",
            socket.display()
        )));
    }
    let settings = admin.settings().map_err(admin_error)?;
    let setting = |name: &str| settings.get(name).map(|s| s.value.clone()).unwrap_or_default();
    let data_dir = PathBuf::from(setting("data_directory"));
    say(format!(
        "PostgreSQL {} on {} (port {}), data in {}, run by {}",
        setting("server_version_num"),
        socket_dir.display(),
        location.port,
        data_dir.display(),
        admin.role()
    ));

    let home = config.backup.resolved_pitr_dir();
    let state_dir = config.paths.resolved_state_dir();
    if home.starts_with(&state_dir) {
        return Err(BackupError::Refused(format!(
            "backup.pitr_dir ({}) is inside the state directory, which the server's user cannot enter: choose another",
            home.display()
        )));
    }
    let made_home = !home.exists();
    std::fs::create_dir_all(&home).map_err(crate::backup::io(format!("creating {}", home.display())))?;
    if made_home {
        say(format!("created {} for pgBackRest (owned by {})", home.display(), admin.role()));
    }
    let system = SystemCluster {
        home,
        data_dir,
        socket_dir,
        port: location.port,
        owner,
        debian_cluster: debian_cluster(&setting("config_file")),
    };
    let (archiving, changed) = Archiving::write_system(&system, admin.role(), config.backup.pitr_days)?
        .ok_or_else(|| BackupError::Refused("pgBackRest is not installed: apt install pgbackrest".into()))?;
    say(if changed {
        format!("wrote {} (repository {})", archiving.config_file.display(), archiving.repository.display())
    } else {
        format!("{} is already up to date", archiving.config_file.display())
    });

    let changes = wanted_settings(&settings, &archiving.archive_command(), config.backup.archive_timeout_seconds)?;
    for (name, value) in &changes {
        admin.alter_system(name, value).map_err(admin_error)?;
        let before = settings.get(*name).map(|s| s.intended().to_owned()).unwrap_or_default();
        let before = if before.is_empty() { "(empty)".to_owned() } else { before };
        say(format!(
            "{name}: {before} → {value} (ALTER SYSTEM, in {}/postgresql.auto.conf)",
            system.data_dir.display()
        ));
    }
    if changes.is_empty() {
        say("the server's archiving settings are already right".to_owned());
    } else {
        admin.reload().map_err(admin_error)?;
        say("reloaded the server's configuration".to_owned());
    }
    for function in admin.grant_drill_functions(&database, &role).map_err(admin_error)? {
        say(format!(
            "granted {role} EXECUTE on {function} in database {database} (the restore drill marks its point with it)"
        ));
    }
    let pending: Vec<String> =
        admin.settings().map_err(admin_error)?.into_iter().filter(|(_, s)| s.pending_restart).map(|(n, _)| n).collect();
    if !pending.is_empty() {
        let how = restart_command(&system);
        if !restart {
            say(format!(
                "{}: in effect only once PostgreSQL restarts; run `agora dr enable --restart`, or restart it yourself \
                 ({how}) and run `agora dr enable` again to create the repository and take the first base backup",
                pending.join(" and ")
            ));
            return Ok(());
        }
        restart_server(&system, &bindir)?;
        say(format!("restarted PostgreSQL ({how}) for {}", pending.join(" and ")));
    }

    blocking(archiving.clone(), |a| a.ensure_stanza()).await?;
    say(format!("pgBackRest stanza `{}` is ready", pitr::STANZA));
    blocking(archiving.clone(), |a| a.check()).await?;
    say("archiving works: a WAL segment switched now reached the repository".to_owned());
    let backups = blocking(archiving.clone(), |a| a.base_backups()).await?;
    match backups.last() {
        Some(newest) => say(format!("{} base backups in the repository, the newest {}", backups.len(), newest.label)),
        None => {
            let taken = blocking(archiving.clone(), |a| a.base_backup()).await?;
            say(format!("took the first base backup, {} ({})", taken.label, taken.kind));
        }
    }
    say(enable_timer());
    Ok(())
}

async fn blocking<T: Send + 'static>(
    archiving: Archiving,
    work: impl FnOnce(&Archiving) -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(move || work(&archiving)).await.map_err(|err| BackupError::Database(err.to_string()))?
}

/// What restarts the server, for the operator to read.
fn restart_command(system: &SystemCluster) -> String {
    match &system.debian_cluster {
        Some(name) => format!("pg_ctlcluster {} restart", name.replace('/', " ")),
        None => format!("pg_ctl restart -D {}", system.data_dir.display()),
    }
}

/// Restarts (or, with `start`, starts) the server and waits until it accepts connections.
fn control_server(system: &SystemCluster, bindir: &Path, action: &str) -> Result<(), BackupError> {
    let mut command = match &system.debian_cluster {
        Some(name) => {
            let (version, cluster) = name.split_once('/').unwrap_or((name, "main"));
            let mut command = Command::new("/usr/bin/pg_ctlcluster");
            command.args([version, cluster, action]);
            command
        }
        None => {
            let mut command = Command::new(bindir.join("pg_ctl"));
            // The server's output must not go to a pipe this process waits on.
            let log = system.home.join("log").join("postgresql.log");
            command
                .arg(action)
                .arg("-D")
                .arg(&system.data_dir)
                .arg("-l")
                .arg(log)
                .args(["-m", "fast", "-w", "-t", "300"]);
            system.owner.apply(&mut command);
            command
        }
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(crate::backup::io(format!("running {}", restart_command(system))))?;
    if output.status.success() {
        return Ok(());
    }
    Err(BackupError::Tool {
        tool: "restarting PostgreSQL",
        detail: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
            .trim()
            .to_owned(),
    })
}

fn restart_server(system: &SystemCluster, bindir: &Path) -> Result<(), BackupError> {
    control_server(system, bindir, "restart")
}

/// Turns on the daily base backup and weekly drill (agora-dr.timer) where systemd runs.
fn enable_timer() -> String {
    let manual = "run `agora dr backup` daily as root (a base backup; a restore drill weekly)";
    if !Path::new("/run/systemd/system").is_dir() {
        return format!("systemd does not run here: {manual}");
    }
    match Command::new("systemctl").args(["enable", "--now", "agora-dr.timer"]).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => {
            "agora-dr.timer is on: a base backup daily, a restore drill weekly (systemctl list-timers agora-dr.timer)"
                .into()
        }
        Ok(out) => {
            format!("could not turn on agora-dr.timer ({}): {manual}", String::from_utf8_lossy(&out.stderr).trim())
        }
        Err(err) => format!("could not run systemctl ({err}): {manual}"),
    }
}

/// Whether the server of `data_dir` runs (its `postmaster.pid` names a live process).
fn server_runs(data_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else { return false };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<libc::pid_t>().ok()) else { return false };
    // SAFETY: signal 0 only checks that the process exists.
    #[allow(unsafe_code)]
    let alive = unsafe { libc::kill(pid, 0) == 0 };
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A point-in-time restore of the system PostgreSQL's data directory (the server must be
/// stopped; the directory it replaces is kept beside it). Starts the server afterwards when
/// `pg_ctlcluster` manages it, and says what it did; returns whether the server was started.
pub fn restore(archiving: &Archiving, target: Target, force: bool, say: Say<'_>) -> Result<bool, BackupError> {
    let system =
        archiving.system_cluster().ok_or_else(|| BackupError::Refused("not a system PostgreSQL's archive".into()))?;
    archiving.check_can_run()?;
    let data_dir = &system.data_dir;
    if server_runs(data_dir) {
        let stop = match &system.debian_cluster {
            Some(name) => format!("systemctl stop postgresql@{}", name.replace('/', "-")),
            None => format!("pg_ctl stop -D {}", data_dir.display()),
        };
        return Err(BackupError::Refused(format!(
            "PostgreSQL is running on {}: stop it first ({stop})",
            data_dir.display()
        )));
    }
    if data_dir.join("PG_VERSION").exists() && !force {
        return Err(BackupError::Refused(format!(
            "{} holds a database: pass --force to replace it (the current directory is kept beside it)",
            data_dir.display()
        )));
    }
    let name = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    let kept =
        data_dir.with_file_name(format!("{name}.before-restore-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    if data_dir.exists() {
        std::fs::rename(data_dir, &kept).map_err(crate::backup::io(format!("moving {} aside", data_dir.display())))?;
        say(format!("moved {} aside to {}", data_dir.display(), kept.display()));
    }
    let made = std::fs::create_dir(data_dir)
        .map_err(crate::backup::io(format!("creating {}", data_dir.display())))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(crate::backup::io(format!("setting the mode of {}", data_dir.display())))?;
            system.owner.give(data_dir).map_err(|err| BackupError::Database(err.to_string()))
        });
    if let Err(err) = made.and_then(|()| archiving.restore(data_dir, target)) {
        let _ = std::fs::remove_dir_all(data_dir);
        if kept.exists() {
            let _ = std::fs::rename(&kept, data_dir);
        }
        return Err(err);
    }
    say(format!("restored {} from the archive", data_dir.display()));
    if system.debian_cluster.is_some() {
        let bindir = cluster::find_bindir().unwrap_or_default();
        control_server(system, &bindir, "start")?;
        say("started PostgreSQL: it replays the archived WAL up to the target and then opens for writes".into());
        return Ok(true);
    }
    say(format!(
        "start PostgreSQL now (as you run it, e.g. pg_ctl start -D {}): it replays the archived WAL up to the target and \
         then opens for writes",
        data_dir.display()
    ));
    Ok(false)
}

/// How long a restored server may take to replay the archive.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(900);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::server_admin::Setting;

    fn settings(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, Setting> {
        pairs
            .iter()
            .map(|(n, v)| {
                ((*n).to_owned(), Setting { value: (*v).to_owned(), pending_restart: false, configured: None })
            })
            .collect()
    }

    #[test]
    fn a_fresh_server_gets_every_setting_and_a_set_up_one_none() {
        let command = "/usr/bin/pgbackrest --config=/x --stanza=agora archive-push %p";
        let fresh = settings(&[
            ("wal_level", "replica"),
            ("archive_mode", "off"),
            ("archive_command", ""),
            ("archive_timeout", "0"),
        ]);
        let names: Vec<_> = wanted_settings(&fresh, command, 30).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["archive_mode", "archive_command", "archive_timeout"]);
        let done = settings(&[
            ("wal_level", "replica"),
            ("archive_mode", "on"),
            ("archive_command", command),
            ("archive_timeout", "30"),
        ]);
        assert!(wanted_settings(&done, command, 30).unwrap().is_empty());
        let minimal = settings(&[
            ("wal_level", "minimal"),
            ("archive_mode", "on"),
            ("archive_command", command),
            ("archive_timeout", "30"),
        ]);
        assert_eq!(wanted_settings(&minimal, command, 30).unwrap(), [("wal_level", "replica".to_owned())]);
    }

    #[test]
    fn another_archiver_is_never_replaced() {
        let theirs = settings(&[("archive_mode", "on"), ("archive_command", "cp %p /mnt/wal/%f")]);
        assert!(matches!(wanted_settings(&theirs, "ours", 30), Err(BackupError::Refused(_))));
    }

    #[test]
    fn a_setting_waiting_for_a_restart_is_not_changed_again() {
        let mut waiting = settings(&[
            ("wal_level", "replica"),
            ("archive_mode", "off"),
            ("archive_command", "x --stanza=agora archive-push %p"),
            ("archive_timeout", "30"),
        ]);
        if let Some(mode) = waiting.get_mut("archive_mode") {
            mode.pending_restart = true;
            mode.configured = Some("on".into());
        }
        assert!(wanted_settings(&waiting, "x --stanza=agora archive-push %p", 30).unwrap().is_empty());
    }

    #[test]
    fn only_local_servers_are_set_up() {
        assert!(is_local("postgres://agora@localhost/agora?host=/run/postgresql"));
        assert!(is_local("postgres://agora:pw@127.0.0.1:5433/agora"));
        assert!(is_local("postgres://agora@[::1]:5432/agora"));
        assert!(!is_local("postgres://agora@db.example.net/agora"));
        assert!(!is_local("postgres://localhost@db.example.net:5432/agora"));
    }

    #[test]
    fn debian_cluster_names_come_from_the_config_path() {
        let named = debian_cluster("/etc/postgresql/15/main/postgresql.conf");
        assert_eq!(named.is_some(), Path::new("/usr/bin/pg_ctlcluster").is_file());
        assert_eq!(debian_cluster("/srv/pg/postgresql.conf"), None);
    }
}
