//! Moderation: remove/restore, lock, pin, reports citing rules, the queue, the modlog.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

struct Scene {
    moderator: String,
    member: String,
    outsider: String,
    post_id: i64,
    comment_id: i64,
}

async fn scene(app: &TestApp) -> Scene {
    let moderator = app.token_for("mod_alice").await;
    let member = app.token_for("member_bob").await;
    let outsider = app.token_for("outsider_eve").await;
    let rules = json!(["Be civil", "No spam"]);
    app.post_json("/api/v1/communities", &json!({"name": "forum", "title": "Forum", "rules": rules}), Some(&moderator))
        .await;
    let post: Value = app
        .post_json(
            "/api/v1/communities/forum/posts",
            &json!({"title": "Buy cheap pills", "body": "spam"}),
            Some(&member),
        )
        .await
        .json()
        .await
        .unwrap();
    let post_id = post["id"].as_i64().unwrap();
    let comment: Value = app
        .post_json(&format!("/api/v1/posts/{post_id}/comments"), &json!({"body": "rude words"}), Some(&member))
        .await
        .json()
        .await
        .unwrap();
    Scene { moderator, member, outsider, post_id, comment_id: comment["id"].as_i64().unwrap() }
}

#[tokio::test]
async fn moderators_remove_and_restore_and_others_cannot() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let remove = format!("/api/v1/mod/posts/{}/remove", s.post_id);
    let refused = app.send_as(Method::POST, &remove, Some(json!({"rule_index": 1})), &s.outsider).await;
    assert_eq!(problem_code(refused).await, (403, "forbidden".into()));
    let removed: Value =
        app.send_as(Method::POST, &remove, Some(json!({"rule_index": 1})), &s.moderator).await.json().await.unwrap();
    assert_eq!((removed["removed"].as_bool(), removed["body"].as_str()), (Some(true), Some("")));
    let listed: Value = app.get("/api/v1/posts?community=forum").await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]), "removed posts leave listings");
    let restored: Value = app
        .send_as(Method::POST, &format!("/api/v1/mod/posts/{}/restore", s.post_id), Some(json!({})), &s.moderator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((restored["removed"].as_bool(), restored["body"].as_str()), (Some(false), Some("spam")));
    let bad_rule = app.send_as(Method::POST, &remove, Some(json!({"rule_index": 7})), &s.moderator).await;
    assert_eq!(problem_code(bad_rule).await, (422, "validation_failed".into()));
    let unknown = app
        .send_as(Method::POST, &format!("/api/v1/mod/posts/{}/explode", s.post_id), Some(json!({})), &s.moderator)
        .await;
    assert_eq!(unknown.status(), 404);

    // A removed comment disappears for everyone else.
    let path = format!("/api/v1/mod/comments/{}/remove", s.comment_id);
    let comment: Value =
        app.send_as(Method::POST, &path, Some(json!({"reason": "insults"})), &s.moderator).await.json().await.unwrap();
    assert_eq!(comment["removed"], true);
    let tree: Value =
        app.get_as(&format!("/api/v1/posts/{}/comments", s.post_id), &s.outsider).await.json().await.unwrap();
    assert_eq!((tree["items"][0]["removed"].as_bool(), tree["items"][0]["body"].as_str()), (Some(true), Some("")));
    let vote = app
        .send_as(
            Method::PUT,
            &format!("/api/v1/comments/{}/vote", s.comment_id),
            Some(json!({"value": 1})),
            &s.outsider,
        )
        .await;
    assert_eq!(vote.status(), 403);
    let restored: Value = app
        .send_as(Method::POST, &format!("/api/v1/mod/comments/{}/restore", s.comment_id), Some(json!({})), &s.moderator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((restored["removed"].as_bool(), restored["body"].as_str()), (Some(false), Some("rude words")));
    let pin = format!("/api/v1/mod/posts/{}/pin", s.post_id);
    let pinned: Value = app.send_as(Method::POST, &pin, Some(json!({})), &s.moderator).await.json().await.unwrap();
    assert_eq!(pinned["pinned"], true);
    let unpin = format!("/api/v1/mod/posts/{}/unpin", s.post_id);
    let unpinned: Value = app.send_as(Method::POST, &unpin, Some(json!({})), &s.moderator).await.json().await.unwrap();
    assert_eq!(unpinned["pinned"], false);
    assert_eq!(app.send_as(Method::POST, &unpin, Some(json!({})), &s.outsider).await.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn locking_stops_replies_and_is_undone_by_unlocking() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let comments = format!("/api/v1/posts/{}/comments", s.post_id);
    let locked: Value = app
        .send_as(
            Method::POST,
            &format!("/api/v1/mod/posts/{}/lock", s.post_id),
            Some(json!({"reason": "heated"})),
            &s.moderator,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(locked["locked"], true);
    assert_eq!(
        problem_code(app.post_json(&comments, &json!({"body": "hi"}), Some(&s.member)).await).await,
        (403, "locked".into())
    );
    app.send_as(Method::POST, &format!("/api/v1/mod/posts/{}/unlock", s.post_id), Some(json!({})), &s.moderator).await;
    assert_eq!(app.post_json(&comments, &json!({"body": "hi"}), Some(&s.member)).await.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn reports_cite_rules_and_reach_the_moderators_queue() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let report_post = format!("/api/v1/posts/{}/report", s.post_id);
    let report = app.post_json(&report_post, &json!({"rule_index": 1}), Some(&s.outsider)).await;
    assert_eq!(report.status(), 201);
    let free_text = app
        .post_json(&format!("/api/v1/comments/{}/report", s.comment_id), &json!({"reason": "mean"}), Some(&s.outsider))
        .await;
    assert_eq!(free_text.status(), 201);
    assert_eq!(app.post_json(&report_post, &json!({}), Some(&s.outsider)).await.status(), 422, "a rule or a reason");
    assert_eq!(app.post_json(&report_post, &json!({"rule_index": 9}), Some(&s.outsider)).await.status(), 422);
    assert_eq!(app.post_json(&report_post, &json!({"reason": "x"}), None).await.status(), 401);
    assert_eq!(
        app.post_json("/api/v1/posts/999999/report", &json!({"reason": "x"}), Some(&s.outsider)).await.status(),
        404
    );

    let queue: Value = app.get_as("/api/v1/mod/reports?community=forum", &s.moderator).await.json().await.unwrap();
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[1]["rule"].as_str(), items[1]["reporter"].as_str()), (Some("No spam"), Some("outsider_eve")));
    assert_eq!(items[0]["reason"], "mean");
    assert_eq!(app.get_as("/api/v1/mod/reports", &s.outsider).await.status(), 403);
    let resolve = format!("/api/v1/mod/reports/{}/resolve", items[0]["id"]);
    assert_eq!(app.send_as(Method::POST, &resolve, None, &s.outsider).await.status(), 403);
    assert_eq!(app.send_as(Method::POST, &resolve, None, &s.moderator).await.status(), 204);
    assert_eq!(app.send_as(Method::POST, &resolve, None, &s.moderator).await.status(), 404);
    let queue: Value = app.get_as("/api/v1/mod/reports", &s.moderator).await.json().await.unwrap();
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_modlog_shows_every_action_with_its_rule_to_moderators_only() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    app.send_as(
        Method::POST,
        &format!("/api/v1/mod/posts/{}/remove", s.post_id),
        Some(json!({"rule_index": 1, "reason": "ads"})),
        &s.moderator,
    )
    .await;
    app.send_as(Method::POST, &format!("/api/v1/mod/posts/{}/pin", s.post_id), Some(json!({})), &s.moderator).await;
    app.post_json(
        "/api/v1/communities/forum/bans",
        &json!({"username": "member_bob", "reason": "spammer"}),
        Some(&s.moderator),
    )
    .await;
    let log: Value = app.get_as("/api/v1/modlog?community=forum", &s.moderator).await.json().await.unwrap();
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["community.ban", "post.pin", "post.remove"]);
    let removal = &log["items"][2];
    assert_eq!((removal["rule"].as_str(), removal["reason"].as_str()), (Some("No spam"), Some("ads")));
    assert_eq!((removal["actor"].as_str(), removal["target_user"].as_str()), (Some("mod_alice"), Some("member_bob")));
    let page: Value = app.get_as("/api/v1/modlog?community=forum&limit=2", &s.moderator).await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get_as(&format!("/api/v1/modlog?community=forum&limit=2&cursor={cursor}"), &s.moderator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["action"], "post.remove");
    assert_eq!(
        problem_code(app.get_as("/api/v1/modlog?community=forum", &s.outsider).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(app.get_as("/api/v1/modlog", &s.outsider).await.status(), 403);
    assert_eq!(app.get("/api/v1/modlog").await.status(), 401);
    let all_mine: Value = app.get_as("/api/v1/modlog", &s.moderator).await.json().await.unwrap();
    assert_eq!(all_mine["items"].as_array().unwrap().len(), 3, "a moderator sees their communities, not auth events");
    app.stop().await;
}
