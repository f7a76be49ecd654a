//! The private PostgreSQL cluster survives its own crash: a killed server is noticed, reaped
//! and restarted while Agora runs, and a machine that lost both (power, OOM) starts again the
//! first time, every time, with nothing acknowledged lost.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Daemon, eventually, metric, world_traversable_tempdir};

fn daemon(state: &Path, log: &Path) -> Daemon {
    crate::harness::install_crypto_provider();
    let env = [
        ("AGORA_PATHS__STATE_DIR", state.display().to_string()),
        ("AGORA_METRICS__LISTEN", String::new()),
        ("AGORA_RATE_LIMITS__ENABLED", "false".to_owned()),
        ("AGORA_DATABASE__HEALTH_TIMEOUT_MS", "500".to_owned()),
    ];
    Daemon::serve(&env, log.to_path_buf())
}

/// The private server's postmaster, from its pid file.
fn postmaster_pid(state: &Path) -> i32 {
    let pid_file = std::fs::read_to_string(state.join("postgres/data/postmaster.pid")).expect("postmaster.pid");
    pid_file.lines().next().and_then(|pid| pid.trim().parse().ok()).expect("a pid")
}

fn kill9(pid: i32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill -9 {pid}");
}

fn is_zombie_or_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Registers `ann` on a daemon under test and has her create community `town`; her token.
pub async fn ann_in_town(client: &reqwest::Client, base: &str) -> String {
    let body = json!({"username": "ann", "email": "ann@example.com", "password": "password123"});
    let response = client.post(format!("{base}/api/v1/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let token = response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let community = json!({"name": "town", "title": "Town"});
    let created = client.post(format!("{base}/api/v1/communities")).bearer_auth(&token).json(&community).send().await;
    assert_eq!(created.unwrap().status(), 201);
    token
}

/// `ann` posts `title` in `town`; the answer's status (`None` when nothing answered).
pub async fn post(client: &reqwest::Client, base: &str, token: &str, title: &str) -> Option<u16> {
    let response = client
        .post(format!("{base}/api/v1/communities/town/posts"))
        .bearer_auth(token)
        .json(&json!({"title": title}))
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// Every title in community `town`, newest first, through the API.
pub async fn titles(client: &reqwest::Client, base: &str) -> Vec<String> {
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/posts?community=town&sort=new&limit=100");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        titles.extend(page["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return titles,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_private_server_is_restarted_under_a_write_load_and_nothing_acknowledged_is_lost() {
    let dir = world_traversable_tempdir("agora-crash-");
    let state = dir.path().join("state");
    let mut agora = daemon(&state, &dir.path().join("agora.log"));
    agora.wait_ready(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let base = agora.base.clone();
    let token = ann_in_town(&client, &base).await;

    // A writer that records every answer (with when its request was sent) and every
    // acknowledged title.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let answers = Arc::new(Mutex::new(Vec::<(Instant, u16)>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (acknowledged, answers, stop) = (acknowledged.clone(), answers.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let title = format!("write {n}");
                let sent = Instant::now();
                if let Some(status) = post(&client, &base, &token, &title).await {
                    answers.lock().unwrap().push((sent, status));
                    if status == 201 {
                        acknowledged.lock().unwrap().push(title);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let old = postmaster_pid(&state);
    kill9(old);
    let killed_at = Instant::now();
    let back = eventually(Duration::from_secs(60), "writes to succeed again", || async {
        let answers = answers.lock().unwrap();
        answers
            .iter()
            .find(|(at, status)| *at > killed_at && *status == 201)
            .map(|(at, _)| at.duration_since(killed_at))
    })
    .await;
    println!("private PostgreSQL killed: writes acknowledged again after {:.1} s", back.as_secs_f64());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();

    assert!(is_zombie_or_gone(old) && !is_zombie_or_gone(postmaster_pid(&state)), "a new postmaster runs");
    assert!(
        std::fs::read_to_string(format!("/proc/{old}/stat")).is_err(),
        "the killed postmaster was reaped, not left a zombie"
    );
    let statuses: Vec<u16> = answers.lock().unwrap().iter().map(|(_, status)| *status).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 503), "writes answer 201 or 503, never 500: {statuses:?}");
    let stored = titles(&client, &base).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    let lost: Vec<&String> = acknowledged.iter().filter(|title| !stored.contains(title)).collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let scrape = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&scrape, "agora_private_database_restarts_total") >= 1.0, "{scrape}");
    assert!(agora.log().contains("exited unexpectedly"), "the crash is logged");
    let ready: Value = client.get(format!("{base}/health/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    agora.signal(libc::SIGTERM);
    assert_eq!(agora.wait_exit(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_postgres_and_agora_die_together_it_starts_the_first_time_ten_times_in_a_row() {
    let dir = world_traversable_tempdir("agora-power-");
    let state = dir.path().join("state");
    let client = reqwest::Client::new();
    let mut token = String::new();
    for round in 0..10 {
        let mut agora = daemon(&state, &dir.path().join(format!("round-{round}.log")));
        agora.wait_ready(Duration::from_secs(120)).await;
        let base = agora.base.clone();
        if round == 0 {
            token = ann_in_town(&client, &base).await;
        }
        assert_eq!(post(&client, &base, &token, &format!("round {round}")).await, Some(201), "round {round}");
        // What a power cut or the OOM killer does: no one gets to shut down.
        kill9(postmaster_pid(&state));
        kill9(i32::try_from(agora.child.id()).unwrap());
        agora.wait_exit(Duration::from_secs(10)).await;
    }
    let mut agora = daemon(&state, &dir.path().join("last.log"));
    agora.wait_ready(Duration::from_secs(120)).await;
    let stored = titles(&client, &agora.base).await;
    for round in 0..10 {
        assert!(stored.contains(&format!("round {round}")), "round {round} is kept: {stored:?}");
    }
    agora.signal(libc::SIGTERM);
    assert_eq!(agora.wait_exit(Duration::from_secs(30)).await, Some(0));
}
