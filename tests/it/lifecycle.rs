//! The daemon as operators run it: the private PostgreSQL cluster, clean stops, draining.

use std::time::Duration;

use crate::harness::{Daemon, TestDb, world_traversable_tempdir};

/// Processes whose command line mentions `needle` (to find a stray postgres).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[tokio::test]
async fn serve_without_database_url_runs_and_stops_a_private_cluster() {
    let dir = world_traversable_tempdir("agora-serve-");
    let dir = dir.path();
    let state_dir = dir.join("state");
    let env = [("AGORA_PATHS__STATE_DIR", state_dir.display().to_string())];

    let mut first = Daemon::serve(&env, dir.join("first.log"));
    first.wait_ready(Duration::from_secs(90)).await;
    assert!(state_dir.join("postgres/data/PG_VERSION").exists());
    assert!(first.log().contains("applied database migrations"), "{}", first.log());
    let data_dir = state_dir.join("postgres/data").display().to_string();
    assert!(!processes_mentioning(&data_dir).is_empty(), "the private postgres runs");
    first.signal(libc::SIGINT);
    assert_eq!(first.wait_exit(Duration::from_secs(60)).await, Some(0), "{}", first.log());
    assert!(processes_mentioning(&data_dir).is_empty(), "no stray postgres after Ctrl-C");

    let mut second = Daemon::serve(&env, dir.join("second.log"));
    second.wait_ready(Duration::from_secs(60)).await;
    let log = second.log();
    assert!(!log.contains("creating the private PostgreSQL cluster"), "the second start reuses the data:\n{log}");
    assert!(log.contains("database schema is up to date"), "{log}");
    second.signal(libc::SIGTERM);
    assert_eq!(second.wait_exit(Duration::from_secs(60)).await, Some(0));
    assert!(processes_mentioning(&data_dir).is_empty());
}

/// A request that is still running when SIGTERM arrives completes; then the process exits 0.
#[tokio::test]
async fn sigterm_drains_an_in_flight_request_then_exits_zero() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("AGORA_DATABASE__URL", db.url.clone())];
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    daemon.wait_ready(Duration::from_secs(60)).await;

    // Hold a lock that the post query must wait for, so the request is slow for as long as we like.
    let mut locker = db.connect().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut locker,
        "BEGIN; LOCK TABLE posts IN ACCESS EXCLUSIVE MODE;",
    )
    .await
    .unwrap();
    let url = format!("{}/api/v1/posts/1", daemon.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!in_flight.is_finished(), "the request should be waiting for the lock");

    daemon.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(daemon.child.try_wait().unwrap().is_none(), "agora must wait for the in-flight request");
    diesel_async::SimpleAsyncConnection::batch_execute(&mut locker, "COMMIT;").await.unwrap();

    let status = in_flight.await.unwrap().expect("the in-flight request completes");
    assert_eq!(status, 404, "the request finished normally (no such post); log:\n{}", daemon.log());
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0), "{}", daemon.log());
    let refused = reqwest::get(format!("{}/health/live", daemon.base)).await;
    assert!(refused.is_err(), "no longer accepting connections");
}

/// Under systemd (`Type=notify`, `WatchdogSec=`): READY=1 once serving, WATCHDOG=1 at half the
/// interval while the database answers, STOPPING=1 on SIGTERM.
#[tokio::test]
async fn systemd_is_told_ready_fed_the_watchdog_and_told_stopping() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let env = [
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("NOTIFY_SOCKET", socket_path.display().to_string()),
        ("WATCHDOG_USEC", "400000".to_owned()),
    ];
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut buffer = vec![0u8; 4096];
    while messages.iter().filter(|m: &&String| m.contains("WATCHDOG=1")).count() < 3 {
        let received = tokio::time::timeout_at(deadline, socket.recv(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("notifications so far: {messages:?}; log:\n{}", daemon.log()))
            .unwrap();
        messages.push(String::from_utf8_lossy(&buffer[..received]).into_owned());
    }
    let ready_at = messages.iter().position(|m| m.contains("READY=1")).expect("READY=1 was sent");
    let first_watchdog = messages.iter().position(|m| m.contains("WATCHDOG=1")).unwrap();
    assert!(ready_at < first_watchdog, "READY=1 comes first: {messages:?}");
    daemon.wait_ready(Duration::from_secs(5)).await;

    daemon.signal(libc::SIGTERM);
    let stopping = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = socket.recv(&mut buffer).await.unwrap();
            if String::from_utf8_lossy(&buffer[..n]).contains("STOPPING=1") {
                return;
            }
        }
    })
    .await;
    assert!(stopping.is_ok(), "STOPPING=1 on SIGTERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0));
}

