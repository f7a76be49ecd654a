//! The daemon as operators run it: the private PostgreSQL cluster, clean stops, draining.

use std::path::Path;
use std::time::Duration;

use crate::harness::{Daemon, TestDb, make_world_traversable_dir};

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
    let dir = std::env::temp_dir().join(format!("agora-serve-{}", uuid::Uuid::new_v4().simple()));
    make_world_traversable_dir(&dir);
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
    let _ = std::fs::remove_dir_all(Path::new(&dir));
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
