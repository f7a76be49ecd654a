//! Read replicas: reads go to a replica that has replayed what they must see, a writer reads
//! their write at once, a stopped or lagging replica is taken out and comes back, and while the
//! primary is away reads keep working from the replica and writes answer 503 with Retry-After.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, TestDb, eventually, spawn_app_on};
use crate::replication::Pair;

async fn app_on(pair: &Pair, adjust: impl FnOnce(&mut agora::config::Config)) -> TestApp {
    let replica = pair.replica_url();
    spawn_app_on(TestDb::unmanaged(pair.primary_url()), |config| {
        config.database.replicas = vec![replica];
        adjust(config);
    })
    .await
}

/// The replica's entry in `/health/ready`.
async fn replica_state(app: &TestApp) -> String {
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    let replicas = ready["checks"]["replicas"].as_object().unwrap();
    assert_eq!(replicas.len(), 1, "{ready}");
    replicas.values().next().unwrap().as_str().unwrap().to_owned()
}

async fn wait_replica(app: &TestApp, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    eventually(Duration::from_secs(15), what, || async {
        let state = replica_state(app).await;
        wanted(&state).then_some(state)
    })
    .await
}

/// The sum of the samples of `family` whose labels contain every one of `labels`.
fn sum_of(scrape: &str, family: &str, labels: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(family) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit_once(' ').and_then(|(_, value)| value.parse::<f64>().ok()))
        .sum()
}

/// `agora doctor` over the pair (the primary as database.url, the replica listed), and its
/// `replica` line.
fn doctor_replica_line(pair: &Pair) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agora.toml");
    let toml = format!(
        "[database]\nurl = \"{}\"\nreplicas = [\"{}\"]\n[paths]\nstate_dir = \"{}\"\n",
        pair.primary_url(),
        pair.replica_url(),
        dir.path().join("state").display()
    );
    std::fs::write(&config, toml).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("doctor")
        .env("AGORA_CONFIG", &config)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(report.lines().any(|l| l.contains("connection budget")), "{report}");
    report
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("replica"))
        .unwrap_or_else(|| panic!("{report}"))
        .to_owned()
}

