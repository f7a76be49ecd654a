//! A user's posts and comments through the API: newest or best first, keyset pages that hold
//! while new content arrives, the reader's own votes, and deleted or removed content left out.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

async fn page(app: &TestApp, path: &str) -> Value {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// Every item of a listing, page after page of `limit`.
async fn all_pages(app: &TestApp, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}{}limit={limit}", if path.contains('?') { "&" } else { "?" });
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let body = page(app, &url).await;
        let got = body["items"].as_array().unwrap().clone();
        assert!(got.len() <= limit);
        items.extend(got);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn a_profile_lists_the_users_posts_and_comments_newest_or_best_first() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let created = app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&ann)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut posts = Vec::new();
    for n in 0..7 {
        let body = json!({"title": format!("post {n}")});
        let post: Value =
            app.post_json("/api/v1/communities/town/posts", &body, Some(&ann)).await.json().await.unwrap();
        posts.push(post["id"].as_i64().unwrap());
    }
    for (n, post) in posts.iter().enumerate() {
        let body = json!({"body": format!("comment {n}")});
        let response = app.post_json(&format!("/api/v1/posts/{post}/comments"), &body, Some(&ann)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Bob upvotes posts 2 and 5; Ann deletes post 6.
    for post in [posts[2], posts[5]] {
        let vote = app
            .send_as(reqwest::Method::PUT, &format!("/api/v1/posts/{post}/vote"), Some(json!({"value": 1})), &bob)
            .await;
        assert_eq!(vote.status(), StatusCode::OK);
    }
    let deleted = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/posts/{}", posts[6]), None, &ann).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    let titles = |items: &[Value]| items.iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let newest = all_pages(&app, "/api/v1/users/ann/posts", 2).await;
    assert_eq!(
        titles(&newest),
        ["post 5", "post 4", "post 3", "post 2", "post 1", "post 0"],
        "newest first, deleted left out"
    );
    let best = all_pages(&app, "/api/v1/users/ANN/posts?sort=top", 2).await;
    assert_eq!(&titles(&best)[..2], ["post 5", "post 2"], "the upvoted first (ties newest first)");
    assert_eq!(best.len(), 6);
    let comments = all_pages(&app, "/api/v1/users/ann/comments", 3).await;
    assert_eq!(comments.len(), 7);
    assert_eq!(comments[0]["body"], "comment 6");
    assert!(comments.iter().all(|c| c["children"].as_array().is_some_and(Vec::is_empty)), "comments without replies");

    // A page's cursor holds while new posts arrive.
    let first: Value = page(&app, "/api/v1/users/ann/posts?limit=3").await;
    let body = json!({"title": "post 7"});
    app.post_json("/api/v1/communities/town/posts", &body, Some(&ann)).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = page(&app, &format!("/api/v1/users/ann/posts?limit=3&cursor={cursor}")).await;
    assert_eq!(titles(second["items"].as_array().unwrap()), ["post 2", "post 1", "post 0"]);

    // The reader's own votes show.
    let as_bob: Value = app.get_as("/api/v1/users/ann/posts?sort=top&limit=1", &bob).await.json().await.unwrap();
    assert_eq!(as_bob["items"][0]["my_vote"], 1);

    // Bad input: a cursor of the other sort, an unknown sort, an unknown user.
    let mixed = app.get(&format!("/api/v1/users/ann/posts?sort=top&cursor={cursor}")).await;
    assert_eq!(problem_code(mixed).await, (422, "validation_failed".to_owned()));
    assert_eq!(
        problem_code(app.get("/api/v1/users/ann/posts?sort=hot").await).await,
        (422, "validation_failed".to_owned())
    );
    assert_eq!(problem_code(app.get("/api/v1/users/nobody/posts").await).await, (404, "not_found".to_owned()));
    assert_eq!(problem_code(app.get("/api/v1/users/no%20body/comments").await).await, (404, "not_found".to_owned()));
}
