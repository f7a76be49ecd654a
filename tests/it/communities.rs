//! Communities: create, list, read, edit, membership, moderators, bans.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::spawn_app;

#[tokio::test]
async fn a_creator_becomes_moderator_and_member() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    let body = json!({"name": "rust_lang", "title": "Rust", "description": "All things *Rust*", "rules": ["Be kind", "No spam"]});
    let response = app.post_json("/api/v1/communities", &body, Some(&token)).await;
    assert_eq!(response.status(), 201);
    let community: Value = response.json().await.unwrap();
    assert_eq!(community["name"], "rust_lang");
    assert_eq!(community["rules"], json!(["Be kind", "No spam"]));
    assert_eq!(community["moderators"], json!(["alice"]));
    assert_eq!(community["member_count"], 1);
    assert_eq!(community["post_count"], 0);
    assert_eq!(community["is_member"], true);
    let anonymous: Value = app.get("/api/v1/communities/RUST_LANG").await.json().await.unwrap();
    assert_eq!(anonymous["is_member"], false, "anonymous readers are never members");
    let again =
        app.post_json("/api/v1/communities", &json!({"name": "rust_lang", "title": "Again"}), Some(&token)).await;
    assert_eq!(problem_code(again).await, (409, "community_exists".into()));
    let anonymous_create = app.post_json("/api/v1/communities", &json!({"name": "other", "title": "x"}), None).await;
    assert_eq!(problem_code(anonymous_create).await, (401, "unauthorized".into()));
    assert_eq!(problem_code(app.get("/api/v1/communities/nope").await).await, (404, "not_found".into()));
    app.stop().await;
}

#[tokio::test]
async fn invalid_communities_are_refused_field_by_field() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    for body in [
        json!({"name": "No Caps", "title": "x"}),
        json!({"name": "ok_name", "title": ""}),
        json!({"name": "ok_name", "title": "x", "rules": ["x".repeat(501)]}),
        json!({"name": "ok_name", "title": "x", "rules": vec!["r"; 21]}),
        json!({"name": "ok_name", "title": "x", "description": "d".repeat(10_001)}),
        json!({"name": "' OR 1=1 --", "title": "x"}),
    ] {
        let response = app.post_json("/api/v1/communities", &body, Some(&token)).await;
        assert_eq!(problem_code(response).await, (422, "validation_failed".into()), "{body:.80}");
    }
    app.stop().await;
}

