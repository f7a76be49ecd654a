//! `Idempotency-Key`: a repeat replays the first answer without doing the work twice.

use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

async fn post_with_key(app: &TestApp, path: &str, body: &Value, token: &str, key: &str) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_count(app: &TestApp) -> i64 {
    let mut conn = app.db.connect().await;
    diesel_async::RunQueryDsl::get_result(diesel::QueryDsl::count(agora::db::schema::posts::table), &mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_key_replays_the_first_response_without_doing_the_work_twice() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    app.post_json("/api/v1/communities", &json!({"name": "general", "title": "General"}), Some(&token)).await;
    let body = json!({"title": "Only once"});
    let first = post_with_key(&app, "/api/v1/communities/general/posts", &body, &token, "key-1").await;
    assert_eq!(first.status(), 201);
    let first_body: Value = first.json().await.unwrap();
    let again = post_with_key(&app, "/api/v1/communities/general/posts", &body, &token, "key-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first_body, "the same body, byte for byte");
    assert_eq!(post_count(&app).await, 1);

    let different =
        post_with_key(&app, "/api/v1/communities/general/posts", &json!({"title": "Other"}), &token, "key-1").await;
    assert_eq!(problem_code(different).await, (422, "idempotency_key_reused".into()));
    let other_user = app.token_for("bob").await;
    let theirs = post_with_key(&app, "/api/v1/communities/general/posts", &body, &other_user, "key-1").await;
    assert_eq!(theirs.status(), 201, "keys belong to one user");
    assert_eq!(post_count(&app).await, 2);
    let long_key = post_with_key(&app, "/api/v1/communities/general/posts", &body, &token, &"k".repeat(256)).await;
    assert_eq!(long_key.status(), 422);
    assert!(app.scrape().await.contains("agora_idempotent_replays_total 1"));
    app.stop().await;
}

#[tokio::test]
async fn ten_concurrent_requests_with_one_key_create_one_post() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    app.post_json("/api/v1/communities", &json!({"name": "general", "title": "General"}), Some(&token)).await;
    let body = json!({"title": "Racing"});
    let attempts = (0..10).map(|_| post_with_key(&app, "/api/v1/communities/general/posts", &body, &token, "race"));
    let responses = futures_util::future::join_all(attempts).await;
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 201);
        bodies.push(response.json::<Value>().await.unwrap());
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "every caller sees the one post");
    assert_eq!(post_count(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn refused_requests_are_replayed_too() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    let invalid = json!({"title": ""});
    let first = post_with_key(&app, "/api/v1/communities/nowhere/posts", &invalid, &token, "k").await;
    assert_eq!(first.status(), 422);
    let again = post_with_key(&app, "/api/v1/communities/nowhere/posts", &invalid, &token, "k").await;
    assert_eq!(again.status(), 422);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    app.stop().await;
}

#[tokio::test]
async fn a_replayed_refusal_keeps_its_code_and_carries_the_repeat_s_own_request_id() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    let invalid = json!({"title": ""});
    let first = post_with_key(&app, "/api/v1/communities/nowhere/posts", &invalid, &token, "r").await;
    let first: Value = first.json().await.unwrap();
    let again = post_with_key(&app, "/api/v1/communities/nowhere/posts", &invalid, &token, "r").await;
    assert_eq!(again.headers()["content-type"], "application/problem+json");
    let request_id = again.headers()["x-request-id"].to_str().unwrap().to_owned();
    let again: Value = again.json().await.unwrap();
    assert_eq!((&again["code"], &again["errors"]), (&first["code"], &first["errors"]));
    assert_eq!(again["request_id"], request_id.as_str());
    assert_ne!(again["request_id"], first["request_id"], "each answer names its own request");
    app.stop().await;
}
