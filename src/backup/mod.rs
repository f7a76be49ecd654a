//! `agora backup`, `agora backup --verify` and `agora restore`: one tar archive holding a
//! `pg_dump` (custom format), the job queue, uploaded media and a manifest with versions,
//! row counts and a SHA-256 per file. Restore checks every checksum before it touches
//! anything; verify restores into a scratch database and compares row counts.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod drill;
pub mod pitr;
pub mod system;

use crate::queue::{Queue, QueueError, control};

/// Tables whose row counts the manifest records and verify compares.
pub const COUNTED_TABLES: [&str; 7] =
    ["users", "communities", "posts", "comments", "post_votes", "comment_votes", "audit_log"];

const DUMP: &str = "database.dump";
const QUEUE: &str = "queue.jsonl";
const MANIFEST: &str = "manifest.json";

/// Why a backup, verify or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `pg_dump` or `pg_restore` failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its error output.
        detail: String,
    },
    /// The database could not be queried.
    #[error("database: {0}")]
    Database(String),
    /// The job queue could not be read or written.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The archive is damaged or not an Agora backup.
    #[error("the archive is not usable: {0}")]
    Corrupt(String),
    /// The restore target holds data and `--force` was not given.
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// One file of the archive in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format of the archive.
    pub format: u32,
    /// The Agora version that wrote it.
    pub agora_version: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Migrations applied to the database at the time.
    pub migrations: Vec<String>,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
    /// Rows per table of [`COUNTED_TABLES`].
    pub rows: std::collections::BTreeMap<String, i64>,
    /// Entries of the queue export.
    pub queue_entries: u64,
    /// Every other file of the archive (by its path in the archive).
    pub files: std::collections::BTreeMap<String, FileEntry>,
}

/// What the timer and the metrics read: `<backup dir>/status.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// When the last backup succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// How long it took, in seconds.
    pub last_duration_seconds: f64,
    /// Its size in bytes.
    pub last_size_bytes: u64,
    /// Its file name.
    pub last_archive: Option<String>,
    /// When the last verification succeeded.
    pub last_verify_at: Option<DateTime<Utc>>,
    /// The archive it verified.
    pub last_verified_archive: Option<String>,
    /// When the last restore drill of the continuous archive ran.
    pub last_drill_at: Option<DateTime<Utc>>,
    /// When a drill last passed.
    pub last_drill_success_at: Option<DateTime<Utc>>,
    /// How long the last passing drill's restore took (its RTO), in seconds.
    pub last_drill_rto_seconds: f64,
    /// How far behind the live database its archive was (its RPO), in seconds.
    pub last_drill_rpo_seconds: f64,
    /// Why the last drill failed (`None` when it passed).
    pub last_drill_error: Option<String>,
}