#[tokio::test]
async fn listings_page_by_cursor_without_gaps_while_rows_arrive() {
    let app = spawn_app().await;
    let token = app.token_for("alice").await;
    for i in 0..5 {
        let body = json!({"name": format!("group_{i}"), "title": format!("Group {i}")});
        assert_eq!(app.post_json("/api/v1/communities", &body, Some(&token)).await.status(), 201);
    }
    let first: Value = app.get("/api/v1/communities?sort=new&limit=2").await.json().await.unwrap();
    let names = |page: &Value| {
        page["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["group_4", "group_3"]);
    // A new community arrives between pages: the cursor still continues where it was.
    app.post_json("/api/v1/communities", &json!({"name": "late_comer", "title": "Late"}), Some(&token)).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value =
        app.get(&format!("/api/v1/communities?sort=new&limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(names(&second), ["group_2", "group_1"]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let last: Value =
        app.get(&format!("/api/v1/communities?sort=new&limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(names(&last), ["group_0"]);
    assert_eq!(last["next_cursor"], Value::Null);
    let popular: Value = app.get("/api/v1/communities?sort=popular&limit=100").await.json().await.unwrap();
    assert_eq!(popular["items"].as_array().unwrap().len(), 6);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=99999999999999999999",
        "sort=best",
        "cursor=forged",
        "cursor=eyJ4Ijox",
    ] {
        let (status, code) = problem_code(app.get(&format!("/api/v1/communities?{bad}")).await).await;
        assert_eq!((status, code.as_str()), (422, "validation_failed"), "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn membership_is_idempotent_and_counted_exactly() {
    let app = spawn_app().await;
    let owner = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "cooking", "title": "Cooking"}), Some(&owner)).await;
    for _ in 0..3 {
        assert_eq!(app.send_as(Method::PUT, "/api/v1/communities/cooking/membership", None, &bob).await.status(), 204);
    }
    let community: Value = app.get_as("/api/v1/communities/cooking", &bob).await.json().await.unwrap();
    assert_eq!((community["member_count"].as_i64(), community["is_member"].as_bool()), (Some(2), Some(true)));
    for _ in 0..2 {
        assert_eq!(
            app.send_as(Method::DELETE, "/api/v1/communities/cooking/membership", None, &bob).await.status(),
            204
        );
    }
    let community: Value = app.get_as("/api/v1/communities/cooking", &bob).await.json().await.unwrap();
    assert_eq!((community["member_count"].as_i64(), community["is_member"].as_bool()), (Some(1), Some(false)));
    let anonymous = app.client.put(format!("{}/api/v1/communities/cooking/membership", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn only_moderators_edit_appoint_and_ban() {
    let app = spawn_app().await;
    let owner = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    app.token_for("carol").await;
    app.post_json("/api/v1/communities", &json!({"name": "gardening", "title": "Gardening"}), Some(&owner)).await;

    let edit = json!({"title": "Gardens", "rules": ["No pesticides talk"]});
    let refused = app.send_as(Method::PATCH, "/api/v1/communities/gardening", Some(edit.clone()), &bob).await;
    assert_eq!(problem_code(refused).await, (403, "forbidden".into()));
    let edited: Value = app
        .send_as(Method::PATCH, "/api/v1/communities/gardening", Some(edit.clone()), &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((edited["title"].as_str(), edited["rules"][0].as_str()), (Some("Gardens"), Some("No pesticides talk")));

    let appoint = app.send_as(Method::PUT, "/api/v1/communities/gardening/moderators/carol", None, &bob).await;
    assert_eq!(appoint.status(), 403);
    assert_eq!(
        app.send_as(Method::PUT, "/api/v1/communities/gardening/moderators/carol", None, &owner).await.status(),
        204
    );
    assert_eq!(
        app.send_as(Method::PUT, "/api/v1/communities/gardening/moderators/nobody", None, &owner).await.status(),
        404
    );
    let community: Value = app.get("/api/v1/communities/gardening").await.json().await.unwrap();
    assert_eq!(community["moderators"], json!(["alice", "carol"]));
    assert_eq!(
        app.send_as(Method::DELETE, "/api/v1/communities/gardening/moderators/carol", None, &owner).await.status(),
        204
    );
    assert_eq!(
        app.send_as(Method::DELETE, "/api/v1/communities/gardening/moderators/carol", None, &owner).await.status(),
        404
    );

    let ban = json!({"username": "bob", "reason": "spam"});
    assert_eq!(app.post_json("/api/v1/communities/gardening/bans", &ban, Some(&bob)).await.status(), 403);
    assert_eq!(app.post_json("/api/v1/communities/gardening/bans", &ban, Some(&owner)).await.status(), 204);
    let join = app.send_as(Method::PUT, "/api/v1/communities/gardening/membership", None, &bob).await;
    assert_eq!(problem_code(join).await, (403, "banned".into()));
    let post = app.post_json("/api/v1/communities/gardening/posts", &json!({"title": "hi"}), Some(&bob)).await;
    assert_eq!(problem_code(post).await, (403, "banned".into()));
    let owners_post: Value = app
        .post_json("/api/v1/communities/gardening/posts", &json!({"title": "rules"}), Some(&owner))
        .await
        .json()
        .await
        .unwrap();
    let comment_path = format!("/api/v1/posts/{}/comments", owners_post["id"]);
    let comment = app.post_json(&comment_path, &json!({"body": "hi"}), Some(&bob)).await;
    assert_eq!(problem_code(comment).await, (403, "banned".into()));
    let vote_path = format!("/api/v1/posts/{}/vote", owners_post["id"]);
    let vote = app.send_as(Method::PUT, &vote_path, Some(json!({"value": 1})), &bob).await;
    assert_eq!(problem_code(vote).await, (403, "banned".into()));
    let past = json!({"username": "carol", "reason": "x", "expires_at": "2020-01-01T00:00:00Z"});
    assert_eq!(app.post_json("/api/v1/communities/gardening/bans", &past, Some(&owner)).await.status(), 422);
    let unknown = json!({"username": "nobody", "reason": "x"});
    assert_eq!(app.post_json("/api/v1/communities/gardening/bans", &unknown, Some(&owner)).await.status(), 404);
    app.stop().await;
}
