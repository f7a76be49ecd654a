//! A primary and a streaming replica of its own, made with `pg_basebackup -R` (each test that
//! stops, pauses or breaks a server gets a pair of its own, so tests never disturb each other).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::harness::{eventually, make_world_traversable_dir};

/// The two servers, on Unix sockets in their own directories; stopped on drop.
pub struct Pair {
    _root: tempfile::TempDir,
    primary: Server,
    replica: Server,
}

/// One PostgreSQL server of a pair.
struct Server {
    data: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    extra: &'static str,
}

const DATABASE: &str = "agora";

fn bin(name: &str) -> PathBuf {
    let dir = agora::db::cluster::find_bindir().expect("PostgreSQL server binaries (apt install postgresql)");
    dir.join(name)
}

/// Runs a PostgreSQL program as the `postgres` user (they refuse to run as root).
fn run_as_postgres(program: &str, args: &[&str]) {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(program))
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().expect("chown");
    assert!(status.success(), "chown {}", path.display());
}

impl Server {
    fn new(root: &Path, name: &str, extra: &'static str) -> Self {
        let socket = root.join(format!("{name}-run"));
        std::fs::create_dir_all(&socket).expect("socket dir");
        chown_to_postgres(&socket);
        let log = socket.join("server.log");
        Self { data: root.join(name), socket, log, extra }
    }

    fn start(&self) {
        let options = format!(
            "-c listen_addresses='' -k {} -c fsync=off -c full_page_writes=off -c max_connections=60 {}",
            self.socket.display(),
            self.extra
        );
        let data = self.data.display().to_string();
        let log = self.log.display().to_string();
        run_as_postgres("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start"]);
    }

    fn stop(&self) {
        let data = self.data.display().to_string();
        run_as_postgres("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@localhost/{DATABASE}?host={}", self.socket.display())
    }
}

impl Pair {
    /// Starts a primary, creates the `agora` database, and makes a replica streaming from it.
    pub async fn start() -> Self {
        let root = tempfile::Builder::new().prefix("agora-pair-").tempdir().expect("pair dir");
        make_world_traversable_dir(root.path());
        let primary = Server::new(root.path(), "primary", "-c wal_level=replica -c max_wal_senders=5");
        let replica = Server::new(root.path(), "replica", "-c hot_standby_feedback=on");
        std::fs::create_dir_all(&primary.data).expect("primary data dir");
        chown_to_postgres(&primary.data);
        let data = primary.data.display().to_string();
        run_as_postgres(
            "initdb",
            &["--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C", "-U", "postgres", "-D", &data],
        );
        primary.start();
        let admin = primary.url().replace(&format!("/{DATABASE}?"), "/postgres?");
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect to the new primary");
        diesel::sql_query(format!("CREATE DATABASE {DATABASE}")).execute(&mut conn).await.expect("create database");
        std::fs::create_dir_all(&replica.data).expect("replica data dir");
        std::fs::set_permissions(&replica.data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        chown_to_postgres(&replica.data);
        let replica_data = replica.data.display().to_string();
        let primary_socket = primary.socket.display().to_string();
        run_as_postgres(
            "pg_basebackup",
            &["-h", &primary_socket, "-U", "postgres", "-D", &replica_data, "-R", "-X", "stream", "-c", "fast"],
        );
        replica.start();
        Self { _root: root, primary, replica }
    }

    /// The primary's URL of the `agora` database.
    pub fn primary_url(&self) -> String {
        self.primary.url()
    }

    /// The replica's URL of the `agora` database.
    pub fn replica_url(&self) -> String {
        self.replica.url()
    }

    /// Stops the replica (fast shutdown).
    pub fn stop_replica(&self) {
        self.replica.stop();
    }

    /// Starts the replica again.
    pub fn start_replica(&self) {
        self.replica.start();
    }

    /// Stops the primary (fast shutdown).
    pub fn stop_primary(&self) {
        self.primary.stop();
    }

    /// Starts the primary again.
    pub fn start_primary(&self) {
        self.primary.start();
    }

    /// Runs SQL on the replica (`pg_wal_replay_pause()` and friends).
    pub async fn on_replica(&self, sql: &str) {
        let mut conn = AsyncPgConnection::establish(&self.replica.url()).await.expect("connect to the replica");
        conn.batch_execute(sql).await.unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    pub async fn wait_caught_up(&self) {
        #[derive(diesel::QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = diesel::sql_types::Text)]
            lsn: String,
        }
        let mut primary = AsyncPgConnection::establish(&self.primary.url()).await.expect("connect to the primary");
        let target: Lsn =
            diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn").get_result(&mut primary).await.unwrap();
        let replica_url = self.replica.url();
        eventually(Duration::from_secs(10), "the replica to catch up", || {
            let replica_url = replica_url.clone();
            let target = target.lsn.clone();
            async move {
                let mut conn = AsyncPgConnection::establish(&replica_url).await.ok()?;
                #[derive(diesel::QueryableByName)]
                struct Done {
                    #[diesel(sql_type = diesel::sql_types::Bool)]
                    done: bool,
                }
                let done: Done = diesel::sql_query("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done")
                    .bind::<diesel::sql_types::Text, _>(target)
                    .get_result(&mut conn)
                    .await
                    .ok()?;
                done.done.then_some(())
            }
        })
        .await;
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for server in [&self.replica, &self.primary] {
            let data = server.data.display().to_string();
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}
