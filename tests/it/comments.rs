//! Comments: replies, trees in a constant number of queries, sorts, depth limits, "continue
//! this thread", edit, delete, votes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

struct Thread {
    token: String,
    post_id: i64,
}

async fn thread(app: &TestApp) -> Thread {
    let token = app.token_for("author").await;
    app.post_json("/api/v1/communities", &json!({"name": "talk", "title": "Talk"}), Some(&token)).await;
    let post: Value = app
        .post_json("/api/v1/communities/talk/posts", &json!({"title": "Discuss"}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    Thread { token, post_id: post["id"].as_i64().unwrap() }
}

async fn reply(app: &TestApp, t: &Thread, body: &str, parent: Option<i64>) -> Value {
    let response = app
        .post_json(
            &format!("/api/v1/posts/{}/comments", t.post_id),
            &json!({"body": body, "parent_id": parent}),
            Some(&t.token),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.unwrap()
}

fn bodies(comments: &Value) -> Vec<String> {
    comments.as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn replies_nest_and_the_tree_comes_back_sorted_with_exact_counts() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    let a = reply(&app, &t, "a", None).await;
    assert_eq!((a["depth"].as_i64(), a["parent_id"].clone()), (Some(0), Value::Null));
    let b = reply(&app, &t, "b", None).await;
    let a1 = reply(&app, &t, "a1", Some(a["id"].as_i64().unwrap())).await;
    assert_eq!(a1["depth"], 1);
    let a1x = reply(&app, &t, "a1x", Some(a1["id"].as_i64().unwrap())).await;
    reply(&app, &t, "a1x_deep", Some(a1x["id"].as_i64().unwrap())).await;
    reply(&app, &t, "a2", Some(a["id"].as_i64().unwrap())).await;

    let post: Value = app.get(&format!("/api/v1/posts/{}", t.post_id)).await.json().await.unwrap();
    assert_eq!(post["comment_count"], 6, "comment_count stays exact");

    let tree: Value = app.get(&format!("/api/v1/posts/{}/comments?sort=old", t.post_id)).await.json().await.unwrap();
    assert_eq!(bodies(&tree["items"]), ["a", "b"]);
    assert_eq!(bodies(&tree["items"][0]["children"]), ["a1", "a2"]);
    assert_eq!(bodies(&tree["items"][0]["children"][0]["children"][0]["children"]), ["a1x_deep"]);
    let new: Value = app.get(&format!("/api/v1/posts/{}/comments?sort=new", t.post_id)).await.json().await.unwrap();
    assert_eq!(bodies(&new["items"]), ["b", "a"]);
    assert_eq!(bodies(&new["items"][1]["children"]), ["a2", "a1"], "the sort applies at every level");

    // Cut at one level below the listed comments: what is left out is counted.
    let shallow: Value =
        app.get(&format!("/api/v1/posts/{}/comments?sort=old&max_depth=1", t.post_id)).await.json().await.unwrap();
    let a1_node = &shallow["items"][0]["children"][0];
    assert_eq!((a1_node["children"].as_array().unwrap().len(), a1_node["more_children"].as_i64()), (0, Some(1)));
    let flat: Value = app.get(&format!("/api/v1/posts/{}/comments?max_depth=0", t.post_id)).await.json().await.unwrap();
    assert_eq!(flat["items"][0]["children"], json!([]));
    assert!(flat["items"].as_array().unwrap().iter().any(|c| c["more_children"] == 2));

    // "Continue this thread" opens the subtree below one comment.
    let sub: Value = app.get(&format!("/api/v1/comments/{}?max_depth=1", a1["id"])).await.json().await.unwrap();
    assert_eq!(sub["body"], "a1");
    assert_eq!(bodies(&sub["children"]), ["a1x"]);
    assert_eq!(sub["children"][0]["more_children"], 1);
    let b_alone: Value = app.get(&format!("/api/v1/comments/{}", b["id"])).await.json().await.unwrap();
    assert_eq!((b_alone["children"].clone(), b_alone["more_children"].as_i64()), (json!([]), Some(0)));
    app.stop().await;
}

#[tokio::test]
async fn top_level_comments_page_by_cursor() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    for i in 0..7 {
        reply(&app, &t, &format!("c{i}"), None).await;
    }
    let mut seen = Vec::new();
    let mut url = format!("/api/v1/posts/{}/comments?sort=old&limit=3", t.post_id);
    loop {
        let page: Value = app.get(&url).await.json().await.unwrap();
        seen.extend(bodies(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/api/v1/posts/{}/comments?sort=old&limit=3&cursor={cursor}", t.post_id),
            None => break,
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
    for bad in ["limit=0", "limit=501", "max_depth=51", "max_depth=-1", "sort=hot", "cursor=zzz"] {
        let response = app.get(&format!("/api/v1/posts/{}/comments?{bad}", t.post_id)).await;
        assert_eq!(problem_code(response).await, (422, "validation_failed".into()), "{bad}");
    }
    assert_eq!(app.get("/api/v1/posts/999999/comments").await.status(), 404);
    assert_eq!(app.get("/api/v1/comments/999999").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn replies_deeper_than_the_cap_are_refused() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    let mut parent = reply(&app, &t, "level 0", None).await["id"].as_i64().unwrap();
    for level in 1..=50 {
        parent = reply(&app, &t, &format!("level {level}"), Some(parent)).await["id"].as_i64().unwrap();
    }
    let too_deep = app
        .post_json(
            &format!("/api/v1/posts/{}/comments", t.post_id),
            &json!({"body": "level 51", "parent_id": parent}),
            Some(&t.token),
        )
        .await;
    assert_eq!(problem_code(too_deep).await, (422, "max_depth_exceeded".into()));
    let tree: Value =
        app.get(&format!("/api/v1/posts/{}/comments?max_depth=50", t.post_id)).await.json().await.unwrap();
    let mut node = &tree["items"][0];
    let mut depth = 0;
    while let Some(child) = node["children"].as_array().and_then(|c| c.first()) {
        node = child;
        depth += 1;
    }
    assert_eq!(depth, 50, "the whole 51-level thread loads in one answer");
    app.stop().await;
}

#[tokio::test]
async fn bad_replies_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    let other = thread_in(&app, "elsewhere").await;
    let foreign = reply(&app, &other, "foreign", None).await;
    let path = format!("/api/v1/posts/{}/comments", t.post_id);
    for (body, code) in [
        (json!({"body": ""}), "validation_failed"),
        (json!({"body": "   "}), "validation_failed"),
        (json!({"body": "x".repeat(40_001)}), "validation_failed"),
        (json!({"body": "hi", "parent_id": 999_999}), "validation_failed"),
        (json!({"body": "hi", "parent_id": foreign["id"]}), "validation_failed"),
        (json!({"body": "hi", "parent_id": "abc"}), "validation_failed"),
    ] {
        assert_eq!(
            problem_code(app.post_json(&path, &body, Some(&t.token)).await).await,
            (422, code.into()),
            "{body:.60}"
        );
    }
    let post: Value = app.get(&format!("/api/v1/posts/{}", t.post_id)).await.json().await.unwrap();
    assert_eq!(post["comment_count"], 0);
    assert_eq!(
        app.post_json("/api/v1/posts/999999/comments", &json!({"body": "x"}), Some(&t.token)).await.status(),
        404
    );
    assert_eq!(app.post_json(&path, &json!({"body": "x"}), None).await.status(), 401);
    app.stop().await;
}

async fn thread_in(app: &TestApp, community: &str) -> Thread {
    let token = app.token_for(format!("{community}_author")).await;
    app.post_json("/api/v1/communities", &json!({"name": community, "title": community}), Some(&token)).await;
    let post: Value = app
        .post_json(&format!("/api/v1/communities/{community}/posts"), &json!({"title": "Other"}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    Thread { token, post_id: post["id"].as_i64().unwrap() }
}

#[tokio::test]
async fn authors_edit_and_delete_and_replies_survive_deletion() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    let parent = reply(&app, &t, "original", None).await;
    let child = reply(&app, &t, "child", Some(parent["id"].as_i64().unwrap())).await;
    let path = format!("/api/v1/comments/{}", parent["id"]);
    let stranger = app.token_for("stranger").await;
    assert_eq!(app.send_as(Method::PATCH, &path, Some(json!({"body": "pwned"})), &stranger).await.status(), 403);
    let edited: Value =
        app.send_as(Method::PATCH, &path, Some(json!({"body": "edited *text*"})), &t.token).await.json().await.unwrap();
    assert_eq!(edited["body_html"], "<p>edited <em>text</em></p>\n");
    assert!(edited["edited_at"].is_string());
    assert_eq!(app.send_as(Method::DELETE, &path, None, &stranger).await.status(), 403);
    assert_eq!(app.send_as(Method::DELETE, &path, None, &t.token).await.status(), 204);
    let tree: Value = app.get(&format!("/api/v1/posts/{}/comments", t.post_id)).await.json().await.unwrap();
    let node = &tree["items"][0];
    assert_eq!((node["deleted"].as_bool(), node["body"].as_str()), (Some(true), Some("")));
    assert_eq!(node["children"][0]["id"], child["id"], "replies are kept");
    app.stop().await;
}

#[tokio::test]
async fn comment_votes_count_and_rank_best_first() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    let weak = reply(&app, &t, "weak", None).await;
    let strong = reply(&app, &t, "strong", None).await;
    let voters: Vec<String> = futures_util::future::join_all((0..6).map(|i| app.token_for(format!("fan{i}")))).await;
    let strong_vote = format!("/api/v1/comments/{}/vote", strong["id"]);
    let votes = voters.iter().map(|v| app.send_as(Method::PUT, &strong_vote, Some(json!({"value": 1})), v));
    futures_util::future::join_all(votes).await;
    let down: Value = app
        .send_as(Method::PUT, &format!("/api/v1/comments/{}/vote", weak["id"]), Some(json!({"value": -1})), &voters[0])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(down, json!({"score": -1, "upvotes": 0, "downvotes": 1, "my_vote": -1}));
    let tree: Value =
        app.get_as(&format!("/api/v1/posts/{}/comments?sort=best", t.post_id), &voters[0]).await.json().await.unwrap();
    assert_eq!(bodies(&tree["items"]), ["strong", "weak"]);
    assert_eq!((tree["items"][0]["upvotes"].as_i64(), tree["items"][0]["my_vote"].as_i64()), (Some(6), Some(1)));
    let top: Value = app.get(&format!("/api/v1/posts/{}/comments?sort=top", t.post_id)).await.json().await.unwrap();
    assert_eq!(bodies(&top["items"]), ["strong", "weak"]);
    let author: Value = app.get("/api/v1/users/author").await.json().await.unwrap();
    assert_eq!(author["karma"], 5);
    app.stop().await;
}

#[tokio::test]
async fn locked_posts_refuse_new_comments() {
    let app = spawn_app().await;
    let t = thread(&app).await;
    app.db.execute(&format!("UPDATE posts SET locked = true WHERE id = {}", t.post_id)).await;
    let response =
        app.post_json(&format!("/api/v1/posts/{}/comments", t.post_id), &json!({"body": "hi"}), Some(&t.token)).await;
    assert_eq!(problem_code(response).await, (403, "locked".into()));
    app.stop().await;
}
