//! Dashboards only use metrics that exist in a real scrape, and their PromQL parses.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::spawn_app;

/// Every `expr` of every panel of every dashboard under `dashboards/`.
fn dashboard_exprs() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards");
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(dashboard["uid"].as_str().is_some_and(|uid| uid.starts_with("agora-")), "{path:?} needs a fixed uid");
        assert!(dashboard.get("__inputs").is_none(), "{path:?} must provision as is");
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let title = format!("{} / {}", path.file_name().unwrap().to_string_lossy(), panel["title"]);
                exprs.push((title, target["expr"].as_str().unwrap().to_owned()));
            }
        }
    }
    assert!(!exprs.is_empty());
    exprs
}

/// Grafana's variables replaced by values Prometheus accepts.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
}

/// Identifiers that name Agora's metrics (histogram series mapped to their family).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if ["agora_", "http_server_", "process_"].iter().any(|p| token.starts_with(p)) {
            let family =
                ["_bucket", "_count", "_sum"].iter().find_map(|suffix| token.strip_suffix(suffix)).unwrap_or(token);
            names.insert(family.to_owned());
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_metric_exists_in_a_real_scrape() {
    let app = spawn_app().await;
    app.get("/health/ready").await;
    app.get("/api/v1/posts/1").await;
    let scrape = app.scrape().await;
    let exported: BTreeSet<&str> =
        scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    for (title, expr) in dashboard_exprs().into_iter().chain(alert_exprs()) {
        for name in metric_names(&expr) {
            // Replica families appear only with replicas configured; `replicas` checks those
            // scrapes export every declared metric.
            let with_replicas = crate::metrics::NEEDS_REPLICAS.contains(&name.as_str());
            assert!(
                exported.contains(name.as_str()) || with_replicas,
                "{title} uses {name}, which /metrics does not export"
            );
        }
    }
    app.stop().await;
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let mut rules = String::from("groups:\n  - name: dashboard_queries\n    rules:\n");
    for (index, (_, expr)) in dashboard_exprs().iter().enumerate() {
        let quoted = serde_json::to_string(&as_promql(expr)).unwrap();
        rules.push_str(&format!("      - record: agora:dashboard_query_{index}:check\n        expr: {quoted}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, rules).unwrap();
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool is needed (apt-get install prometheus)");
    assert!(
        output.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn alerts_file() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards/alerts.yml")
}

/// Every `expr:` of the alerting and recording rules (one line each), with the names of
/// recording rules (`level:metric:operations`) taken out: they are not exported metrics.
fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(alerts_file()).unwrap();
    let exprs: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr: "))
        .map(|expr| {
            let own: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|token| !token.contains(':'))
                .collect();
            (format!("alert rule `{expr}`"), own.join(" "))
        })
        .collect();
    assert!(exprs.len() > 10);
    exprs
}

fn promtool(args: &[&str], dir: &std::path::Path) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is needed (apt-get install prometheus)");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let dir = alerts_file().parent().unwrap().to_path_buf();
    promtool(&["check", "rules", "alerts.yml"], &dir);
    promtool(&["test", "rules", "alerts_test.yml"], &dir);
}

#[test]
fn every_alert_is_named_rated_described_and_has_a_runbook_section() {
    let text = std::fs::read_to_string(alerts_file()).unwrap();
    let runbook =
        std::fs::read_to_string(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/runbook.md")).unwrap();
    let alerts: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 10);
    for (index, alert) in alerts.iter().enumerate() {
        assert!(
            alert.starts_with("Agora") && alert.chars().all(|c| c.is_ascii_alphanumeric()),
            "{alert}: CamelCase with the Agora prefix"
        );
        let block = text.split("- alert: ").nth(index + 1).unwrap();
        assert!(block.contains("severity: critical") || block.contains("severity: warning"), "{alert}: severity");
        for key in ["summary:", "description:", "runbook_url:"] {
            assert!(block.contains(key), "{alert}: {key}");
        }
        let anchor = alert.to_lowercase();
        assert!(block.contains(&format!("runbook.md#{anchor}")), "{alert}: runbook_url points at its section");
        assert!(runbook.contains(&format!("## {alert}")), "docs/runbook.md has no section `## {alert}`");
    }
}

#[test]
fn every_dashboard_provisions_as_it_is() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut uids = BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.path().extension().is_none_or(|e| e != "json") {
            continue;
        }
        count += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
        let uid = dashboard["uid"].as_str().unwrap_or_else(|| panic!("{name}: no uid"));
        assert_eq!(format!("{uid}.json"), name, "the uid names the file");
        assert!(uids.insert(uid.to_owned()), "{name}: duplicate uid");
        assert!(dashboard.get("__inputs").is_none(), "{name}: import placeholders do not provision");
        let variables: Vec<&str> =
            dashboard["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
        assert_eq!(variables, ["datasource", "job", "instance"], "{name}");
        let mut ids = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert!(ids.insert(panel["id"].as_i64().unwrap()), "{name}: duplicate panel id {}", panel["id"]);
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{name}: {}", panel["title"]);
        }
    }
    assert_eq!(count, 8, "overview, HTTP, pages, database, queue, AI, community, process");
}