/// Socket activation: systemd (here `systemd-socket-activate`, which does the same) holds the
/// listening socket and starts Agora on the first connection; Agora serves on the inherited
/// socket, so the connection that arrived before it started is answered, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_activated_daemon_serves_the_connection_that_started_it() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("agora.toml");
    std::fs::write(&config, "").unwrap();
    let log = std::fs::File::create(dir.path().join("agora.log")).unwrap();
    let mut activator = std::process::Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg(format!("--setenv=AGORA_CONFIG={}", config.display()))
        .arg(format!("--setenv=AGORA_DATABASE__URL={}", db.url))
        .arg(format!("--setenv=AGORA_PATHS__STATE_DIR={}", dir.path().join("state").display()))
        .arg("--setenv=AGORA_METRICS__LISTEN=127.0.0.1:0")
        .arg("--setenv=AGORA_LOG__FORMAT=json")
        .arg(env!("CARGO_BIN_EXE_agora"))
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("systemd-socket-activate (package systemd)");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Agora is not running yet: this connection starts it and waits in the backlog.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let response = client.get(format!("http://127.0.0.1:{port}/health/live")).send().await;
    let log_text = std::fs::read_to_string(dir.path().join("agora.log")).unwrap_or_default();
    assert_eq!(response.map(|r| r.status().as_u16()).ok(), Some(200), "{log_text}");
    assert!(log_text.contains("serving on the sockets systemd passed"), "{log_text}");
    // Served from the first moment; ready once its migrations are applied.
    crate::harness::eventually(Duration::from_secs(30), "readiness", || async {
        let ready = client.get(format!("http://127.0.0.1:{port}/health/ready")).send().await.ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;

    // The process systemd-socket-activate started is Agora itself (it execs).
    let status = std::process::Command::new("kill").arg("-TERM").arg(activator.id().to_string()).status().unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || activator.wait()).await.unwrap().unwrap();
    assert_eq!(exited.code(), Some(0), "clean stop on SIGTERM");
}

/// While migrations run at start, the daemon already answers: `/health/ready` is 503 with
/// `"migrations": "pending"`, and turns ready when they are done, logged one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_pending_migrations_until_they_are_applied() {
    use diesel_async::RunQueryDsl;
    let db = TestDb::empty().await;
    // Hold the migrations table so the daemon's migration run waits for us.
    let mut blocker = db.connect().await;
    diesel::sql_query(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )
    .execute(&mut blocker)
    .await
    .unwrap();
    diesel::sql_query("BEGIN").execute(&mut blocker).await.unwrap();
    diesel::sql_query("LOCK TABLE __diesel_schema_migrations IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("AGORA_SERVER__LISTEN", format!("[\"127.0.0.1:{port}\"]")),
        ("AGORA_METRICS__LISTEN", format!("127.0.0.1:{admin}")),
    ];
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    let client = reqwest::Client::new();
    let ready_url = format!("http://127.0.0.1:{port}/health/ready");
    let pending = crate::harness::eventually(Duration::from_secs(30), "an answer while migrating", || async {
        let response = client.get(&ready_url).send().await.ok()?;
        Some((response.status().as_u16(), response.json::<serde_json::Value>().await.ok()?))
    })
    .await;
    assert_eq!(pending.0, 503, "{}", pending.1);
    assert_eq!(pending.1["checks"]["migrations"], "pending");

    diesel::sql_query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let done = crate::harness::eventually(Duration::from_secs(30), "readiness after the migrations", || async {
        let response = client.get(&ready_url).send().await.ok()?;
        (response.status() == 200).then_some(response.json::<serde_json::Value>().await.ok()?)
    })
    .await;
    assert_eq!(done["checks"]["migrations"], "done");
    let scrape = client.get(format!("http://127.0.0.1:{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(scrape.contains(&format!("agora_migrations_applied_total {}", agora::db::migrations::count())), "{scrape}");
    assert!(scrape.contains("agora_migrations_pending 0"));
    let applying = daemon.log_lines().into_iter().filter(|l| l["message"] == "applying database migration").count();
    assert_eq!(applying, agora::db::migrations::count(), "each migration is logged");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0));
}
