//! Point-in-time recovery of the private cluster from its continuous pgBackRest archive: back
//! to a moment before an operator's mistake, and back to the newest archived state after the
//! data directory is lost.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};

use crate::harness::{Daemon, eventually, world_traversable_tempdir};
use crate::private_cluster::{ann_in_town, post, titles};

fn env(state: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("AGORA_PATHS__STATE_DIR", state.display().to_string()),
        ("AGORA_METRICS__LISTEN", String::new()),
        ("AGORA_RATE_LIMITS__ENABLED", "false".to_owned()),
        ("AGORA_BACKUP__ARCHIVE_TIMEOUT_SECONDS", "5".to_owned()),
    ]
}

fn private_url(state: &Path) -> String {
    format!("postgres://agora@localhost/agora?host={}", state.join("postgres/run").display())
}

async fn started(state: &Path, log: &Path) -> Daemon {
    crate::harness::install_crypto_provider();
    let mut agora = Daemon::serve(&env(state), log.to_path_buf());
    agora.wait_ready(Duration::from_secs(60)).await;
    agora
}

/// `agora <args>` with the test's environment; its output, and whether it succeeded.
fn agora(state: &Path, args: &[&str]) -> (bool, String) {
    let config = state.with_extension("toml");
    std::fs::write(&config, "").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command.args(args).env("AGORA_CONFIG", &config).env("AGORA_LOG__FORMAT", "json");
    for (key, value) in env(state) {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

async fn wait_first_base_backup(agora: &Daemon) {
    eventually(Duration::from_secs(60), "the first base backup", || async {
        agora
            .log_lines()
            .iter()
            .any(|line| line["message"] == "continuous archiving: first base backup taken")
            .then_some(())
    })
    .await;
}

/// Switches WAL segments and waits until the one holding everything so far is archived.
async fn archive_everything(url: &str) {
    #[derive(diesel::QueryableByName)]
    struct Wal {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let segment: Wal =
        diesel::sql_query("SELECT pg_walfile_name(pg_switch_wal()) AS name").get_result(&mut conn).await.unwrap();
    eventually(Duration::from_secs(30), "the WAL to be archived", || async {
        let mut conn = AsyncPgConnection::establish(url).await.ok()?;
        let archived: Wal = diesel::sql_query("SELECT coalesce(last_archived_wal, '') AS name FROM pg_stat_archiver")
            .get_result(&mut conn)
            .await
            .ok()?;
        (archived.name >= segment.name).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_to_a_time_brings_back_what_was_written_before_it_and_nothing_after() {
    let dir = world_traversable_tempdir("agora-pitr-");
    let state = dir.path().join("state");
    let mut daemon = started(&state, &dir.path().join("first.log")).await;
    wait_first_base_backup(&daemon).await;
    let client = reqwest::Client::new();
    let token = ann_in_town(&client, &daemon.base).await;
    for n in 0..3 {
        assert_eq!(post(&client, &daemon.base, &token, &format!("before {n}")).await, Some(201));
    }
    // A logical archive (with the job queue) before the target, as the backup timer writes.
    let (ok, output) = agora(&state, &["backup"]);
    assert!(ok && output.contains("base backup"), "{output}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let target = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for n in 0..2 {
        assert_eq!(post(&client, &daemon.base, &token, &format!("after {n}")).await, Some(201));
    }
    // An operator's mistake.
    let url = private_url(&state);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    conn.batch_execute("DROP TABLE comment_votes CASCADE").await.unwrap();
    archive_everything(&url).await;
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0));

    let at = target.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (ok, output) = agora(&state, &["restore", "--to-time", &at]);
    assert!(!ok && output.contains("--force"), "a database with users is not replaced without --force: {output}");
    let (ok, output) = agora(&state, &["restore", "--to-time", &at, "--force"]);
    assert!(ok, "{output}");
    assert!(output.contains("restored the private database"), "{output}");
    assert!(
        output.contains("job queue and media restored from"),
        "the queue comes from the archive before the target: {output}"
    );

    let daemon = started(&state, &dir.path().join("second.log")).await;
    let mut kept = titles(&client, &daemon.base).await;
    kept.sort();
    assert_eq!(kept, ["before 0", "before 1", "before 2"], "everything before the target, nothing after");
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    conn.batch_execute("SELECT count(*) FROM comment_votes").await.expect("the dropped table is back");
    // The restored database keeps working, and keeps being archived.
    let token = {
        let body = json!({"login": "ann", "password": "password123"});
        let login: Value = client
            .post(format!("{}/api/v1/auth/login", daemon.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        login["access_token"].as_str().unwrap().to_owned()
    };
    assert_eq!(post(&client, &daemon.base, &token, "after the restore").await, Some(201));
    archive_everything(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_data_directory_is_lost_a_restore_to_latest_keeps_all_but_the_last_seconds() {
    let dir = world_traversable_tempdir("agora-lost-");
    let state = dir.path().join("state");
    let mut daemon = started(&state, &dir.path().join("first.log")).await;
    wait_first_base_backup(&daemon).await;
    let client = reqwest::Client::new();
    let token = ann_in_town(&client, &daemon.base).await;
    // A steady write load for a while; every acknowledged write is noted with its time.
    let mut acknowledged: Vec<(Instant, String)> = Vec::new();
    let load_until = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while Instant::now() < load_until {
        n += 1;
        let title = format!("write {n}");
        if post(&client, &daemon.base, &token, &title).await == Some(201) {
            acknowledged.push((Instant::now(), title));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The disaster: the server dies and its data directory is gone.
    let pid_file = std::fs::read_to_string(state.join("postgres/data/postmaster.pid")).unwrap();
    let postmaster = pid_file.lines().next().unwrap().trim().to_owned();
    let killed_at = Instant::now();
    Command::new("kill").args(["-9", &postmaster]).status().unwrap();
    Command::new("kill").args(["-9", &daemon.child.id().to_string()]).status().unwrap();
    daemon.wait_exit(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::remove_dir_all(state.join("postgres/data")).unwrap();

    let restore_started = Instant::now();
    let (ok, output) = agora(&state, &["restore", "--to-latest"]);
    assert!(ok, "{output}");
    let restore_seconds = restore_started.elapsed().as_secs_f64();
    let daemon = started(&state, &dir.path().join("second.log")).await;
    let stored = titles(&client, &daemon.base).await;
    let newest_kept = acknowledged.iter().rev().find(|(_, title)| stored.contains(title));
    let lost_seconds = newest_kept.map_or(f64::INFINITY, |(at, _)| killed_at.duration_since(*at).as_secs_f64());
    println!(
        "data directory lost: {} of {} acknowledged writes restored, the newest from {lost_seconds:.1} s before the kill; restore took {restore_seconds:.1} s",
        acknowledged.iter().filter(|(_, t)| stored.contains(t)).count(),
        acknowledged.len()
    );
    // The archive may lack at most the last archive_timeout (5 s here) plus one archiving round.
    for (at, title) in &acknowledged {
        if killed_at.duration_since(*at) > Duration::from_secs(10) {
            assert!(stored.contains(title), "{title} was acknowledged long before the loss and is restored");
        }
    }
    assert!(lost_seconds < 10.0, "at most the last seconds are lost: {lost_seconds:.1} s");
}

/// The archived file of WAL segment `segment` in the repository.
fn archived_file(state: &Path, segment: &str) -> std::path::PathBuf {
    fn walk(dir: &Path, segment: &str) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Some(found) = walk(&path, segment) {
                    return Some(found);
                }
            } else if entry.file_name().to_string_lossy().starts_with(&format!("{segment}-")) {
                return Some(path);
            }
        }
        None
    }
    walk(&state.join("backups/pitr/archive"), segment).unwrap_or_else(|| panic!("no archived {segment}"))
}

fn drill(state: &Path) -> (bool, String) {
    agora(state, &["backup", "--drill"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drill_passes_on_a_healthy_archive_and_fails_loudly_on_a_missing_or_damaged_segment() {
    let dir = world_traversable_tempdir("agora-drill-");
    let state = dir.path().join("state");
    let daemon = started(&state, &dir.path().join("agora.log")).await;
    wait_first_base_backup(&daemon).await;
    let client = reqwest::Client::new();
    let token = ann_in_town(&client, &daemon.base).await;
    for n in 0..5 {
        assert_eq!(post(&client, &daemon.base, &token, &format!("post {n}")).await, Some(201));
    }
    let (ok, output) = drill(&state);
    assert!(ok && output.contains("drill passed"), "{output}");
    let scrape = client.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| crate::harness::metric(&scrape, name);
    assert!(value("agora_dr_last_drill_success_timestamp_seconds") > 0.0);
    assert!(value("agora_dr_last_drill_rto_seconds") > 0.0);
    assert_eq!(value("agora_dr_last_drill_passed"), 1.0);
    assert!(value("agora_wal_archive_last_success_timestamp_seconds") > 0.0);
    assert!(value("agora_dr_rpo_seconds") < 60.0, "{scrape}");
    let (_, report) = agora(&state, &["doctor"]);
    let line =
        |name: &str| report.lines().find(|l| l.split_whitespace().nth(1) == Some(name)).unwrap_or_default().to_owned();
    assert!(line("drill").starts_with("OK") && line("drill").contains("RTO"), "{report}");
    assert!(line("archiving").starts_with("OK") && line("archiving").contains("archived"), "{report}");

    // A segment written after the base backup goes missing from the archive.
    assert_eq!(post(&client, &daemon.base, &token, "in the lost segment").await, Some(201));
    let url = private_url(&state);
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Wal {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let segment: Wal =
        diesel::sql_query("SELECT pg_walfile_name(pg_current_wal_lsn()) AS name").get_result(&mut conn).await.unwrap();
    archive_everything(&url).await;
    let file = archived_file(&state, &segment.name);
    let aside = file.with_extension("aside");
    std::fs::rename(&file, &aside).unwrap();
    let (ok, output) = drill(&state);
    assert!(!ok, "a drill over a missing segment fails: {output}");
    assert!(output.contains("FAILED"), "and says so in the log: {output}");
    let scrape = client.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    assert_eq!(crate::harness::metric(&scrape, "agora_dr_last_drill_passed"), 0.0);

    // Damaged instead of missing: fails too.
    let mut bytes = std::fs::read(&aside).unwrap();
    let (middle, len) = (bytes.len() / 2, bytes.len());
    for byte in &mut bytes[middle..middle + 64.min(len - middle)] {
        *byte ^= 0xff;
    }
    std::fs::write(&file, bytes).unwrap();
    repository_owner(&file);
    let (ok, output) = drill(&state);
    assert!(!ok, "a drill over a damaged segment fails: {output}");

    // Put back, the archive restores again.
    std::fs::rename(&aside, &file).unwrap();
    let (ok, output) = drill(&state);
    assert!(ok, "{output}");
}

/// Files the test writes into the repository must belong to the server's user, as pgBackRest's own do.
fn repository_owner(path: &Path) {
    Command::new("chown").arg("postgres:postgres").arg(path).status().unwrap();
}
