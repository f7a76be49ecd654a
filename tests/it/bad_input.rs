//! Bad input gets a 4xx problem+json, never a 500.

use crate::harness::{TestApp, spawn_app};

async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code);
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(), "{body}");
    assert_eq!(body["request_id"], request_id.as_str());
    body
}

async fn seed_post(app: &TestApp) {
    app.db
        .execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('alice', 'alice@example.com', 'x');
             INSERT INTO communities (name, title, creator_id) VALUES ('rust', 'Rust', 1);
             INSERT INTO posts (community_id, author_id, title, body, body_html)
                  VALUES (1, 1, 'Hello', 'Some *text*', '<p>Some <em>text</em></p>');",
        )
        .await;
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    // Outside the API, a missing page is an HTML page for people (see `pages`).
    assert_problem(app.get("/api/v1/nothing-here").await, 404, "not_found").await;
    assert_problem(app.get("/api/v2/anything").await, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let response = app.client.delete(format!("{}/health/live", app.base)).send().await.unwrap();
    assert_problem(response, 405, "method_not_allowed").await;
    let response = app.client.post(format!("{}/api/v1/posts/1", app.base)).send().await.unwrap();
    assert_problem(response, 405, "method_not_allowed").await;
    app.stop().await;
}

#[tokio::test]
async fn non_numeric_and_out_of_range_ids_are_400_problems() {
    let app = spawn_app().await;
    for path in ["/api/v1/posts/abc", "/api/v1/posts/1.5", "/api/v1/posts/99999999999999999999999"] {
        assert_problem(app.get(path).await, 400, "bad_request").await;
    }
    for path in ["/api/v1/posts/0", "/api/v1/posts/-7", "/api/v1/posts/9223372036854775807"] {
        assert_problem(app.get(path).await, 404, "not_found").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_post_reads_back_with_its_community_and_author() {
    let app = spawn_app().await;
    seed_post(&app).await;
    let response = app.get("/api/v1/posts/1").await;
    assert_eq!(response.status(), 200);
    let post: serde_json::Value = response.json().await.unwrap();
    assert_eq!(post["id"], 1);
    assert_eq!(post["community"], "rust");
    assert_eq!(post["author"], "alice");
    assert_eq!(post["title"], "Hello");
    assert_eq!(post["body_html"], "<p>Some <em>text</em></p>");
    assert_eq!(post["my_vote"], 0);
    assert_eq!(post["edited_at"], serde_json::Value::Null);
    assert!(post["created_at"].as_str().unwrap().ends_with('Z'));
    app.stop().await;
}

#[tokio::test]
async fn user_profiles_are_found_ignoring_case() {
    let app = spawn_app().await;
    seed_post(&app).await;
    let user: serde_json::Value = app.get("/api/v1/users/ALICE").await.json().await.unwrap();
    assert_eq!(user["username"], "alice");
    assert_eq!(user["karma"], 0);
    assert!(user.get("email").is_none(), "email is private");
    assert_problem(app.get("/api/v1/users/bob").await, 404, "not_found").await;
    assert_problem(app.get("/api/v1/users/%3Cscript%3E").await, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body("{\"login\": \"a\", ")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "bad_request").await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "text/plain")
        .body("{\"login\": \"a\", \"password\": \"b\"}")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;
    app.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_413_problems() {
    let app = spawn_app().await;
    let huge = serde_json::json!({"login": "x".repeat(10 * 1024 * 1024), "password": "y"});
    let response = app.client.post(format!("{}/api/v1/auth/login", app.base)).json(&huge).send().await.unwrap();
    assert_problem(response, 413, "payload_too_large").await;
    app.stop().await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_problems() {
    let app = spawn_app().await;
    for body in [
        serde_json::json!({"login": 5, "password": "x"}),
        serde_json::json!({"login": "a"}),
        serde_json::json!({"login": "a", "password": "b", "admin": true}),
    ] {
        let response = app.client.post(format!("{}/api/v1/auth/login", app.base)).json(&body).send().await.unwrap();
        assert_problem(response, 422, "validation_failed").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn invalid_utf8_bodies_are_400_problems() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body(b"{\"login\": \"\xff\xfe\", \"password\": \"x\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "bad_request").await;
    app.stop().await;
}

#[tokio::test]
async fn sql_metacharacters_and_any_script_are_stored_and_returned_intact() {
    let app = spawn_app().await;
    let tricky = "'; DROP TABLE posts; -- \" \\ % _ ' OR 1=1 -- 🦀 עברית مرحبا \u{202e}txet";
    let token = app.token_for("alice").await;
    let community = serde_json::json!({"name": "tricky", "title": tricky, "description": tricky, "rules": [tricky]});
    let created: serde_json::Value =
        app.post_json("/api/v1/communities", &community, Some(&token)).await.json().await.unwrap();
    assert_eq!((created["title"].as_str(), created["description"].as_str()), (Some(tricky), Some(tricky)));
    assert_eq!(created["rules"][0], tricky);
    let post: serde_json::Value = app
        .post_json(
            "/api/v1/communities/tricky/posts",
            &serde_json::json!({"title": tricky, "body": tricky}),
            Some(&token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((post["title"].as_str(), post["body"].as_str()), (Some(tricky), Some(tricky)));
    let comment: serde_json::Value = app
        .post_json(
            &format!("/api/v1/posts/{}/comments", post["id"]),
            &serde_json::json!({"body": tricky}),
            Some(&token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(comment["body"], tricky);
    let encoded: String = tricky.bytes().map(|b| format!("%{b:02X}")).collect();
    for path in [
        format!("/api/v1/search?q={encoded}"),
        format!("/api/v1/posts?community={encoded}"),
        format!("/api/v1/communities/{encoded}"),
        format!("/api/v1/users/{encoded}"),
        format!("/api/v1/posts?cursor={encoded}"),
    ] {
        let status = app.get(&path).await.status().as_u16();
        assert!(matches!(status, 200 | 404 | 422), "{path}: {status}");
    }
    let listed: serde_json::Value = app.get("/api/v1/posts?sort=new").await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "nothing was dropped or duplicated");
    app.stop().await;
}
