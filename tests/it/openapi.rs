//! The OpenAPI document describes every endpoint of the contract, with error bodies.

use serde_json::Value;

use crate::harness::spawn_app;

/// Every route of the API contract, as `METHOD path`.
const CONTRACT: &[&str] = &[
    "post /api/v1/auth/register",
    "post /api/v1/auth/login",
    "post /api/v1/auth/refresh",
    "post /api/v1/auth/logout",
    "post /api/v1/auth/password-reset",
    "post /api/v1/auth/password-reset/confirm",
    "get /api/v1/me",
    "patch /api/v1/me",
    "get /api/v1/users/{username}",
    "post /api/v1/communities",
    "get /api/v1/communities",
    "get /api/v1/communities/{name}",
    "patch /api/v1/communities/{name}",
    "put /api/v1/communities/{name}/membership",
    "delete /api/v1/communities/{name}/membership",
    "put /api/v1/communities/{name}/moderators/{username}",
    "delete /api/v1/communities/{name}/moderators/{username}",
    "post /api/v1/communities/{name}/bans",
    "post /api/v1/communities/{name}/posts",
    "get /api/v1/posts",
    "get /api/v1/posts/{id}",
    "patch /api/v1/posts/{id}",
    "delete /api/v1/posts/{id}",
    "put /api/v1/posts/{id}/vote",
    "get /api/v1/search",
    "post /api/v1/posts/{id}/comments",
    "get /api/v1/posts/{id}/comments",
    "get /api/v1/comments/{id}",
    "patch /api/v1/comments/{id}",
    "delete /api/v1/comments/{id}",
    "put /api/v1/comments/{id}/vote",
    "get /api/v1/modlog",
    "get /health/live",
    "get /health/ready",
    "get /metrics",
];

#[tokio::test]
async fn the_openapi_document_covers_the_whole_contract() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for route in CONTRACT {
        let (method, path) = route.split_once(' ').unwrap();
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{route} is missing from the OpenAPI document");
        let responses = operation["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{route} documents no responses");
        if path.starts_with("/api/v1/") {
            assert!(responses.contains_key("429"), "{route} is rate limited: document 429");
        }
        for (status, response) in responses {
            if status.starts_with('4') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{route} {status} must be documented as problem+json"
                );
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for schema in ["Problem", "Post", "Comment", "Community", "User", "OwnUser", "SignedIn"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} is missing");
    }
    // Post is PostView (by reference) plus the image.
    let text = format!("{}{}", doc["components"]["schemas"]["Post"], doc["components"]["schemas"]["PostView"]);
    for field in ["my_vote", "comment_count", "body_html", "pinned", "image"] {
        assert!(text.contains(field), "Post lacks {field}: {text}");
    }
    for internal in ["hot_rank", "details_json", "password_hash"] {
        assert!(!doc.to_string().contains(internal), "{internal} leaks into the document");
    }
    app.stop().await;
}
