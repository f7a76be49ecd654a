//! A private PostgreSQL cluster run by Agora itself: created on first start under the state
//! directory, listening on a Unix socket only, stopped when Agora stops.
//!
//! The test harness uses the same code for its throwaway cluster.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The database superuser of a private cluster (it has no password: only the socket's owner can connect).
pub const SUPERUSER: &str = "agora";

/// Unix socket paths are limited to 107 bytes; PostgreSQL adds `/.s.PGSQL.5432`.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// Why a private cluster could not be created, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No `initdb`/`postgres` binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked at `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH); \
         install them (`apt install postgresql`) or set database.url to an existing server"
    )]
    BinariesNotFound,
    /// Running as root, but there is no unprivileged user to run PostgreSQL as.
    #[error(
        "running as root and no `postgres` system user exists to run the private PostgreSQL cluster as; create one or set database.url"
    )]
    NoUnprivilegedUser,
    /// The directory cannot be used by the PostgreSQL user.
    #[error("{path}: {reason}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// What was run.
        command: String,
        /// Its output or error.
        detail: String,
    },
    /// The server did not become ready in time.
    #[error("PostgreSQL did not start within {seconds} s; its log ({log}) ends with:\n{tail}")]
    StartTimeout {
        /// How long we waited.
        seconds: u64,
        /// The log file.
        log: String,
        /// Its last lines.
        tail: String,
    },
    /// I/O on the cluster's files.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

/// How a private cluster is run.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Trade durability for speed (`fsync=off` and friends): for throwaway test clusters only.
    pub throwaway: bool,
    /// `max_connections` of the server.
    pub max_connections: u32,
    /// How long a start may take until the server accepts connections (crash recovery
    /// included): `database.private_start_timeout`.
    pub start_timeout: Duration,
    /// Continuous archiving: the `archive_command` and the longest time between segment
    /// switches while WAL is written. `None` leaves archiving off.
    pub archive: Option<(String, u64)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self { throwaway: false, max_connections: 100, start_timeout: Duration::from_secs(300), archive: None }
    }
}

/// How often a starting server is asked whether it accepts connections, and a running one
/// whether it is still there.
const POLL: Duration = Duration::from_millis(100);

/// How often a slow start says in the log that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The longest pause between two restarts of a server that keeps failing.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// A running private PostgreSQL server; stopped on [`PrivateCluster::stop`] or drop.
#[derive(Debug)]
pub struct PrivateCluster {
    root: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    bindir: PathBuf,
    run_as: Option<RunAs>,
    options: ClusterOptions,
    child: Option<Child>,
}

/// An OS user a PostgreSQL program runs as (the server's user when Agora runs as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl RunAs {
    /// The owner of `path`.
    pub fn owner_of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path)?;
        Ok(Self { uid: meta.uid(), gid: meta.gid() })
    }

    /// The user's login name, from /etc/passwd.
    pub fn name(self) -> Option<String> {
        let passwd = fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid: u32 = fields.nth(1)?.parse().ok()?;
            (uid == self.uid).then(|| name.to_owned())
        })
    }

    /// Makes `command` run as this user (when this process is someone else: root).
    pub fn apply(self, command: &mut Command) {
        use std::os::unix::process::CommandExt;
        command.env("LC_ALL", "C").current_dir("/");
        if effective_uid() != self.uid {
            command.uid(self.uid).gid(self.gid);
        }
    }

    /// Hands `path` (and, for a directory, everything in it) to this user.
    pub fn give(self, path: &Path) -> Result<(), ClusterError> {
        chown_tree(path, self)
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    effective_uid() == 0
}

/// The user this process runs as.
pub fn current_uid() -> u32 {
    effective_uid()
}

