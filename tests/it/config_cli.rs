//! `agora check-config` refuses bad configurations, naming the file, the key and the reason.

use std::process::Command;

fn check_config(toml: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agora.toml");
    std::fs::write(&path, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command.arg("--config").arg(&path).arg("check-config");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stderr.replace(&path.display().to_string(), "FILE"), stdout)
}

#[test]
fn a_valid_file_passes_and_prints_the_masked_configuration() {
    let (code, stderr, stdout) = check_config("[database]\nurl = \"postgres://agora:s3cret@db.example/agora\"\n", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("configuration OK: FILE"), "{stderr}");
    assert!(stdout.contains("agora:****@db.example"), "{stdout}");
    assert!(!stdout.contains("s3cret"));
}

#[test]
fn the_reference_configuration_passes() {
    let reference = include_str!("../../config/agora.toml");
    let (code, stderr, _) = check_config(reference, &[]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let (code, stderr, _) = check_config("[server]\nlisten_on = [\"127.0.0.1:1\"]\n", &[]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("FILE") && stderr.contains("listen_on"), "{stderr}");
}

#[test]
fn a_wrong_type_is_refused_by_name() {
    let (code, stderr, _) = check_config("[server]\nshutdown_grace_seconds = \"soon\"\n", &[]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("FILE: key `server.shutdown_grace_seconds`"), "{stderr}");
}

#[test]
fn an_unparseable_listen_address_is_refused_by_name() {
    let (code, stderr, _) = check_config("[server]\nlisten = [\"localhost\"]\n", &[]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("server.listen") && stderr.contains("`localhost`"), "{stderr}");
}

#[test]
fn a_negative_pool_size_is_refused_by_name() {
    let (code, stderr, _) = check_config("[database]\npool_size = -4\n", &[]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("key `database.pool_size`"), "{stderr}");
}

#[test]
fn environment_values_are_checked_and_named() {
    let (code, stderr, _) = check_config("", &[("AGORA_DATABASE__POOL_SIZE", "-1")]);
    assert_eq!(code, Some(78));
    assert!(stderr.contains("environment AGORA_DATABASE__POOL_SIZE"), "{stderr}");
}

#[test]
fn a_missing_explicit_file_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["--config", "/nonexistent/agora.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/agora.toml"));
}

#[test]
fn version_names_the_release() {
    let output = Command::new(env!("CARGO_BIN_EXE_agora")).arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn migrate_lists_then_applies_pending_migrations_once() {
    let db = crate::harness::TestDb::empty().await;
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(args)
            .env("AGORA_CONFIG", "/dev/null")
            .env("AGORA_DATABASE__URL", &db.url)
            .env("AGORA_LOG__FORMAT", "json")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dry_run = run(&["migrate", "--dry-run"]);
    assert!(dry_run.contains("would apply 2026-11-25-000001_initial_schema"), "{dry_run}");
    assert!(run(&["migrate", "--dry-run"]).contains("would apply"), "a dry run changes nothing");
    let applied = run(&["migrate"]);
    assert!(applied.contains("applied 20261125000001"), "{applied}");
    assert!(run(&["migrate"]).contains("no pending migrations"));
}

#[test]
fn serve_refuses_a_bad_configuration_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agora.toml");
    std::fs::write(&path, "[database]\npool_size = 0\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .env("AGORA_PATHS__STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("key `database.pool_size`: must be at least 1"), "{stderr}");
    assert!(!dir.path().join("state").exists(), "nothing was created");
}

/// The packaged `/etc/agora/agora.toml` is the reference configuration, comments and all,
/// with exactly the three packaged settings changed.
#[test]
fn the_packaged_configuration_is_the_reference_with_three_settings() {
    let reference = include_str!("../../config/agora.toml");
    let packaged = include_str!("../../packaging/agora.toml");
    let mut expected = agora::config::Config::from_toml("config/agora.toml", reference).unwrap();
    expected.paths.state_dir = "/var/lib/agora".into();
    expected.database.url = "postgres://agora@localhost/agora?host=/run/postgresql".into();
    expected.log.format = agora::config::LogFormat::Json;
    let actual = agora::config::Config::from_toml("packaging/agora.toml", packaged).unwrap();
    assert_eq!(actual, expected);
    let differing = reference.lines().zip(packaged.lines().skip(2)).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 4, "only the header line and the three settings differ");
}