/// Waits until reads that miss the cache go to the replica (it has replayed every change
/// this daemon applied, and a probe has seen that): each try reads a listing not cached yet.
async fn wait_reads_on_replica(app: &TestApp) {
    let tries = std::sync::atomic::AtomicU32::new(0);
    eventually(Duration::from_secs(15), "reads to go to the replica", || async {
        let routed = |scrape: &str| sum_of(scrape, "agora_db_reads_routed_total", &[r#"role="replica""#]);
        let before = routed(&app.scrape().await);
        let limit = 100 - tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 90;
        assert_eq!(app.get(&format!("/api/v1/posts?sort=new&limit={limit}")).await.status(), 200);
        (routed(&app.scrape().await) > before).then_some(())
    })
    .await;
}

fn titles(listing: &Value) -> Vec<String> {
    listing["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_caught_up_replica_and_a_writer_reads_their_write_at_once() {
    let pair = Pair::start().await;
    let app = app_on(&pair, |_| {}).await;
    let state = wait_replica(&app, "the replica in", |s| s.starts_with("up, lag")).await;
    let lag: f64 = state.trim_start_matches("up, lag ").trim_end_matches(" s").parse().unwrap();
    assert!(lag < 1.0, "an idle primary's replica does not lag: {state}");

    let token = app.token_for("ann").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&token)).await;
    let created = app.post_json("/api/v1/communities/town/posts", &json!({"title": "first"}), Some(&token)).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    // Read back at once, by the writer and anonymously: never a replica's older state.
    assert_eq!(app.get_as(&format!("/api/v1/posts/{id}"), &token).await.status(), 200);
    let listing: Value = app.get("/api/v1/posts?community=town&sort=new").await.json().await.unwrap();
    assert_eq!(titles(&listing), ["first"]);

    // Once the replica has replayed the writes (and the probe has seen it), reads go there.
    pair.wait_caught_up().await;
    wait_reads_on_replica(&app).await;
    let before = app.scrape().await;
    for sort in ["top", "controversial", "active"] {
        let page: Value = app.get(&format!("/api/v1/posts?community=town&sort={sort}")).await.json().await.unwrap();
        assert_eq!(titles(&page), ["first"], "{sort}");
    }
    let search: Value = app.get("/api/v1/search?q=first").await.json().await.unwrap();
    assert_eq!(search["items"].as_array().unwrap().len(), 1);
    let after = app.scrape().await;
    let replica_lists = |scrape: &str| {
        sum_of(scrape, "agora_db_query_duration_seconds_count", &[r#"query="posts.list_top""#, r#"role="replica""#])
    };
    assert_eq!(replica_lists(&after) - replica_lists(&before), 1.0, "the top listing was read on the replica");
    for query in ["posts.list_top", "posts.list_controversial", "posts.list_active", "posts.search"] {
        let on_primary = |scrape: &str| {
            sum_of(
                scrape,
                "agora_db_query_duration_seconds_count",
                &[&format!("query=\"{query}\""), r#"role="primary""#],
            )
        };
        assert_eq!(on_primary(&after), on_primary(&before), "{query} did not touch the primary");
    }
    let routed =
        |scrape: &str, role: &str| sum_of(scrape, "agora_db_reads_routed_total", &[&format!("role=\"{role}\"")]);
    assert!(routed(&after, "replica") - routed(&before, "replica") >= 4.0);
    assert_eq!(routed(&after, "primary"), routed(&before, "primary"));
    assert_eq!(sum_of(&after, "agora_db_replica_healthy", &[]), 1.0);
    assert!(after.contains("agora_db_replica_lag_bytes{server=\""), "{after}");
    assert!(!after.contains("postgres@"), "server labels never carry the user or a password");
    crate::metrics::promtool_check(&after);
    let present = crate::metrics::families(&after);
    for name in agora::metrics::ALL {
        assert!(present.iter().any(|p| p == name), "{name} is declared in metrics::ALL but not exported");
    }

    // A write, then the writer's own read: on the primary until the replica has it.
    let edit = app
        .send_as(reqwest::Method::PATCH, &format!("/api/v1/posts/{id}"), Some(json!({"title": "edited"})), &token)
        .await;
    assert_eq!(edit.status(), 200);
    let post: Value = app.get_as(&format!("/api/v1/posts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(post["title"], "edited");

    let doctor = doctor_replica_line(&pair);
    assert!(
        doctor.starts_with("OK") && doctor.contains("in recovery") && doctor.contains("bytes of WAL behind"),
        "{doctor}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_or_lagging_replica_is_taken_out_and_used_again_once_back() {
    let pair = Pair::start().await;
    let app = app_on(&pair, |config| {
        config.database.max_replica_lag = 1.0;
        config.database.read_your_writes = 1.0;
    })
    .await;
    wait_replica(&app, "the replica in", |s| s.starts_with("up")).await;
    let token = app.token_for("ann").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&token)).await;

    // Stopped: out, and reads answer from the primary.
    pair.stop_replica();
    let state = wait_replica(&app, "the stopped replica out", |s| s.starts_with("out:")).await;
    assert!(state.contains("unreachable") || state.contains("no connection") || state.contains("failed"), "{state}");
    for limit in 1..=5 {
        let page = app.get(&format!("/api/v1/posts?sort=top&limit={limit}")).await;
        assert_eq!(page.status(), 200);
    }
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "a replica out does not make the daemon unready: {ready}");
    let doctor = doctor_replica_line(&pair);
    assert!(doctor.starts_with("FAIL") && doctor.contains("cannot connect"), "{doctor}");
    pair.start_replica();
    wait_replica(&app, "the restarted replica back in", |s| s.starts_with("up")).await;
    // Back in, it serves reads again once it holds the latest change.
    wait_reads_on_replica(&app).await;

    // Replay paused while the primary writes: the lag grows past the limit, it is taken out.
    pair.on_replica("SELECT pg_wal_replay_pause()").await;
    for n in 0..3 {
        let created =
            app.post_json("/api/v1/communities/town/posts", &json!({"title": format!("post {n}")}), Some(&token)).await;
        assert_eq!(created.status(), 201);
    }
    let state = wait_replica(&app, "the paused replica out", |s| s.starts_with("out: lag")).await;
    assert!(state.contains("database.max_replica_lag"), "{state}");
    let scrape = app.scrape().await;
    assert_eq!(sum_of(&scrape, "agora_db_replica_healthy", &[]), 0.0);
    assert!(sum_of(&scrape, "agora_db_replica_lag_seconds", &[]) > 1.0, "{scrape}");
    assert!(sum_of(&scrape, "agora_db_replica_lag_bytes", &[]) > 0.0);
    let listing: Value = app.get("/api/v1/posts?community=town&sort=new").await.json().await.unwrap();
    assert_eq!(titles(&listing).len(), 3, "reads from the primary see every post");
    pair.on_replica("SELECT pg_wal_replay_resume()").await;
    wait_replica(&app, "the resumed replica back in", |s| s.starts_with("up")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_primary_is_down_reads_work_from_the_replica_and_writes_answer_503() {
    let pair = Pair::start().await;
    let app = app_on(&pair, |_| {}).await;
    wait_replica(&app, "the replica in", |s| s.starts_with("up")).await;
    let token = app.token_for("ann").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&token)).await;
    for n in 0..5 {
        app.post_json("/api/v1/communities/town/posts", &json!({"title": format!("post {n}")}), Some(&token)).await;
    }
    pair.wait_caught_up().await;
    wait_reads_on_replica(&app).await;

    // A reader and a writer run throughout; every status they get is recorded.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = |write: bool| {
        let (client, base, token, stop) = (app.client.clone(), app.base.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let response = if write {
                    client
                        .post(format!("{base}/api/v1/communities/town/posts"))
                        .bearer_auth(&token)
                        .json(&json!({"title": format!("load {n}")}))
                        .send()
                        .await
                } else {
                    // Distinct page sizes, so reads miss the cache and reach a server.
                    client.get(format!("{base}/api/v1/posts?community=town&sort=top&limit={}", 1 + n % 90)).send().await
                };
                if let Ok(response) = response {
                    let retry_after = response.headers().get("retry-after").is_some();
                    statuses.push((response.status().as_u16(), retry_after));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    let (reader, writer) = (load(false), load(true));
    tokio::time::sleep(Duration::from_millis(500)).await;

    pair.stop_primary();
    let ready = eventually(Duration::from_secs(10), "readiness to say the primary is down", || async {
        let response = app.get("/health/ready").await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (body["checks"]["database"] == "down").then_some((status, body))
    })
    .await;
    assert_eq!(ready.0, 200, "reads still work, so the daemon stays in the load balancer: {}", ready.1);
    assert_eq!(ready.1["status"], "degraded");
    let write = app.post_json("/api/v1/communities/town/posts", &json!({"title": "while down"}), Some(&token)).await;
    assert_eq!(write.status(), 503);
    assert_eq!(write.headers()["retry-after"], "5");
    assert_eq!(write.headers()["content-type"], "application/problem+json");
    let read = app.get("/api/v1/posts?community=town&sort=top&limit=99").await;
    assert_eq!(read.status(), 200, "a read that misses the cache is served by the replica");
    tokio::time::sleep(Duration::from_secs(1)).await;

    pair.start_primary();
    eventually(Duration::from_secs(20), "writes to work again without a restart", || async {
        let write = app.post_json("/api/v1/communities/town/posts", &json!({"title": "after"}), Some(&token)).await;
        (write.status() == 201).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "readiness back to ready", || async {
        let body: Value = app.get("/health/ready").await.json().await.unwrap();
        (body["status"] == "ready").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, writes) = (reader.await.unwrap(), writer.await.unwrap());
    let reads_failed: Vec<_> = reads.iter().filter(|(status, _)| *status != 200).collect();
    assert!(reads_failed.is_empty(), "every read answered 200 while the primary was away: {reads_failed:?}");
    assert!(writes.iter().any(|(status, _)| *status == 503), "some writes met the primary down");
    for (status, retry_after) in &writes {
        assert!(*status == 201 || (*status == 503 && *retry_after), "a write answered {status}");
    }
    assert_eq!(writes.last().map(|w| w.0), Some(201), "writes recovered");
    app.stop().await;
}