impl PrivateCluster {
    /// Creates the cluster under `root` if it does not exist yet, starts it and waits until it
    /// accepts connections. Blocking; call it from the thread that lives as long as the cluster
    /// should (the server is told to stop when that thread's process dies).
    pub fn start(root: &Path, options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::BinariesNotFound)?;
        let run_as = unprivileged_user()?;
        fs::create_dir_all(root).map_err(io(format!("creating {}", root.display())))?;
        let root = root.canonicalize().map_err(io(format!("resolving {}", root.display())))?;
        let data_dir = root.join("data");
        let socket_dir = root.join("run");
        let log_file = root.join("postgres.log");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            return Err(ClusterError::Directory {
                path: socket_dir,
                reason: format!(
                    "path too long for a Unix socket (over {MAX_SOCKET_DIR_LEN} bytes); use a shorter paths.state_dir"
                ),
            });
        }
        for dir in [&root, &socket_dir] {
            fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io(format!("setting the mode of {}", dir.display())))?;
        }
        if let Some(user) = run_as {
            check_traversable(&root, user)?;
            chown_tree(&root, user)?;
        }

        if !data_dir.join("PG_VERSION").exists() {
            tracing::info!(data_dir = %data_dir.display(), "creating the private PostgreSQL cluster");
            let mut initdb = Command::new(bindir.join("initdb"));
            initdb.arg("--pgdata").arg(&data_dir).args([
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--username",
                SUPERUSER,
            ]);
            if options.throwaway {
                initdb.arg("--no-sync");
            }
            run_to_completion(initdb, run_as, "initdb")?;
        }

        let mut cluster =
            Self { root, data_dir, socket_dir, log_file, bindir, run_as, options: options.clone(), child: None };
        cluster.start_server()?;
        tracing::info!(socket_dir = %cluster.socket_dir.display(), "private PostgreSQL cluster is ready");
        Ok(cluster)
    }

    /// Starts the server and waits until it accepts connections, up to the start timeout. A
    /// start refused because the previous server's processes are still exiting (its lock
    /// file, its shared memory) is tried again until they are gone.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let started = Instant::now();
        let deadline = started + self.options.start_timeout;
        let mut next_progress = started + PROGRESS_EVERY;
        loop {
            let log_start = fs::metadata(&self.log_file).map(|m| m.len()).unwrap_or(0);
            self.spawn_server()?;
            loop {
                if self.accepts_connections() {
                    return Ok(());
                }
                let exited = match self.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(_))) | None => true,
                    Some(Ok(None)) => false,
                    Some(Err(err)) => return Err(io("waiting for postgres")(err)),
                };
                let now = Instant::now();
                if exited {
                    self.child = None;
                    let said = log_since(&self.log_file, log_start);
                    if previous_server_exiting(&said) && now < deadline {
                        tracing::info!(
                            "the previous PostgreSQL server's processes are still exiting; starting again shortly"
                        );
                        std::thread::sleep(Duration::from_millis(500));
                        break;
                    }
                    return Err(self.start_failed());
                }
                if now >= deadline {
                    self.child.take().map(|mut child| child.kill().and_then(|()| child.wait()));
                    return Err(self.start_failed());
                }
                if now >= next_progress {
                    tracing::info!(
                        waited_seconds = started.elapsed().as_secs(),
                        timeout_seconds = self.options.start_timeout.as_secs(),
                        log = %self.log_file.display(),
                        "waiting for the private PostgreSQL server to accept connections (crash recovery can take a while)"
                    );
                    next_progress = now + PROGRESS_EVERY;
                }
                std::thread::sleep(POLL);
            }
        }
    }

    fn start_failed(&self) -> ClusterError {
        ClusterError::StartTimeout {
            seconds: self.options.start_timeout.as_secs(),
            log: self.log_file.display().to_string(),
            tail: log_tail(&self.log_file, 15),
        }
    }

    fn spawn_server(&mut self) -> Result<(), ClusterError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .map_err(io(format!("opening {}", self.log_file.display())))?;
        let log_err = log.try_clone().map_err(io("duplicating the log handle"))?;
        let mut postgres = Command::new(self.bindir.join("postgres"));
        postgres
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-c", "listen_addresses=", "-c", "port=5432"])
            .args(["-c", &format!("max_connections={}", self.options.max_connections)])
            .args(["-c", "unix_socket_permissions=0700"]);
        if self.options.throwaway {
            postgres.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        if let Some((command, timeout)) = &self.options.archive {
            postgres
                .args(["-c", "archive_mode=on", "-c", "wal_level=replica"])
                .arg("-c")
                .arg(format!("archive_command={command}"))
                .arg("-c")
                .arg(format!("archive_timeout={timeout}"));
        }
        postgres.stdin(Stdio::null()).stdout(log).stderr(log_err);
        prepare(&mut postgres, self.run_as);
        let child = postgres.spawn().map_err(|err| ClusterError::Command {
            command: format!("{}", self.bindir.join("postgres").display()),
            detail: err.to_string(),
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the server accepts connections now: `pg_isready` makes a real connection attempt,
    /// which a server still starting up or in crash recovery refuses. (The status line of
    /// `postmaster.pid` is not enough: after a crash the old file still says "ready".)
    fn accepts_connections(&self) -> bool {
        let mut ping = Command::new(self.bindir.join("pg_isready"));
        ping.arg("-q")
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", "5432", "-d", "postgres", "-U", SUPERUSER, "-t", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        ping.status().is_ok_and(|status| status.success())
    }

    /// Watches the server on a thread of its own and restarts it, with backoff, whenever it
    /// exits without being asked to (a crash, the OOM killer). Each restart calls
    /// `on_restart`. Stopping the returned handle stops the server.
    pub fn supervise(self, on_restart: impl Fn() + Send + 'static) -> Result<Supervisor, ClusterError> {
        let url_base = self.socket_dir.clone();
        let root = self.root.clone();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("private-postgres".into())
            .spawn(move || supervise(self, &stopped, &on_restart))
            .map_err(io("starting the private PostgreSQL supervisor"))?;
        Ok(Supervisor { socket_dir: url_base, root, stop: Some(stop), thread: Some(thread) })
    }

    /// The server's exit status, once it has exited (reaping it).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => {
                self.child = None;
                Some(status)
            }
            _ => None,
        }
    }

    /// A URL for `database` on this cluster, over its Unix socket.
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir, database)
    }

    /// The URL of `database` on the private cluster under `root` when a server (another Agora
    /// process) already runs it and answers, without starting anything.
    pub async fn running_url(root: &Path, database: &str) -> Option<String> {
        let socket_dir = root.join("run");
        if !root.join("data").join("postmaster.pid").exists() || !socket_dir.join(".s.PGSQL.5432").exists() {
            return None;
        }
        let url = socket_url(&socket_dir, database);
        let connected = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url).await;
        connected.ok().map(|_| url)
    }

    /// The directory holding the data directory, the socket directory and the server log.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asks the server for a fast shutdown and waits for it to exit.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    tracing::info!("private PostgreSQL cluster stopped");
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    tracing::warn!("private PostgreSQL did not stop within 30 s; sending an immediate shutdown");
                    signal(child.id(), libc::SIGQUIT);
                    return child.wait().map(drop).map_err(io("waiting for postgres"));
                }
                Err(err) => return Err(io("waiting for postgres")(err)),
            }
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::warn!(error = %err, "stopping the private PostgreSQL cluster failed");
        }
    }
}

