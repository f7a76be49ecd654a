//! Continuous archiving and point-in-time restore of the private cluster, with pgBackRest:
//! PostgreSQL hands every finished WAL segment to `pgbackrest archive-push` (and switches
//! segments at least every `backup.archive_timeout_seconds` while it writes), base backups
//! are taken at first start and by `agora backup`, and `agora restore --to-time` asks
//! pgBackRest for the newest base backup before the target plus the WAL up to it.
//!
//! The private cluster's repository is `<backup.dir>/pitr`; a system PostgreSQL's (set up by
//! `agora dr enable`, see [`crate::backup::system`]) is `<backup.pitr_dir>/repo`. Retention
//! keeps every base backup and segment a restore within `backup.pitr_days` needs. Everything
//! runs as the cluster's own user.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};

use crate::backup::BackupError;
use crate::db::cluster::{self, RunAs};

/// The stanza (pgBackRest's name for one cluster).
pub const STANZA: &str = "agora";

/// Where the configuration, logs and locks of the private cluster's pgBackRest live.
pub fn home(state_dir: &Path) -> PathBuf {
    state_dir.join("pgbackrest")
}

/// The repository under the backup directory.
pub fn repository(backup_dir: &Path) -> PathBuf {
    backup_dir.join("pitr")
}

/// Whether the configuration asks Agora to archive its private cluster: `backup.pitr` is on and
/// the database is the private cluster (no `database.url`). Archiving also needs [`program`].
pub fn wanted(config: &crate::config::Config) -> bool {
    config.backup.pitr && config.database.url.is_empty() && config.database.url_file.is_empty()
}

/// The configuration `agora dr enable` wrote for a system PostgreSQL.
pub fn system_config_file(config: &crate::config::Config) -> PathBuf {
    config.backup.resolved_pitr_dir().join("pgbackrest.conf")
}

/// Whether a system PostgreSQL is archived: `database.url` is set and `agora dr enable` ran.
pub fn system_enabled(config: &crate::config::Config) -> bool {
    config.backup.pitr && !wanted(config) && system_config_file(config).is_file()
}

/// Where the status of restore drills is kept, when Agora archives at all: the backup
/// directory for the private cluster, `backup.pitr_dir` for a system PostgreSQL.
pub fn drill_status_dir(config: &crate::config::Config) -> Option<PathBuf> {
    if wanted(config) {
        return program().map(|_| config.backup.resolved_dir(&config.paths.resolved_state_dir()));
    }
    system_enabled(config).then(|| config.backup.resolved_pitr_dir())
}

/// The pgBackRest program, when it is installed.
pub fn program() -> Option<PathBuf> {
    ["/usr/bin/pgbackrest", "/usr/local/bin/pgbackrest"].into_iter().map(PathBuf::from).find(|p| p.is_file())
}

/// One cluster's archiving set-up.
#[derive(Debug, Clone)]
pub struct Archiving {
    /// The configuration file Agora writes.
    pub config_file: PathBuf,
    /// The repository directory.
    pub repository: PathBuf,
    program: PathBuf,
    pitr_days: u32,
    cluster: Cluster,
}

/// Which server is archived.
#[derive(Debug, Clone)]
enum Cluster {
    /// The private cluster; drills go under the backup directory.
    Private { backup_dir: PathBuf },
    /// A system PostgreSQL set up by `agora dr enable`.
    System(SystemCluster),
}

/// A system PostgreSQL whose archiving `agora dr enable` set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCluster {
    /// `backup.pitr_dir`: configuration, log, drill status and the repository.
    pub home: PathBuf,
    /// The server's data directory.
    pub data_dir: PathBuf,
    /// Its Unix socket directory and port.
    pub socket_dir: PathBuf,
    /// Its port.
    pub port: u16,
    /// The OS user it runs as (who owns `home`), and the role of that name.
    pub owner: RunAs,
    /// Debian's name of the cluster (`15/main`), when `pg_ctlcluster` manages it.
    pub debian_cluster: Option<String>,
}

/// What `agora restore` brings the database back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The state at this moment.
    Time(DateTime<Utc>),
    /// Everything archived.
    Latest,
}

/// One base backup in the repository.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BaseBackup {
    /// pgBackRest's label, e.g. `20261201-153625F`.
    pub label: String,
    /// `full`, `diff` or `incr`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it started and stopped (Unix seconds).
    pub timestamp: Stamps,
}

