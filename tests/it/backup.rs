//! `agora backup`, `--verify` and `restore`: a round trip through a wiped database and state
//! directory brings back users, posts, comments, votes, queued jobs and media byte for byte;
//! a damaged archive is refused before anything is touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::email::configure_smtp;
use crate::harness::{TestDb, spawn_app_with};

fn agora(args: &[&str], database_url: &str, state_dir: &Path) -> (bool, String) {
    let config = state_dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .env("AGORA_CONFIG", &config)
        .env("AGORA_DATABASE__URL", database_url)
        .env("AGORA_PATHS__STATE_DIR", state_dir)
        .env("AGORA_LOG__FORMAT", "text")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Snapshot {
    #[diesel(sql_type = diesel::sql_types::Text)]
    digest: String,
}

/// A digest of every row of the tables a backup must bring back.
async fn snapshot(db: &TestDb) -> String {
    let mut conn = db.connect().await;
    let query = "SELECT md5(string_agg(t, '|' ORDER BY t)) AS digest FROM (
        SELECT 'u' || id || username || email || password_hash AS t FROM users
        UNION ALL SELECT 'c' || id || name || title FROM communities
        UNION ALL SELECT 'p' || id || title || body || score FROM posts
        UNION ALL SELECT 'm' || id || body || score FROM comments
        UNION ALL SELECT 'v' || post_id || ':' || user_id || ':' || value FROM post_votes) rows";
    diesel::sql_query(query).get_result::<Snapshot>(&mut conn).await.unwrap().digest
}

async fn public_table_count(db: &TestDb) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.connect().await;
    let query = "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'";
    diesel::sql_query(query).get_result::<N>(&mut conn).await.unwrap().n
}

fn email_jobs(stats: &str) -> u64 {
    let row = stats.lines().find(|l| l.starts_with("email")).unwrap_or_default();
    row.split_whitespace().skip(1).take(3).filter_map(|v| v.parse::<u64>().ok()).sum()
}

// Multi-threaded: the CLI blocks a test thread while the in-process app answers its control socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_restores_into_a_wiped_install_and_a_damaged_archive_is_refused() {
    // Email goes to a closed port, so the welcome emails stay in the queue.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut app = spawn_app_with(|config| {
        configure_smtp(config, closed);
        config.queue.backoff_base_ms = 60_000;
    })
    .await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "gardening", "title": "Gardening"}), Some(&alice)).await;
    let post = app
        .post_json("/api/v1/communities/gardening/posts", &json!({"title": "Tomatoes", "body": "When?"}), Some(&alice))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let post_id = post["id"].as_i64().unwrap();
    app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &json!({"body": "In May."}), Some(&bob)).await;
    app.send_as(reqwest::Method::PUT, &format!("/api/v1/posts/{post_id}/vote"), Some(json!({"value": 1})), &bob).await;
    let media = app.state_dir.path().join("media/originals/photo.bin");
    std::fs::create_dir_all(media.parent().unwrap()).unwrap();
    let photo: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&media, &photo).unwrap();

    // Back up while the daemon runs (the queue comes through its control socket), then verify.
    let state_dir = app.state_dir.path().to_path_buf();
    let (ok, out) = agora(&["backup"], &app.db.url, &state_dir);
    assert!(ok, "{out}");
    let archive = PathBuf::from(out.lines().last().unwrap().trim());
    assert!(archive.starts_with(state_dir.join("backups")) && archive.exists(), "{out}");
    let (ok, out) = agora(&["backup", "--verify"], &app.db.url, &state_dir);
    assert!(ok, "{out}");
    let (ok, stats) = agora(&["queue", "stats"], &app.db.url, &state_dir);
    assert!(ok, "{stats}");
    let queued = email_jobs(&stats);
    assert_eq!(queued, 3, "two welcome emails and a reply notification wait: {stats}");
    let scrape = app.scrape().await;
    for metric in
        ["agora_backup_last_success_timestamp_seconds ", "agora_backup_last_verify_success_timestamp_seconds "]
    {
        let value: f64 = scrape.lines().find_map(|l| l.strip_prefix(metric)).unwrap().parse().unwrap();
        assert!(value > 1.7e9, "{metric}{value}");
    }
    let before = snapshot(&app.db).await;
    // Keep the state directory past the app (stopping drops its temporary directory).
    let _state_guard = std::mem::replace(&mut app.state_dir, tempfile::tempdir().unwrap());
    app.stop().await;

    // Wipe: a new empty database, no queue, no media.
    let empty = TestDb::empty().await;
    std::fs::remove_dir_all(state_dir.join("queue")).unwrap();
    std::fs::remove_dir_all(state_dir.join("media")).unwrap();

    // A damaged archive is refused before anything is touched.
    let damaged = state_dir.join("damaged.tar");
    let mut bytes = std::fs::read(&archive).unwrap();
    // Flip a byte inside the largest member (the database dump), never in tar padding.
    let (start, size) = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap())
        .map(|entry| (entry.raw_file_position() as usize, entry.size() as usize))
        .max_by_key(|&(_, size)| size)
        .unwrap();
    bytes[start + size / 2] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let (ok, out) = agora(&["restore", damaged.to_str().unwrap()], &empty.url, &state_dir);
    assert!(!ok);
    assert!(out.contains("does not match its checksum") || out.contains("cannot unpack"), "{out}");
    assert_eq!(public_table_count(&empty).await, 0, "the database was not touched");
    assert!(!state_dir.join("queue").exists(), "the queue was not touched");

    let (ok, out) = agora(&["restore", archive.to_str().unwrap()], &empty.url, &state_dir);
    assert!(ok, "{out}");
    assert_eq!(snapshot(&empty).await, before, "users, communities, posts, comments and votes are back");
    assert_eq!(std::fs::read(state_dir.join("media/originals/photo.bin")).unwrap(), photo, "media byte for byte");
    let (ok, stats) = agora(&["queue", "stats"], &empty.url, &state_dir);
    assert!(ok, "{stats}");
    assert_eq!(email_jobs(&stats), queued, "the queued jobs are back: {stats}");

    // A database with data is not overwritten unless forced.
    let (ok, out) = agora(&["restore", archive.to_str().unwrap()], &empty.url, &state_dir);
    assert!(!ok && out.contains("already holds users"), "{out}");
    let (ok, out) = agora(&["restore", "--force", archive.to_str().unwrap()], &empty.url, &state_dir);
    assert!(ok, "{out}");
    assert_eq!(snapshot(&empty).await, before);
}