/// A private cluster watched by its supervisor thread (see [`PrivateCluster::supervise`]).
pub struct Supervisor {
    socket_dir: PathBuf,
    root: PathBuf,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Supervisor {
    /// A URL for `database` on the cluster, over its Unix socket.
    pub fn url(&self, database: &str) -> String {
        socket_url(&self.socket_dir, database)
    }

    /// The directory holding the data directory, the socket directory and the server log.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops the server (a fast shutdown) and the supervisor.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The supervisor thread: polls the server, restarts it at once after an unexpected exit
/// (then 1 s, 2 s, … up to 30 s after each failed restart), and stops it when told to.
fn supervise(mut cluster: PrivateCluster, stopped: &std::sync::mpsc::Receiver<()>, on_restart: &dyn Fn()) {
    use std::sync::mpsc::RecvTimeoutError;
    let asked_to_stop = |wait: Duration| !matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
    loop {
        if asked_to_stop(POLL) {
            break;
        }
        let Some(status) = cluster.exited() else { continue };
        tracing::error!(
            status = %status,
            log_tail = %log_tail(&cluster.log_file, 5),
            "the private PostgreSQL server exited unexpectedly; restarting it"
        );
        let down_since = Instant::now();
        let mut backoff = Duration::from_secs(1);
        loop {
            on_restart();
            match cluster.start_server() {
                Ok(()) => {
                    tracing::info!(
                        down_seconds = down_since.elapsed().as_secs_f64(),
                        "the private PostgreSQL server is back and accepts connections"
                    );
                    break;
                }
                Err(err) => {
                    tracing::error!(error = %err, retry_in_seconds = backoff.as_secs(), "restarting the private PostgreSQL server failed");
                    if asked_to_stop(backoff) {
                        return drop(cluster);
                    }
                    backoff = (backoff * 2).min(MAX_RESTART_BACKOFF);
                }
            }
        }
    }
    if let Err(err) = cluster.stop() {
        tracing::warn!(error = %err, "stopping the private PostgreSQL cluster failed");
    }
}

/// Whether a server that exited during start-up was refused because the previous server's
/// processes still hold the data directory (they exit soon after their postmaster died).
fn previous_server_exiting(log: &str) -> bool {
    log.contains("pre-existing shared memory block")
        || log.contains("lock file \"postmaster.pid\" already exists")
        || log.contains("Is another postmaster")
}

/// What the log gained after byte `start`.
fn log_since(path: &Path, start: u64) -> String {
    use std::io::{Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path)
        && file.seek(SeekFrom::Start(start)).is_ok()
    {
        let _ = file.read_to_string(&mut text);
    }
    text
}

fn socket_url(socket_dir: &Path, database: &str) -> String {
    format!("postgres://{SUPERUSER}@localhost/{database}?host={}", socket_dir.display())
}

/// Finds the directory of `initdb` and `postgres`: `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin`, then `PATH`.
pub fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_server(d)) {
        return Some(dir);
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_server(dir))
}