/// Start and stop times of a base backup (Unix seconds).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Stamps {
    /// Started.
    pub start: i64,
    /// Stopped.
    pub stop: i64,
}

/// The configuration file's text; `port` is left out for the private cluster's fixed one.
fn render_config(
    repository: &Path,
    home: &Path,
    data_dir: &Path,
    socket_dir: &Path,
    port: Option<u16>,
    user: &str,
) -> String {
    let port = port.map(|p| format!("pg1-port={p}\n")).unwrap_or_default();
    format!(
        "[global]\n\
         repo1-path={repository}\n\
         start-fast=y\n\
         compress-type=lz4\n\
         log-path={home}/log\n\
         lock-path={home}/lock\n\
         log-level-console=warn\n\
         log-level-file=info\n\
         \n\
         [{STANZA}]\n\
         pg1-path={data}\n\
         pg1-socket-path={socket}\n\
         {port}\
         pg1-user={user}\n",
        repository = repository.display(),
        home = home.display(),
        data = data_dir.display(),
        socket = socket_dir.display(),
    )
}

impl Archiving {
    /// The archiving `config` asks for: the private cluster's (writing its pgBackRest
    /// configuration) or a system PostgreSQL's set up by `agora dr enable`. `None` when Agora
    /// does not archive (or pgBackRest is not installed).
    pub fn for_config(config: &crate::config::Config) -> Result<Option<Self>, BackupError> {
        if wanted(config) { Self::private(config) } else { Self::system(config) }
    }

    /// The private cluster's archiving as `config` sets it up (writing its pgBackRest
    /// configuration): `None` when it is not [`wanted`] or pgBackRest is not installed.
    pub fn private(config: &crate::config::Config) -> Result<Option<Self>, BackupError> {
        if !wanted(config) {
            return Ok(None);
        }
        let state_dir = config.paths.resolved_state_dir();
        let backup_dir = config.backup.resolved_dir(&state_dir);
        Self::for_private_cluster(&state_dir, &backup_dir, &state_dir.join("postgres"), config.backup.pitr_days)
    }