impl Status {
    /// The status in `dir`, or the empty status.
    pub fn read(dir: &Path) -> Self {
        std::fs::read(dir.join("status.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let tmp = dir.join("status.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| BackupError::Corrupt(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(io("writing the backup status"))?;
        // Readable by the daemon, which exports it, whoever wrote it (root's drill of a system
        // PostgreSQL); it holds times, sizes and errors, and its directory guards it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
            .map_err(io("writing the backup status"))?;
        std::fs::rename(&tmp, dir.join("status.json")).map_err(io("writing the backup status"))
    }
}

/// Where things are, from the configuration.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The state directory (queue, media, control socket).
    pub state_dir: PathBuf,
    /// Where archives go.
    pub backup_dir: PathBuf,
}

fn sha256_file(path: &Path) -> Result<FileEntry, BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(FileEntry { sha256: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(), bytes })
}

/// The PostgreSQL client program `name` (`pg_dump`, `pg_restore`) next to the server
/// binaries, else from `PATH`.
fn pg_tool(name: &str) -> PathBuf {
    crate::db::cluster::find_bindir().map(|dir| dir.join(name)).filter(|p| p.is_file()).unwrap_or_else(|| name.into())
}

fn run_tool(tool: &'static str, command: &mut Command) -> Result<String, BackupError> {
    let output = command.output().map_err(|err| BackupError::Tool { tool, detail: err.to_string() })?;
    if !output.status.success() {
        return Err(BackupError::Tool { tool, detail: String::from_utf8_lossy(&output.stderr).trim().to_owned() });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

async fn connect(url: &str) -> Result<crate::db::ops::DirectConn, BackupError> {
    crate::db::ops::connect(url).await.map_err(|err| BackupError::Database(err.to_string()))
}

/// Rows per counted table; a table that does not exist counts as absent.
/// Users in the database at `url` (0 when the table does not exist yet).
pub async fn user_count(url: &str) -> Result<i64, BackupError> {
    Ok(row_counts(url).await?.get("users").copied().unwrap_or(0))
}

/// Waits until the server at `url` has finished recovery (a restore replaying archived WAL
/// promotes itself at its target).
pub async fn wait_out_of_recovery(url: &str, timeout: std::time::Duration) -> Result<(), BackupError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut conn = connect(url).await?;
        let in_recovery = conn
            .run(async |conn| crate::db::ops::replay_position(conn).await)
            .await
            .map_err(|err| BackupError::Database(err.to_string()))?
            .0;
        if !in_recovery {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(BackupError::Database(format!(
                "the restored server is still replaying WAL after {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn row_counts(url: &str) -> Result<std::collections::BTreeMap<String, i64>, BackupError> {
    let mut conn = connect(url).await?;
    Ok(crate::db::ops::row_counts(&mut conn, &COUNTED_TABLES).await)
}

async fn applied_migrations(url: &str) -> Result<Vec<String>, BackupError> {
    let mut conn = connect(url).await?;
    Ok(crate::db::ops::applied_migrations(&mut conn).await)
}

/// Writes the queue export to `path`: through the running daemon's control socket when it
/// holds the queue, else directly.
async fn export_queue(paths: &Paths, path: &Path) -> Result<u64, BackupError> {
    match Queue::open_with_cache(&paths.state_dir.join("queue"), 16) {
        Ok(queue) => {
            let mut file = std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
            let count = queue.export(&mut file)?;
            file.sync_all().map_err(io("syncing the queue export"))?;
            Ok(count)
        }
        Err(QueueError::Locked { .. }) => {
            let socket = control::socket_path(&paths.state_dir);
            let op = control::QueueOp::Export { path: path.display().to_string() };
            let answer = control::request(&socket, &op)
                .await
                .map_err(io(format!("asking the running daemon (socket {}) for the queue", socket.display())))?;
            let text = answer.map_err(|err| BackupError::Queue(QueueError::Locked { path: err }))?;
            Ok(text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
        }
        Err(err) => Err(err.into()),
    }
}

fn archive_name(at: DateTime<Utc>) -> String {
    format!("agora-backup-{}.tar", at.format("%Y%m%dT%H%M%SZ"))
}

fn archive_time(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix("agora-backup-")?.strip_suffix(".tar")?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

/// The archives in `dir`, oldest first.
pub fn archives(dir: &Path) -> Vec<(DateTime<Utc>, PathBuf)> {
    let mut found: Vec<(DateTime<Utc>, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((archive_time(&e.file_name().to_string_lossy())?, e.path())))
        .collect();
    found.sort();
    found
}

/// Which archives retention keeps: the newest of each of the last `daily` days that have one,
/// and the newest of each of the last `weekly` ISO weeks that have one (the newest is always kept).
pub fn retained(times: &[DateTime<Utc>], daily: usize, weekly: usize) -> Vec<DateTime<Utc>> {
    let mut newest_first: Vec<DateTime<Utc>> = times.to_vec();
    newest_first.sort_by(|a, b| b.cmp(a));
    let mut keep = Vec::new();
    let mut days = Vec::new();
    let mut weeks = Vec::new();
    for (index, time) in newest_first.iter().enumerate() {
        let day = time.date_naive();
        let week = (time.iso_week().year(), time.iso_week().week());
        let mut kept = index == 0;
        if !days.contains(&day) && days.len() < daily {
            days.push(day);
            kept = true;
        }
        if !weeks.contains(&week) && weeks.len() < weekly {
            weeks.push(week);
            kept = true;
        }
        if kept {
            keep.push(*time);
        }
    }
    keep
}

/// `agora backup`: writes a new archive, applies retention, records the status. Returns the
/// archive's path.
pub async fn backup(
    database_url: &str,
    paths: &Paths,
    keep_daily: usize,
    keep_weekly: usize,
) -> Result<PathBuf, BackupError> {
    let started = Instant::now();
    let now = Utc::now();
    std::fs::create_dir_all(&paths.backup_dir).map_err(io(format!("creating {}", paths.backup_dir.display())))?;
    let work = tempfile::Builder::new()
        .prefix(".agora-backup-")
        .tempdir_in(&paths.backup_dir)
        .map_err(io("creating a work directory"))?;
    let dump = work.path().join(DUMP);
    run_tool(
        "pg_dump",
        Command::new(pg_tool("pg_dump"))
            .args(["--format=custom", "--no-owner", "--file"])
            .arg(&dump)
            .arg("--dbname")
            .arg(database_url),
    )?;
    let pg_dump_version = run_tool("pg_dump", Command::new(pg_tool("pg_dump")).arg("--version"))?;
    let queue_entries = export_queue(paths, &work.path().join(QUEUE)).await?;
    let mut files = std::collections::BTreeMap::new();
    files.insert(DUMP.to_owned(), sha256_file(&dump)?);
    files.insert(QUEUE.to_owned(), sha256_file(&work.path().join(QUEUE))?);
    let media = paths.state_dir.join("media");
    let mut media_files = Vec::new();
    collect_files(&media, &media, &mut media_files)?;
    for relative in &media_files {
        files.insert(format!("media/{relative}"), sha256_file(&media.join(relative))?);
    }
    let manifest = Manifest {
        format: 1,
        agora_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: now,
        migrations: applied_migrations(database_url).await?,
        pg_dump_version,
        rows: row_counts(database_url).await?,
        queue_entries,
        files,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Corrupt(e.to_string()))?;

    let name = archive_name(now);
    let partial = paths.backup_dir.join(format!("{name}.partial"));
    {
        let file = std::fs::File::create(&partial).map_err(io(format!("creating {}", partial.display())))?;
        let mut tar = tar::Builder::new(file);
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest_bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(u64::try_from(now.timestamp()).unwrap_or(0));
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, manifest_bytes.as_slice()).map_err(io("writing the archive"))?;
        tar.append_path_with_name(&dump, DUMP).map_err(io("writing the archive"))?;
        tar.append_path_with_name(work.path().join(QUEUE), QUEUE).map_err(io("writing the archive"))?;
        for relative in &media_files {
            tar.append_path_with_name(media.join(relative), format!("media/{relative}"))
                .map_err(io("writing the archive"))?;
        }
        let file = tar.into_inner().map_err(io("writing the archive"))?;
        file.sync_all().map_err(io("syncing the archive"))?;
    }
    set_private(&partial)?;
    let archive = paths.backup_dir.join(&name);
    std::fs::rename(&partial, &archive).map_err(io("naming the archive"))?;

    let kept =
        retained(&archives(&paths.backup_dir).iter().map(|(t, _)| *t).collect::<Vec<_>>(), keep_daily, keep_weekly);
    for (time, path) in archives(&paths.backup_dir) {
        if !kept.contains(&time) {
            tracing::info!(archive = %path.display(), "retention: deleting an old backup");
            std::fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
        }
    }
    let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    let mut status = Status::read(&paths.backup_dir);
    status.last_success_at = Some(Utc::now());
    status.last_duration_seconds = started.elapsed().as_secs_f64();
    status.last_size_bytes = size;
    status.last_archive = Some(name);
    status.write(&paths.backup_dir)?;
    tracing::info!(archive = %archive.display(), bytes = size, seconds = status.last_duration_seconds, "backup written");
    Ok(archive)
}

fn set_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("chmod {}", path.display())))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BackupError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.display().to_string());
        }
    }
    out.sort();
    Ok(())
}

/// An archive unpacked into a temporary directory, every checksum checked.
pub struct Unpacked {
    /// The unpacked files.
    pub dir: tempfile::TempDir,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Unpacks `archive` next to `scratch_parent` and checks the manifest and every checksum.
pub fn unpack_and_check(archive: &Path, scratch_parent: &Path) -> Result<Unpacked, BackupError> {
    std::fs::create_dir_all(scratch_parent).map_err(io(format!("creating {}", scratch_parent.display())))?;
    let dir = tempfile::Builder::new()
        .prefix(".agora-restore-")
        .tempdir_in(scratch_parent)
        .map_err(io("creating a scratch directory"))?;
    let file = std::fs::File::open(archive).map_err(io(format!("opening {}", archive.display())))?;
    let mut tar = tar::Archive::new(BufReader::new(file));
    // `unpack` refuses paths that leave the directory (`..`, absolute paths).
    tar.unpack(dir.path()).map_err(|err| BackupError::Corrupt(format!("cannot unpack: {err}")))?;
    let bytes =
        std::fs::read(dir.path().join(MANIFEST)).map_err(|_| BackupError::Corrupt("no manifest.json".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|err| BackupError::Corrupt(format!("manifest.json: {err}")))?;
    if manifest.format != 1 {
        return Err(BackupError::Corrupt(format!("unknown archive format {}", manifest.format)));
    }
    for (name, expected) in &manifest.files {
        let path = dir.path().join(name);
        let actual = sha256_file(&path).map_err(|_| BackupError::Corrupt(format!("{name} is missing")))?;
        if &actual != expected {
            return Err(BackupError::Corrupt(format!("{name} does not match its checksum (damaged archive)")));
        }
    }
    Ok(Unpacked { dir, manifest })
}

/// The URL of database `name` on the server of `url`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

fn database_name(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit_once('/').map(|(_, name)| name.to_owned()).unwrap_or_default()
}

fn pg_restore(url: &str, dump: &Path) -> Result<(), BackupError> {
    run_tool(
        "pg_restore",
        Command::new(pg_tool("pg_restore"))
            .args(["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", "--dbname"])
            .arg(url)
            .arg(dump),
    )
    .map(|_| ())
}

/// `agora backup --verify`: restores the newest archive into a scratch database on the same
/// server and compares row counts and queue entries with its manifest.
pub async fn verify_newest(database_url: &str, paths: &Paths) -> Result<PathBuf, BackupError> {
    let (_, archive) = archives(&paths.backup_dir)
        .pop()
        .ok_or_else(|| BackupError::Refused(format!("no backup in {} to verify", paths.backup_dir.display())))?;
    let unpacked = unpack_and_check(&archive, &paths.backup_dir)?;
    let scratch = format!("agora_verify_{}", std::process::id());
    let admin_url = with_database(database_url, &database_name(database_url));
    let mut admin = connect(&admin_url).await?;
    // The scratch name is generated here, never taken from input.
    crate::db::ops::recreate_database(&mut admin, &scratch)
        .await
        .map_err(|err| BackupError::Database(format!("creating the scratch database {scratch}: {err}")))?;
    let scratch_url = with_database(database_url, &scratch);
    let checked = async {
        pg_restore(&scratch_url, &unpacked.dir.path().join(DUMP))?;
        let rows = row_counts(&scratch_url).await?;
        if rows != unpacked.manifest.rows {
            return Err(BackupError::Corrupt(format!(
                "restored rows {rows:?} differ from the manifest's {:?}",
                unpacked.manifest.rows
            )));
        }
        let queue_lines = std::fs::read_to_string(unpacked.dir.path().join(QUEUE))
            .map_err(io("reading the queue export"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64;
        if queue_lines != unpacked.manifest.queue_entries {
            return Err(BackupError::Corrupt(format!(
                "the queue export has {queue_lines} entries, the manifest says {}",
                unpacked.manifest.queue_entries
            )));
        }
        Ok(())
    }
    .await;
    crate::db::ops::drop_database(&mut admin, &scratch).await;
    checked?;
    let mut status = Status::read(&paths.backup_dir);
    status.last_verify_at = Some(Utc::now());
    status.last_verified_archive = archive.file_name().map(|n| n.to_string_lossy().into_owned());
    status.write(&paths.backup_dir)?;
    tracing::info!(archive = %archive.display(), "backup verified: restored into a scratch database, row counts match");
    Ok(archive)
}

/// `agora restore ARCHIVE [--force]`: checks every checksum first, refuses a database with
/// users or a non-empty queue unless forced, then restores the database, the queue and media.
pub async fn restore(database_url: &str, paths: &Paths, archive: &Path, force: bool) -> Result<Manifest, BackupError> {
    let unpacked = unpack_and_check(archive, &paths.state_dir)?;
    let existing = row_counts(database_url).await?;
    if !force && existing.get("users").copied().unwrap_or(0) > 0 {
        return Err(BackupError::Refused(
            "the database already holds users; restore into an empty database, or pass --force to replace it".into(),
        ));
    }
    let queue_dir = paths.state_dir.join("queue");
    let queue = match Queue::open_with_cache(&queue_dir, 16) {
        Ok(queue) => queue,
        Err(QueueError::Locked { .. }) => {
            return Err(BackupError::Refused(
                "Agora is running: stop it (systemctl stop agora) before a restore".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    if !queue.is_empty() && !force {
        return Err(BackupError::Refused("the job queue is not empty; pass --force to replace it".into()));
    }
    pg_restore(database_url, &unpacked.dir.path().join(DUMP))?;
    drop(queue);
    restore_queue_and_media(paths, &unpacked, force)?;
    Ok(unpacked.manifest)
}

/// Puts the job queue and media of an unpacked archive in place; `replace` clears the queue
/// first.
fn restore_queue_and_media(paths: &Paths, unpacked: &Unpacked, replace: bool) -> Result<(), BackupError> {
    let queue_dir = paths.state_dir.join("queue");
    if replace && queue_dir.exists() {
        std::fs::remove_dir_all(&queue_dir).map_err(io(format!("clearing {}", queue_dir.display())))?;
    }
    let queue = Queue::open_with_cache(&queue_dir, 16)?;
    let file = std::fs::File::open(unpacked.dir.path().join(QUEUE)).map_err(io("reading the queue export"))?;
    queue.import(&mut BufReader::new(file))?;
    let media_from = unpacked.dir.path().join("media");
    for name in unpacked.manifest.files.keys().filter_map(|n| n.strip_prefix("media/")) {
        let target = paths.state_dir.join("media").join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::copy(media_from.join(name), &target).map_err(io(format!("restoring {}", target.display())))?;
    }
    Ok(())
}

/// After a point-in-time restore to `before` (`None`: the newest state): the job queue and
/// media of the newest archive written before it, replacing the current queue. Returns the
/// archive used, or `None` when there is none (the queue is then left as it is).
pub fn restore_queue_and_media_before(
    paths: &Paths,
    before: Option<DateTime<Utc>>,
) -> Result<Option<PathBuf>, BackupError> {
    let Some((_, archive)) =
        archives(&paths.backup_dir).into_iter().rev().find(|(at, _)| before.is_none_or(|before| *at <= before))
    else {
        return Ok(None);
    };
    let unpacked = unpack_and_check(&archive, &paths.backup_dir)?;
    restore_queue_and_media(paths, &unpacked, true)?;
    Ok(Some(archive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn retention_keeps_the_newest_per_day_and_per_week() {
        // Every 6 hours for 30 days.
        let times: Vec<DateTime<Utc>> =
            (0..120).map(|i| at("2026-11-01T00:00:00Z") + chrono::Duration::hours(6 * i)).collect();
        let kept = retained(&times, 7, 4);
        let newest = *times.last().unwrap_or(&times[0]);
        assert!(kept.contains(&newest));
        let days: std::collections::BTreeSet<_> = kept.iter().map(|t| t.date_naive()).collect();
        assert!(kept.len() <= 7 + 4 && kept.len() >= 7, "{kept:?}");
        assert!(days.len() >= 7);
        assert!(kept.iter().all(|t| *t >= at("2026-11-01T00:00:00Z")));
        assert_eq!(retained(&times[..1], 0, 0), vec![times[0]], "the newest is always kept");
    }

    #[test]
    fn database_urls_are_retargeted() {
        assert_eq!(
            with_database("postgres://agora@localhost/agora?host=/run/pg", "scratch"),
            "postgres://agora@localhost/scratch?host=/run/pg"
        );
        assert_eq!(with_database("postgres://u:p@db:5432/agora", "x"), "postgres://u:p@db:5432/x");
        assert_eq!(database_name("postgres://u@h/agora?host=/x"), "agora");
    }

    #[test]
    fn archive_names_carry_their_time() {
        let now = at("2026-11-25T12:30:00Z");
        assert_eq!(archive_time(&archive_name(now)), Some(now));
        assert_eq!(archive_time("notes.txt"), None);
    }
}