/// Makes `command` run as the user the private cluster runs as (the `postgres` user when
/// Agora runs as root), as tools that touch its files must.
pub fn run_as_server_user(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.env("LC_ALL", "C");
    if let Ok(Some(user)) = unprivileged_user() {
        command.uid(user.uid).gid(user.gid);
    }
}

/// Hands `dir` and everything in it to the private cluster's user (when Agora runs as root).
pub fn give_to_server_user(dir: &Path) -> Result<(), ClusterError> {
    match unprivileged_user()? {
        Some(user) => chown_tree(dir, user),
        None => Ok(()),
    }
}

/// Hands each of `paths` (not what is below them) to the private cluster's user (when Agora
/// runs as root).
pub fn give_entries_to_server_user(paths: &[&Path]) -> Result<(), ClusterError> {
    let Some(user) = unprivileged_user()? else { return Ok(()) };
    for path in paths {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(io(format!("chown {}", path.display())))?;
    }
    Ok(())
}

/// `None` when not root; the `postgres` user's ids when root (PostgreSQL refuses to run as root).
fn unprivileged_user() -> Result<Option<RunAs>, ClusterError> {
    if effective_uid() != 0 {
        return Ok(None);
    }
    lookup_user("postgres").map(Some).ok_or(ClusterError::NoUnprivilegedUser)
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

fn lookup_user(name: &str) -> Option<RunAs> {
    // /etc/passwd is enough here: system users are local. Format: name:x:uid:gid:...
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(RunAs { uid, gid })
    })
}

/// The unprivileged user must be able to reach `dir` through every ancestor.
fn check_traversable(dir: &Path, user: RunAs) -> Result<(), ClusterError> {
    use std::os::unix::fs::MetadataExt;
    for ancestor in dir.ancestors().skip(1) {
        let meta = fs::metadata(ancestor).map_err(io(format!("inspecting {}", ancestor.display())))?;
        let mode = meta.mode();
        let can_enter = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !can_enter {
            return Err(ClusterError::Directory {
                path: ancestor.to_path_buf(),
                reason: format!(
                    "the `postgres` user (uid {}) cannot enter this directory, so it cannot run the private cluster \
                     below it; choose a paths.state_dir outside it (e.g. /var/lib/agora) or set database.url",
                    user.uid
                ),
            });
        }
    }
    Ok(())
}

fn chown_tree(dir: &Path, user: RunAs) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).map_err(io(format!("chown {}", dir.display())))?;
    let meta = fs::symlink_metadata(dir).map_err(io(format!("inspecting {}", dir.display())))?;
    if meta.is_dir() {
        for entry in fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))? {
            let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                chown_tree(&path, user)?;
            } else {
                std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))
                    .map_err(io(format!("chown {}", path.display())))?;
            }
        }
    }
    Ok(())
}

/// Drops privileges when needed, and makes the child receive SIGINT (PostgreSQL's fast
/// shutdown) if the thread that started it dies, so a killed Agora leaves no server behind.
fn prepare(command: &mut Command, run_as: Option<RunAs>) {
    use std::os::unix::process::CommandExt;
    command.env("LC_ALL", "C").env_remove("PGDATA");
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
    // SAFETY: prctl and getppid are async-signal-safe; the closure allocates nothing.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                // The parent already died between fork and prctl.
                return Err(std::io::Error::from_raw_os_error(libc::ECHILD));
            }
            Ok(())
        });
    }
}

fn run_to_completion(mut command: Command, run_as: Option<RunAs>, name: &str) -> Result<(), ClusterError> {
    prepare(&mut command, run_as);
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| ClusterError::Command { command: name.to_owned(), detail: err.to_string() })?;
    if output.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&output.stderr).into_owned();
    if detail.trim().is_empty() {
        detail = String::from_utf8_lossy(&output.stdout).into_owned();
    }
    Err(ClusterError::Command { command: name.to_owned(), detail: detail.trim().to_owned() })
}

fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: sending a signal to our own child process, whose pid we hold.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, signal);
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
