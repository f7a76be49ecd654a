//! `agora dr enable` against a system-style PostgreSQL: a separate server started by the test
//! as the package finds one (run by `postgres`, peer authentication on its socket, Agora's own
//! password role over TCP, no archiving). Enabling is idempotent, archiving works afterwards,
//! the drill passes, the daemon exports it, and a restore to a time works on that server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{Daemon, eventually, world_traversable_tempdir};
use crate::private_cluster::{ann_in_town, post, titles};

/// A PostgreSQL server set up like a packaged one; stopped on drop.
struct SystemServer {
    data: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    port: u16,
}

fn as_postgres(program: &str, args: &[&str]) -> (bool, String) {
    let bindir = agora::db::cluster::find_bindir().expect("PostgreSQL server binaries");
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bindir.join(program))
        .args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

impl SystemServer {
    fn start(root: &Path) -> Self {
        let data = root.join("main");
        let socket = root.join("run");
        for dir in [&data, &socket] {
            std::fs::create_dir_all(dir).unwrap();
            assert!(Command::new("chown").args(["postgres:postgres"]).arg(dir).status().unwrap().success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data_arg = data.display().to_string();
        let (ok, out) = as_postgres(
            "initdb",
            &[
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
                "-U",
                "postgres",
                "-D",
                &data_arg,
            ],
        );
        assert!(ok, "initdb: {out}");
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\nmax_connections = 60\n",
            socket.display()
        );
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&settings);
        std::fs::write(data.join("postgresql.conf"), conf).unwrap();
        let server = Self { log: socket.join("postgresql.log"), data, socket, port };
        server.pg_ctl("start");
        server.psql("CREATE ROLE agora LOGIN PASSWORD 'agora-secret'");
        server.psql("CREATE DATABASE agora OWNER agora");
        server
    }

    fn pg_ctl(&self, action: &str) {
        let (data, log) = (self.data.display().to_string(), self.log.display().to_string());
        let (ok, out) = as_postgres("pg_ctl", &[action, "-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "60"]);
        assert!(ok, "pg_ctl {action}: {out}");
    }

    fn psql(&self, sql: &str) -> String {
        let socket = self.socket.display().to_string();
        let port = self.port.to_string();
        let (ok, out) =
            as_postgres("psql", &["-X", "-A", "-t", "-h", &socket, "-p", &port, "-d", "postgres", "-c", sql]);
        assert!(ok, "{sql}: {out}");
        out
    }

    fn url(&self) -> String {
        format!("postgres://agora:agora-secret@127.0.0.1:{}/agora", self.port)
    }
}

impl Drop for SystemServer {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = as_postgres("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
    }
}

struct Setup {
    state: PathBuf,
    pitr: PathBuf,
    url: String,
}

impl Setup {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AGORA_PATHS__STATE_DIR", self.state.display().to_string()),
            ("AGORA_DATABASE__URL", self.url.clone()),
            ("AGORA_BACKUP__PITR_DIR", self.pitr.display().to_string()),
            ("AGORA_BACKUP__ARCHIVE_TIMEOUT_SECONDS", "5".to_owned()),
            ("AGORA_RATE_LIMITS__ENABLED", "false".to_owned()),
        ]
    }

