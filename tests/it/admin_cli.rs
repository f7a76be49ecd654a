//! `agora admin …`: users and roles from the command line, and the audit-log check.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::harness::{TestDb, spawn_app_on};

fn admin(db: &TestDb, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("admin")
        .args(args)
        .env("AGORA_CONFIG", "/dev/null")
        .env("AGORA_DATABASE__URL", &db.url)
        .env("AGORA_LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn operators_create_admins_grant_roles_and_verify_the_audit_log() {
    let db = TestDb::new().await;
    let (code, out, err) =
        admin(&db, &["create-user", "root_admin", "root@example.com", "--admin"], "s3cret-passw0rd\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("created user root_admin"), "{out}");
    let (code, _, err) = admin(&db, &["create-user", "bad name", "x@example.com"], "password123\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("username"), "{err}");
    let (code, _, err) = admin(&db, &["create-user", "shorty", "s@example.com"], "short\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("password"), "{err}");

    let app = spawn_app_on(db, |_| {}).await;
    let login =
        app.post_json("/api/v1/auth/login", &json!({"login": "root_admin", "password": "s3cret-passw0rd"}), None).await;
    let signed_in: Value = login.json().await.unwrap();
    assert_eq!(signed_in["user"]["is_admin"], true);
    assert_eq!(signed_in["user"]["roles"], json!(["member", "admin"]));
    let token = signed_in["access_token"].as_str().unwrap().to_owned();
    app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "news", "title": "News"}), Some(&token)).await;

    let (code, _, err) = admin(&app.db, &["grant", "bob", "moderator", "--community", "news"], "");
    assert_eq!(code, Some(0), "{err}");
    let community: Value = app.get("/api/v1/communities/news").await.json().await.unwrap();
    assert_eq!(community["moderators"], json!(["root_admin", "bob"]));
    let (code, _, err) = admin(&app.db, &["grant", "bob", "moderator"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("--community"), "{err}");
    assert_eq!(admin(&app.db, &["grant", "nobody", "admin"], "").0, Some(1));
    assert_eq!(admin(&app.db, &["revoke", "bob", "moderator", "--community", "news"], "").0, Some(0));

    let log: Value = app.get_as("/api/v1/modlog", &token).await.json().await.unwrap();
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        actions.contains(&"admin.grant") && actions.contains(&"admin.revoke") && actions.contains(&"admin.create_user"),
        "{actions:?}"
    );

    let (code, out, _) = admin(&app.db, &["verify-audit-log"], "");
    assert_eq!((code, out.trim()), (Some(0), "audit log intact"));
    app.db
        .execute(
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
             UPDATE audit_log SET reason = 'forged' WHERE id = 2;
             ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
        )
        .await;
    let (code, _, err) = admin(&app.db, &["verify-audit-log"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("broken at entry 2"), "{err}");
    app.stop().await;
}
