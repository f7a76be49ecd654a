//! Accounts: registration, sign-in, tokens, sign-out, password reset, the caller's profile.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApp, spawn_app};

impl TestApp {
    /// `POST path` with a JSON body and an optional bearer token.
    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// `GET path` with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("request")
    }

    /// A request with any method, JSON body and bearer token.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// Registers `username` and returns its access token.
    pub async fn token_for(&self, username: impl AsRef<str>) -> String {
        self.register(username.as_ref()).await["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers `username` (password `password123`) and returns the sign-in answer.
    pub async fn register(&self, username: &str) -> Value {
        let body = json!({"username": username, "email": format!("{username}@example.com"), "password": "password123"});
        let response = self.post_json("/api/v1/auth/register", &body, None).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap_or_default());
        response.json().await.unwrap()
    }
}

pub async fn problem_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "status {status}");
    let body: Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
    }
    let mut conn = app.db.connect().await;
    let rows: Vec<Row> =
        diesel_async::RunQueryDsl::load(diesel::sql_query("SELECT action FROM audit_log ORDER BY id"), &mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.action).collect()
}

#[tokio::test]
async fn registration_signs_the_new_user_in() {
    let app = spawn_app().await;
    let signed_in = app.register("Alice_1").await;
    assert_eq!(signed_in["user"]["username"], "Alice_1");
    assert_eq!(signed_in["user"]["email"], "Alice_1@example.com");
    assert_eq!(signed_in["user"]["karma"], 0);
    assert_eq!(signed_in["user"]["is_admin"], false);
    assert_eq!(signed_in["expires_in"], 900);
    assert!(signed_in["refresh_token"].as_str().unwrap().len() >= 43);
    let token = signed_in["access_token"].as_str().unwrap();
    let me: Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    assert_eq!(me["username"], "Alice_1");
    assert_eq!(me["roles"], json!(["member"]));
    assert_eq!(
        me["notification_settings"],
        json!({"email_on_reply": true, "email_on_mention": true, "email_on_message": true})
    );
    assert!(app.scrape().await.contains("agora_registrations_total 1"));
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::metadata(app.state_dir.path().join("keys/access-token.ed25519")).unwrap();
    assert_eq!((key.len(), key.permissions().mode() & 0o777), (32, 0o600), "the signing key is private");
    app.stop().await;
}

#[tokio::test]
async fn usernames_and_emails_are_taken_ignoring_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    let same_name = json!({"username": "ALICE", "email": "other@example.com", "password": "password123"});
    assert_eq!(
        problem_code(app.post_json("/api/v1/auth/register", &same_name, None).await).await,
        (409, "username_taken".into())
    );
    let same_email = json!({"username": "alice2", "email": "Alice@Example.com", "password": "password123"});
    assert_eq!(
        problem_code(app.post_json("/api/v1/auth/register", &same_email, None).await).await,
        (409, "email_taken".into())
    );
    app.stop().await;
}

#[tokio::test]
async fn invalid_registrations_name_every_bad_field_and_store_nothing() {
    let app = spawn_app().await;
    let body = json!({"username": "a!", "email": "nope", "password": "short"});
    let response = app.post_json("/api/v1/auth/register", &body, None).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "validation_failed");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["username", "email", "password"]);
    for hostile in ["' OR 1=1 --", "bob\u{0}", "<script>alert(1)</script>", &"x".repeat(10_000)] {
        let body = json!({"username": hostile, "email": "x@example.com", "password": "password123"});
        assert_eq!(app.post_json("/api/v1/auth/register", &body, None).await.status(), 422, "{hostile:.20}");
    }
    let long_password = json!({"username": "bob", "email": "bob@example.com", "password": "p".repeat(129)});
    assert_eq!(app.post_json("/api/v1/auth/register", &long_password, None).await.status(), 422);
    let mut conn = app.db.connect().await;
    let users: i64 =
        diesel_async::RunQueryDsl::get_result(diesel::QueryDsl::count(agora::db::schema::users::table), &mut conn)
            .await
            .unwrap();
    assert_eq!(users, 0);
    app.stop().await;
}

