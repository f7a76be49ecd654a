//! `/metrics` is valid Prometheus text, holds every metric Agora promises, and cannot be
//! blown up by scanners.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::spawn_app;

/// Metric families that must be present after a few requests.
const EXPECTED: &[&str] = &[
    "http_server_request_duration_seconds",
    "http_server_active_requests",
    "agora_db_pool_connections",
    "agora_db_pool_idle_connections",
    "agora_db_pool_max_connections",
    "agora_db_pool_waiting_requests",
    "agora_db_query_duration_seconds",
    "agora_db_up",
    "agora_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

/// Families that exist only when read replicas are configured (checked in `replicas`).
pub const NEEDS_REPLICAS: &[&str] = &[
    "agora_db_replica_fallbacks_total",
    "agora_db_replica_lag_seconds",
    "agora_db_replica_lag_bytes",
    "agora_db_replica_healthy",
];

pub fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

fn series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(name, _)| name.to_owned()))
        .collect()
}

pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (apt-get install prometheus); .ci/run installs it");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_hold_every_promised_family() {
    let app = spawn_app().await;
    app.get("/health/ready").await;
    app.get("/api/v1/posts/1").await;
    app.get("/no/such/thing").await;
    let text = app.scrape().await;
    promtool_check(&text);
    let present = families(&text);
    for name in EXPECTED {
        assert!(present.iter().any(|p| p == name), "missing {name} in:\n{text}");
    }
    for name in agora::metrics::ALL.iter().filter(|name| !NEEDS_REPLICAS.contains(name)) {
        assert!(present.iter().any(|p| p == name), "{name} is declared in metrics::ALL but not exported");
    }
    assert!(text.contains(&format!(
        "agora_build_info{{revision=\"{}\",version=\"{}\"}} 1",
        agora::GIT_REVISION,
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.contains(r#"http_route="/api/v1/posts/{id}""#), "route templates label requests");
    assert!(text.contains(r#"http_response_status_code="404""#));
    assert!(text.contains(r#"query="posts.view_by_id",role="primary""#));
    app.stop().await;
}

#[tokio::test]
async fn scanning_random_paths_adds_no_series() {
    let app = spawn_app().await;
    app.get("/warm/up").await;
    app.client
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), format!("{}/x", app.base))
        .send()
        .await
        .unwrap();
    // The first scrape's own request is counted after it answers: scrape twice for a baseline.
    app.scrape().await;
    let before = series(&app.scrape().await);
    for i in 0..1000 {
        let path = format!("/{}/{i}/wp-admin.php?x={}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4());
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404);
    }
    app.client
        .request(reqwest::Method::from_bytes(b"FOOBAR").unwrap(), format!("{}/y", app.base))
        .send()
        .await
        .unwrap();
    let after_text = app.scrape().await;
    let after = series(&after_text);
    let added: Vec<_> = after.difference(&before).collect();
    assert!(added.is_empty(), "unknown paths and methods must share fixed label values; new series: {added:?}");
    assert!(after_text.contains(r#"http_request_method="GET",http_response_status_code="404",http_route="unmatched""#));
    app.stop().await;
}

#[tokio::test]
async fn the_public_listener_says_where_metrics_are_when_the_admin_listener_serves_them() {
    let app = spawn_app().await;
    let scrape = app.get("/metrics").await;
    assert_eq!(scrape.status(), 404);
    assert_eq!(scrape.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = scrape.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("metrics.listen"), "{body}");
    let other = app.client.delete(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(other.status(), 405);
    assert_eq!(other.headers()["allow"], "GET");
    assert!(app.scrape().await.contains("agora_build_info"), "the admin listener still serves them");
    app.stop().await;
}
