//! Continuous archiving and point-in-time restore of the private cluster, with pgBackRest:
//! PostgreSQL hands every finished WAL segment to `pgbackrest archive-push` (and switches
//! segments at least every `backup.archive_timeout_seconds` while it writes), base backups
//! are taken at first start and by `agora backup`, and `agora restore --to-time` asks
//! pgBackRest for the newest base backup before the target plus the WAL up to it.
//!
//! The repository is `<backup.dir>/pitr`; retention keeps every base backup and segment a
//! restore within `backup.pitr_days` needs. Everything runs as the cluster's own user.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};

use crate::backup::BackupError;
use crate::db::cluster;

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

/// Whether the configuration asks Agora to archive: `backup.pitr` is on and the database is
/// the private cluster (no `database.url`). Archiving also needs [`program`].
pub fn wanted(config: &crate::config::Config) -> bool {
    config.backup.pitr && config.database.url.is_empty() && config.database.url_file.is_empty()
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

impl Archiving {
    /// The private cluster's archiving as `config` sets it up (writing its pgBackRest
    /// configuration): `None` when it is not [`wanted`] or pgBackRest is not installed.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Self>, BackupError> {
        if !wanted(config) {
            return Ok(None);
        }
        let state_dir = config.paths.resolved_state_dir();
        let backup_dir = config.backup.resolved_dir(&state_dir);
        Self::for_private_cluster(&state_dir, &backup_dir, &state_dir.join("postgres"), config.backup.pitr_days)
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
            "# Written by Agora at each start from [backup] in agora.toml: edit that, not this.\n\
             [global]\n\
             repo1-path={repository}\n\
             repo1-retention-full-type=time\n\
             repo1-retention-full={pitr_days}\n\
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
             pg1-user={user}\n",
            repository = repository.display(),
            home = home.display(),
            data = cluster_root.join("data").display(),
            socket = cluster_root.join("run").display(),
            user = cluster::SUPERUSER,
        );
        let config_file = home.join("pgbackrest.conf");
        std::fs::write(&config_file, config)
            .map_err(crate::backup::io(format!("writing {}", config_file.display())))?;
        // Only what Agora made: pgBackRest creates everything below as the server's user, and a
        // repository can hold thousands of segments.
        let made = [home.as_path(), &home.join("log"), &home.join("lock"), &repository, &config_file];
        cluster::give_entries_to_server_user(&made).map_err(|err| BackupError::Database(err.to_string()))?;
        Ok(Some(Self { config_file, repository, program }))
    }

    /// The `archive_command` PostgreSQL runs for each finished WAL segment.
    pub fn archive_command(&self) -> String {
        format!("{} --config={} --stanza={STANZA} archive-push %p", self.program.display(), self.config_file.display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.arg(format!("--config={}", self.config_file.display())).arg(format!("--stanza={STANZA}")).args(args);
        cluster::run_as_server_user(&mut command);
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
        self.run("pgbackrest backup", &["backup", kind])?;
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