    /// A system PostgreSQL's archiving, from the configuration `agora dr enable` wrote.
    pub fn system(config: &crate::config::Config) -> Result<Option<Self>, BackupError> {
        if !system_enabled(config) {
            return Ok(None);
        }
        let Some(program) = program() else { return Ok(None) };
        let config_file = system_config_file(config);
        let text = std::fs::read_to_string(&config_file)
            .map_err(crate::backup::io(format!("reading {}", config_file.display())))?;
        let value = |key: &str| {
            text.lines().find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix('='))).map(str::trim)
        };
        let broken = |what: &str| {
            BackupError::Corrupt(format!("{} has no {what}: run `agora dr enable` again", config_file.display()))
        };
        let home = config.backup.resolved_pitr_dir();
        let cluster = SystemCluster {
            data_dir: PathBuf::from(value("pg1-path").ok_or_else(|| broken("pg1-path"))?),
            socket_dir: PathBuf::from(value("pg1-socket-path").ok_or_else(|| broken("pg1-socket-path"))?),
            port: value("pg1-port").and_then(|p| p.parse().ok()).ok_or_else(|| broken("pg1-port"))?,
            owner: RunAs::owner_of(&home).map_err(crate::backup::io(format!("inspecting {}", home.display())))?,
            debian_cluster: value("# debian-cluster").map(str::to_owned),
            home,
        };
        Ok(Some(Self {
            config_file,
            repository: cluster.home.join("repo"),
            program,
            pitr_days: config.backup.pitr_days,
            cluster: Cluster::System(cluster),
        }))
    }

    /// Writes the configuration of a system PostgreSQL's archiving into `cluster.home` (owned
    /// by the server's user); whether the file changed. `None` when pgBackRest is missing.
    pub fn write_system(
        cluster: &SystemCluster,
        role: &str,
        pitr_days: u32,
    ) -> Result<Option<(Self, bool)>, BackupError> {
        let Some(program) = program() else { return Ok(None) };
        let home = &cluster.home;
        let repository = home.join("repo");
        let debian = cluster.debian_cluster.as_ref().map(|c| format!("# debian-cluster={c}\n")).unwrap_or_default();
        let text = format!(
            "# Written by `agora dr enable` for the system PostgreSQL Agora uses; run it again rather than edit.\n{debian}{}",
            render_config(&repository, home, &cluster.data_dir, &cluster.socket_dir, Some(cluster.port), role)
        );
        let config_file = home.join("pgbackrest.conf");
        let changed = std::fs::read_to_string(&config_file).ok().as_deref() != Some(text.as_str());
        for dir in [home.as_path(), &home.join("log"), &home.join("lock"), &repository] {
            std::fs::create_dir_all(dir).map_err(crate::backup::io(format!("creating {}", dir.display())))?;
        }
        if changed {
            std::fs::write(&config_file, text)
                .map_err(crate::backup::io(format!("writing {}", config_file.display())))?;
        }
        // The home is readable by all (the daemon reads the drill status there); the
        // repository, log and locks only by the server's user.
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [
            (home.as_path(), 0o755),
            (&config_file, 0o644),
            (&repository, 0o750),
            (&home.join("log"), 0o750),
            (&home.join("lock"), 0o750),
        ] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(crate::backup::io(format!("setting the mode of {}", path.display())))?;
            std::os::unix::fs::chown(path, Some(cluster.owner.uid), Some(cluster.owner.gid))
                .map_err(crate::backup::io(format!("chown {}", path.display())))?;
        }
        let archiving = Self { config_file, repository, program, pitr_days, cluster: Cluster::System(cluster.clone()) };
        Ok(Some((archiving, changed)))
    }

    /// Writes the configuration for the private cluster under `cluster_root` (data and socket
    /// directories), keeping `pitr_days` of history in `<backup_dir>/pitr`. `None` when
    /// pgBackRest is not installed.
    pub fn for_private_cluster(
        state_dir: &Path,
        backup_dir: &Path,
        cluster_root: &Path,
        pitr_days: u32,
    ) -> Result<Option<Self>, BackupError> {
        let Some(program) = program() else { return Ok(None) };
        let home = home(state_dir);
        let repository = repository(backup_dir);
        for dir in [&home, &home.join("log"), &home.join("lock"), &repository] {
            std::fs::create_dir_all(dir).map_err(crate::backup::io(format!("creating {}", dir.display())))?;
        }
        let config = format!(
            "# Written by Agora at each start from [backup] in agora.toml: edit that, not this.\n{}",
            render_config(
                &repository,
                &home,
                &cluster_root.join("data"),
                &cluster_root.join("run"),
                None,
                cluster::SUPERUSER
            )
        );
        let config_file = home.join("pgbackrest.conf");
        std::fs::write(&config_file, config)
            .map_err(crate::backup::io(format!("writing {}", config_file.display())))?;
        // Only what Agora made: pgBackRest creates everything below as the server's user, and a
        // repository can hold thousands of segments.
        let made = [home.as_path(), &home.join("log"), &home.join("lock"), &repository, &config_file];
        cluster::give_entries_to_server_user(&made).map_err(|err| BackupError::Database(err.to_string()))?;
        let cluster = Cluster::Private { backup_dir: backup_dir.to_path_buf() };
        Ok(Some(Self { config_file, repository, program, pitr_days, cluster }))
    }

    /// The system PostgreSQL archived, if that is what this archives.
    pub fn system_cluster(&self) -> Option<&SystemCluster> {
        match &self.cluster {
            Cluster::System(cluster) => Some(cluster),
            Cluster::Private { .. } => None,
        }
    }

    /// Where drills record their outcome (`status.json`).
    pub fn status_dir(&self) -> &Path {
        match &self.cluster {
            Cluster::Private { backup_dir } => backup_dir,
            Cluster::System(cluster) => &cluster.home,
        }
    }

    /// Where a drill restores its scratch copy.
    pub fn scratch_dir(&self) -> PathBuf {
        match &self.cluster {
            Cluster::Private { backup_dir } => backup_dir.join(".drill"),
            Cluster::System(cluster) => cluster.home.join("drill"),
        }
    }

    /// Hands `dir` to the user pgBackRest runs as.
    pub fn give_to_server_user(&self, dir: &Path) -> Result<(), BackupError> {
        match &self.cluster {
            Cluster::Private { .. } => cluster::give_to_server_user(dir),
            Cluster::System(system) => system.owner.give(dir),
        }
        .map_err(|err| BackupError::Database(err.to_string()))
    }

    /// Refuses when this process cannot act as the archived server's user (a system
    /// PostgreSQL's archive is handled by root, or by that user).
    pub fn check_can_run(&self) -> Result<(), BackupError> {
        match &self.cluster {
            Cluster::System(system) if !cluster::is_root() && cluster::current_uid() != system.owner.uid => {
                Err(BackupError::Refused(format!(
                    "the system PostgreSQL's archive in {} is handled as root (sudo agora …; agora-dr.service does it daily)",
                    system.home.display()
                )))
            }
            _ => Ok(()),
        }
    }

    /// The `archive_command` PostgreSQL runs for each finished WAL segment.
    pub fn archive_command(&self) -> String {
        format!("{} --config={} --stanza={STANZA} archive-push %p", self.program.display(), self.config_file.display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.arg(format!("--config={}", self.config_file.display())).arg(format!("--stanza={STANZA}")).args(args);
        match &self.cluster {
            Cluster::Private { .. } => cluster::run_as_server_user(&mut command),
            Cluster::System(system) => system.owner.apply(&mut command),
        }
        command
    }

    fn run(&self, what: &'static str, args: &[&str]) -> Result<String, BackupError> {
        let output =
            self.command(args).output().map_err(crate::backup::io(format!("running {}", self.program.display())))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if detail.is_empty() {
            detail = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        Err(BackupError::Tool { tool: what, detail })
    }

    /// Creates the stanza when the repository has none (the server must run).
    pub fn ensure_stanza(&self) -> Result<(), BackupError> {
        self.run("pgbackrest stanza-create", &["stanza-create"]).map(drop)
    }

    /// Checks that the server's `archive_command` reaches the repository: switches WAL and
    /// waits until the segment is archived (`pgbackrest check`).
    pub fn check(&self) -> Result<(), BackupError> {
        self.run("pgbackrest check", &["check"]).map(drop)
    }

    /// The base backups in the repository, oldest first.
    pub fn base_backups(&self) -> Result<Vec<BaseBackup>, BackupError> {
        #[derive(serde::Deserialize)]
        struct Stanza {
            #[serde(default)]
            backup: Vec<BaseBackup>,
        }
        let text = self.run("pgbackrest info", &["info", "--output=json"])?;
        let stanzas: Vec<Stanza> = serde_json::from_str(&text).map_err(|e| BackupError::Corrupt(e.to_string()))?;
        Ok(stanzas.into_iter().flat_map(|s| s.backup).collect())
    }

    /// Takes a base backup: full when the newest full is a day old or there is none, else
    /// incremental. Expires what `pitr_days` no longer needs.
    pub fn base_backup(&self) -> Result<BaseBackup, BackupError> {
        let now = Utc::now().timestamp();
        let fresh_full = self.base_backups()?.iter().any(|b| b.kind == "full" && now - b.timestamp.start < 86_400);
        let kind = if fresh_full { "--type=incr" } else { "--type=full" };
        let retention = format!("--repo1-retention-full={}", self.pitr_days);
        self.run("pgbackrest backup", &["backup", kind, "--repo1-retention-full-type=time", &retention])?;
        self.base_backups()?.pop().ok_or_else(|| BackupError::Corrupt("no base backup after pgbackrest backup".into()))
    }

    /// Restores into `data_dir` for a drill: up to the restore point `point`, with archiving
    /// off (a scratch copy must never push WAL into the repository).
    pub fn restore_to_point(&self, data_dir: &Path, point: &str) -> Result<(), BackupError> {
        let path = format!("--pg1-path={}", data_dir.display());
        let target = format!("--target={point}");
        let args = ["restore", &path, "--type=name", &target, "--target-action=promote", "--archive-mode=off"];
        self.run("pgbackrest restore", &args).map(drop)
    }

    /// Restores into `data_dir` (which must not exist or be empty): the newest base backup
    /// before the target and the WAL up to it; the server promotes itself once there.
    pub fn restore(&self, data_dir: &Path, target: Target) -> Result<(), BackupError> {
        let path = format!("--pg1-path={}", data_dir.display());
        match target {
            Target::Time(at) => {
                let at = format!("--target={}", at.format("%Y-%m-%d %H:%M:%S%.6f+00"));
                self.run("pgbackrest restore", &["restore", &path, "--type=time", &at, "--target-action=promote"])
            }
            Target::Latest => self.run("pgbackrest restore", &["restore", &path]),
        }
        .map(drop)
    }
}