    fn agora(&self, args: &[&str]) -> (bool, String) {
        let config = self.state.with_extension("toml");
        std::fs::write(&config, "").unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
        command.args(args).env("AGORA_CONFIG", &config).env("AGORA_LOG__FORMAT", "json");
        for (key, value) in self.env() {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    async fn daemon(&self, log: PathBuf) -> Daemon {
        crate::harness::install_crypto_provider();
        let mut daemon = Daemon::serve(&self.env(), log);
        daemon.wait_ready(Duration::from_secs(60)).await;
        daemon
    }
}

async fn scrape(daemon: &Daemon) -> String {
    let serving = daemon.log_lines().into_iter().find(|line| line["message"] == "agora is serving").unwrap();
    let admin = serving["metrics"].as_str().unwrap().to_owned();
    reqwest::get(format!("http://{admin}/metrics")).await.unwrap().text().await.unwrap()
}

fn gauge(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_enable_archives_a_system_postgresql_idempotently_and_it_restores_to_a_time() {
    let dir = world_traversable_tempdir("agora-sys-");
    let server = SystemServer::start(dir.path());
    let setup = Setup { state: dir.path().join("state"), pitr: dir.path().join("pitr"), url: server.url() };
    let daemon = setup.daemon(dir.path().join("first.log")).await;
    let client = reqwest::Client::new();
    let token = ann_in_town(&client, &daemon.base).await;
    assert_eq!(post(&client, &daemon.base, &token, "before archiving").await, Some(201));

    let socket = server.socket.display().to_string();
    let (ok, output) = setup.agora(&["dr", "enable"]);
    assert!(!ok && output.contains("--socket-dir"), "a socket in an unusual place is asked for: {output}");
    let (ok, output) = setup.agora(&["dr", "enable", "--socket-dir", &socket]);
    assert!(ok, "{output}");
    for said in [
        "archive_mode: off → on",
        "archive_command: (disabled) → ",
        "archive_timeout: 0 → 5",
        "granted agora EXECUTE on pg_switch_wal()",
        "in effect only once PostgreSQL restarts",
    ] {
        assert!(output.contains(said), "says {said:?}:\n{output}");
    }
    assert!(
        !output.contains("took the first base backup"),
        "stops before the base backup without --restart:\n{output}"
    );

    let (ok, output) = setup.agora(&["dr", "enable", "--socket-dir", &socket, "--restart"]);
    assert!(ok, "{output}");
    assert!(!output.contains(" → "), "the settings are not changed twice:\n{output}");
    for said in ["restarted PostgreSQL", "archiving works", "took the first base backup"] {
        assert!(output.contains(said), "says {said:?}:\n{output}");
    }

    let (ok, output) = setup.agora(&["dr", "enable", "--socket-dir", &socket]);
    assert!(ok, "{output}");
    for said in ["is already up to date", "archiving settings are already right", "1 base backups in the repository"] {
        assert!(output.contains(said), "a second run changes nothing: {said:?}:\n{output}");
    }
    assert!(!output.contains(" → ") && !output.contains("restarted") && !output.contains("granted"), "{output}");
    assert!(server.psql("SHOW archive_command").contains("--stanza=agora archive-push"));

    // Archiving works afterwards: the daemon (which rode out the restart) writes, a base
    // backup and a drill restore it, and the daemon exports the drill and the archiver.
    eventually(Duration::from_secs(30), "writes after the restart", || async {
        (post(&client, &daemon.base, &token, "after archiving").await == Some(201)).then_some(())
    })
    .await;
    let (ok, output) = setup.agora(&["dr", "backup", "--drill"]);
    assert!(ok && output.contains("base backup") && output.contains("drill passed"), "{output}");
    let scraped = scrape(&daemon).await;
    assert_eq!(gauge(&scraped, "agora_dr_last_drill_passed"), 1.0, "{scraped}");
    assert!(gauge(&scraped, "agora_dr_last_drill_success_timestamp_seconds") > 0.0);
    assert!(gauge(&scraped, "agora_wal_archive_last_success_timestamp_seconds") > 0.0);
    let (_, doctor) = setup.agora(&["doctor"]);
    assert!(doctor.contains("last WAL segment archived") && doctor.contains("last passed"), "{doctor}");

    // A restore to a time, on the system server.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let target = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&client, &daemon.base, &token, "after the target").await, Some(201));
    server.psql("SELECT pg_switch_wal()");
    let segment = server.psql("SELECT pg_walfile_name(pg_current_wal_lsn())").trim().to_owned();
    eventually(Duration::from_secs(30), "the WAL to be archived", || async {
        let archived = server.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
        (archived.trim() >= segment.as_str()).then_some(())
    })
    .await;
    daemon.signal(libc::SIGTERM);
    let mut daemon = daemon;
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0));
    let at = target.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (ok, output) = setup.agora(&["restore", "--to-time", &at]);
    assert!(!ok && output.contains("PostgreSQL is running"), "refused while the server runs: {output}");
    server.pg_ctl("stop");
    let (ok, output) = setup.agora(&["restore", "--to-time", &at]);
    assert!(!ok && output.contains("--force"), "a database is not replaced without --force: {output}");
    let (ok, output) = setup.agora(&["restore", "--to-time", &at, "--force"]);
    assert!(ok && output.contains("start PostgreSQL now"), "{output}");
    server.pg_ctl("start");
    eventually(Duration::from_secs(60), "the restored server to open", || async {
        (server.psql("SELECT pg_is_in_recovery()").trim() == "f").then_some(())
    })
    .await;
    let daemon = setup.daemon(dir.path().join("second.log")).await;
    let mut kept = titles(&client, &daemon.base).await;
    kept.sort();
    assert_eq!(kept, ["after archiving", "before archiving"], "everything before the target, nothing after");
}