#[tokio::test]
async fn login_works_by_username_or_email_and_failures_look_alike() {
    let app = spawn_app().await;
    app.register("carol").await;
    for login in ["carol", "CAROL", "carol@example.com", "Carol@Example.COM"] {
        let response =
            app.post_json("/api/v1/auth/login", &json!({"login": login, "password": "password123"}), None).await;
        assert_eq!(response.status(), 200, "{login}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["username"], "carol");
        assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    }
    let wrong_password =
        app.post_json("/api/v1/auth/login", &json!({"login": "carol", "password": "password124"}), None).await;
    let wrong_body: Value = wrong_password.json().await.unwrap();
    let unknown =
        app.post_json("/api/v1/auth/login", &json!({"login": "nobody", "password": "password123"}), None).await;
    assert_eq!(unknown.status(), 401);
    let unknown_body: Value = unknown.json().await.unwrap();
    assert_eq!(wrong_body["code"], "invalid_credentials");
    assert_eq!(wrong_body["detail"], unknown_body["detail"], "no account probing");
    let nul = app.post_json("/api/v1/auth/login", &json!({"login": "car\u{0}ol", "password": "x"}), None).await;
    assert_eq!(problem_code(nul).await, (401, "invalid_credentials".into()));
    let injection =
        app.post_json("/api/v1/auth/login", &json!({"login": "' OR 1=1 --", "password": "' OR 1=1 --"}), None).await;
    assert_eq!(problem_code(injection).await, (401, "invalid_credentials".into()));
    assert_eq!(
        audit_actions(&app).await.iter().filter(|a| *a == "auth.login_failed").count(),
        4,
        "failed logins are audited"
    );
    let metrics = app.scrape().await;
    assert!(metrics.contains(r#"agora_logins_total{outcome="failure"} 4"#), "{metrics}");
    assert!(metrics.contains(r#"agora_logins_total{outcome="success"} 4"#));
    app.stop().await;
}

#[tokio::test]
async fn protected_endpoints_refuse_missing_and_forged_tokens() {
    let app = spawn_app().await;
    assert_eq!(problem_code(app.get("/api/v1/me").await).await, (401, "unauthorized".into()));
    for token in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwic2lkIjoxLCJleHAiOjk5OTk5OTk5OTl9."] {
        assert_eq!(problem_code(app.get_as("/api/v1/me", token).await).await, (401, "unauthorized".into()), "{token}");
    }
    let basic =
        app.client.get(format!("{}/api/v1/me", app.base)).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_eq!(basic.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_spent_token_revokes_the_login() {
    let app = spawn_app().await;
    let first = app.register("dave").await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let response = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first_refresh}), None).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.unwrap();
    let second_access = second["access_token"].as_str().unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(app.get_as("/api/v1/me", second_access).await.status(), 200);

    // The first refresh token is spent: presenting it again means it leaked.
    let reuse = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": first_refresh}), None).await;
    assert_eq!(problem_code(reuse).await, (401, "invalid_token".into()));
    assert_eq!(app.get_as("/api/v1/me", second_access).await.status(), 401, "the whole family is revoked");
    let next = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": second["refresh_token"]}), None).await;
    assert_eq!(next.status(), 401, "the newest refresh token of the family is revoked too");
    assert!(audit_actions(&app).await.contains(&"auth.refresh_token_reuse".to_owned()));
    let bogus = app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "not-a-token"}), None).await;
    assert_eq!(problem_code(bogus).await, (401, "invalid_token".into()));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_succeed_once() {
    let app = spawn_app().await;
    let signed_in = app.register("erin").await;
    let body = json!({"refresh_token": signed_in["refresh_token"]});
    let attempts = (0..5).map(|_| app.post_json("/api/v1/auth/refresh", &body, None));
    let statuses: Vec<u16> =
        futures_util::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn logout_stops_the_access_token_on_the_very_next_request() {
    let app = spawn_app().await;
    let signed_in = app.register("frank").await;
    let token = signed_in["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/me", token).await.status(), 200, "warm the session cache");
    let other_login =
        app.post_json("/api/v1/auth/login", &json!({"login": "frank", "password": "password123"}), None).await;
    let other: Value = other_login.json().await.unwrap();

    assert_eq!(app.post_json("/api/v1/auth/logout", &json!({}), Some(token)).await.status(), 204);
    assert_eq!(app.get_as("/api/v1/me", token).await.status(), 401);
    let refresh =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": signed_in["refresh_token"]}), None).await;
    assert_eq!(refresh.status(), 401);
    let other_token = other["access_token"].as_str().unwrap();
    assert_eq!(app.get_as("/api/v1/me", other_token).await.status(), 200, "other logins stay signed in");
    assert_eq!(app.post_json("/api/v1/auth/logout", &json!({}), None).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn password_reset_sets_a_new_password_and_signs_out_everywhere() {
    let app = spawn_app().await;
    let signed_in = app.register("grace").await;
    let old_token = signed_in["access_token"].as_str().unwrap();
    for email in ["grace@example.com", "nobody@example.com"] {
        let response = app.post_json("/api/v1/auth/password-reset", &json!({"email": email}), None).await;
        assert_eq!(response.status(), 202, "the same answer for {email}");
    }
    assert_eq!(
        app.post_json("/api/v1/auth/password-reset", &json!({"email": "not an email"}), None).await.status(),
        422
    );
    // The emailed link carries a token only its hash of which is stored; plant a known one.
    let token = "known-reset-token-for-the-test";
    let hash: String = agora::security::hash_secret_token(token).iter().map(|b| format!("{b:02x}")).collect();
    app.db
        .execute(&format!(
            "INSERT INTO password_reset_tokens (token_hash, user_id, expires_at) VALUES ('\\x{hash}', 1, now() + interval '1 hour')"
        ))
        .await;
    let weak = app
        .post_json("/api/v1/auth/password-reset/confirm", &json!({"token": token, "new_password": "short"}), None)
        .await;
    assert_eq!(weak.status(), 422);
    let bad = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": "forged", "new_password": "new-password-1"}),
            None,
        )
        .await;
    assert_eq!(problem_code(bad).await, (400, "invalid_token".into()));

    let confirm = json!({"token": token, "new_password": "new-password-1"});
    assert_eq!(app.post_json("/api/v1/auth/password-reset/confirm", &confirm, None).await.status(), 204);
    assert_eq!(app.get_as("/api/v1/me", old_token).await.status(), 401, "every login is revoked");
    let again = app.post_json("/api/v1/auth/password-reset/confirm", &confirm, None).await;
    assert_eq!(problem_code(again).await, (400, "invalid_token".into()), "a reset link works once");
    let old = app.post_json("/api/v1/auth/login", &json!({"login": "grace", "password": "password123"}), None).await;
    assert_eq!(old.status(), 401);
    let new = app.post_json("/api/v1/auth/login", &json!({"login": "grace", "password": "new-password-1"}), None).await;
    assert_eq!(new.status(), 200);
    let actions = audit_actions(&app).await;
    assert!(
        actions.contains(&"auth.password_reset_requested".to_owned())
            && actions.contains(&"auth.password_reset".to_owned())
    );
    app.stop().await;
}

#[tokio::test]
async fn the_profile_can_be_edited_within_its_rules() {
    let app = spawn_app().await;
    let signed_in = app.register("heidi").await;
    let token = signed_in["access_token"].as_str().unwrap();
    let patch = |body: Value| app.client.patch(format!("{}/api/v1/me", app.base)).bearer_auth(token).json(&body).send();
    let response =
        patch(json!({"bio": "I like Rust 🦀 and עברית", "notification_settings": {"email_on_reply": false}}))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["bio"], "I like Rust 🦀 and עברית");
    assert_eq!(
        me["notification_settings"],
        json!({"email_on_reply": false, "email_on_mention": true, "email_on_message": true})
    );
    assert_eq!(patch(json!({"bio": "x".repeat(10_001)})).await.unwrap().status(), 422);
    assert_eq!(patch(json!({"notification_settings": {"email_on_everything": true}})).await.unwrap().status(), 422);
    assert_eq!(patch(json!({"karma": 1_000_000})).await.unwrap().status(), 422, "unknown fields are refused");
    let me: Value = app.get_as("/api/v1/me", token).await.json().await.unwrap();
    assert_eq!(me["bio"], "I like Rust 🦀 and עברית", "refused requests changed nothing");
    assert_eq!(me["karma"], 0);
    app.stop().await;
}
