//! `agora doctor`: one line per check, and a failing exit when something is broken.

use std::process::Command;

use crate::harness::TestDb;

fn doctor(env: &[(&str, String)], dir: &std::path::Path) -> (bool, String) {
    let config = dir.join("agora.toml");
    std::fs::write(&config, "").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command.arg("doctor").env("AGORA_CONFIG", &config).env("AGORA_PATHS__STATE_DIR", dir.join("state"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

fn line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .unwrap_or_else(|| panic!("no {name} line:\n{report}"))
}

#[tokio::test]
async fn a_healthy_install_passes_with_warnings_that_say_what_to_do() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("AGORA_DATABASE__URL", db.url.clone()), ("AGORA_TLS__SELF_SIGNED", "true".to_owned())];
    let (ok, report) = doctor(&env, dir.path());
    assert!(ok, "{report}");
    assert!(
        line(&report, "database").starts_with("OK") && line(&report, "database").contains("PostgreSQL 15"),
        "{report}"
    );
    assert!(line(&report, "clock").starts_with("OK"), "{report}");
    assert!(line(&report, "connection").starts_with("OK") && report.contains("daemon(s) x 18 connections"), "{report}");
    assert!(line(&report, "configuration").starts_with("OK"));
    for dir_check in ["state", "queue", "backup"] {
        let row = report.lines().find(|l| l.contains(&format!("{dir_check} dir"))).unwrap();
        assert!(row.starts_with("OK"), "{row}");
    }
    assert!(line(&report, "tls").starts_with("OK") && line(&report, "tls").contains("valid for"), "{report}");
    assert!(line(&report, "email").starts_with("WARN"), "{report}");
    assert!(report.contains("→ set [email]"), "a warning says what to do:\n{report}");
    assert!(report.contains("0 failed"), "{report}");
}

#[tokio::test]
async fn an_unreachable_database_and_smtp_server_fail_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = [
        ("AGORA_DATABASE__URL", format!("postgres://agora@127.0.0.1:{closed}/agora")),
        ("AGORA_EMAIL__SMTP_HOST", "127.0.0.1".to_owned()),
        ("AGORA_EMAIL__SMTP_PORT", closed.to_string()),
        ("AGORA_EMAIL__SMTP_SECURITY", "none".to_owned()),
    ];
    let (ok, report) = doctor(&env, dir.path());
    assert!(!ok, "{report}");
    assert!(line(&report, "database").starts_with("FAIL"), "{report}");
    assert!(line(&report, "email").starts_with("FAIL"), "{report}");
    assert!(report.contains("→ start PostgreSQL"), "{report}");
    assert!(report.contains("2 failed"), "{report}");
}
