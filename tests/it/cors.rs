//! CORS for the API and the request-head limit: the edge rules that run before routing.

use crate::harness::spawn_app_with;

const ALLOWED: &str = "https://app.example";

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_granted_and_the_answer_is_readable() {
    let app = spawn_app_with(|config| config.server.cors_allowed_origins = vec![ALLOWED.into()]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/communities", app.base))
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED);
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(!headers.contains_key("access-control-allow-credentials"), "bearer tokens only, no cookies");
    assert_eq!(headers["x-frame-options"], "DENY", "preflight answers carry the security headers too");

    let token = app.token_for("alice").await;
    let actual = app
        .client
        .post(format!("{}/api/v1/communities", app.base))
        .header("origin", ALLOWED)
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "rustaceans", "title": "Rust"}))
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 201);
    assert_eq!(actual.headers()["access-control-allow-origin"], ALLOWED);
    let exposed = actual.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("x-request-id") && exposed.contains("retry-after"), "{exposed}");
    assert!(actual.headers()["vary"].to_str().unwrap().contains("origin"));
    app.stop().await;
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_refused_and_changes_nothing() {
    let app = spawn_app_with(|config| config.server.cors_allowed_origins = vec![ALLOWED.into()]).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/communities", app.base))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert_eq!(preflight.headers()["content-type"], "application/problem+json");
    assert!(!preflight.headers().contains_key("access-control-allow-origin"));
    let problem: serde_json::Value = preflight.json().await.unwrap();
    assert_eq!(problem["code"], "origin_not_allowed");

    // A simple request from that origin is served (CORS guards reading, not sending) but the
    // browser gets no grant to read the answer.
    let simple = app.client.get(format!("{}/api/v1/posts", app.base)).header("origin", "https://evil.example");
    let simple = simple.send().await.unwrap();
    assert_eq!(simple.status(), 200);
    assert!(!simple.headers().contains_key("access-control-allow-origin"));
    assert!(simple.headers()["vary"].to_str().unwrap().contains("origin"));
    app.stop().await;
}

#[tokio::test]
async fn with_no_allow_list_every_preflight_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/posts", app.base))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 403);
    assert!(!preflight.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431_problem_json() {
    let app = spawn_app_with(|config| config.server.max_header_bytes = 4096).await;
    let small = app.client.get(format!("{}/api/v1/posts", app.base)).header("x-padding", "a".repeat(1000));
    assert_eq!(small.send().await.unwrap().status(), 200);

    let big = app.client.get(format!("{}/api/v1/posts", app.base)).header("x-padding", "a".repeat(5000));
    let response = big.send().await.unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "headers_too_large");
    assert!(problem["request_id"].is_string());

    // Many small headers add up the same way.
    let mut many = app.client.post(format!("{}/api/v1/auth/login", app.base));
    for i in 0..80 {
        many = many.header(format!("x-h{i}"), "b".repeat(60));
    }
    let response = many.json(&serde_json::json!({"username": "x", "password": "y"})).send().await.unwrap();
    assert_eq!(response.status(), 431);
    app.stop().await;
}
