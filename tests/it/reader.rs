//! The signed-in reader's choices, against the real database and the response cache: saved
//! and hidden posts, saved comments, blocked users and communities, filtered keywords, and
//! private messages (blocks refuse them, the inbox and email get them, admins get reports).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app, spawn_app_with};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap_or_default()
}

async fn titles(app: &TestApp, path: &str, token: Option<&str>) -> Vec<String> {
    let response = match token {
        Some(token) => app.get_as(path, token).await,
        None => app.get(path).await,
    };
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body = json_of(response).await;
    body["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str) -> StatusCode {
    app.send_as(method, path, None, token).await.status()
}

async fn post(app: &TestApp, community: &str, title: &str, token: &str) -> i64 {
    let path = format!("/api/v1/communities/{community}/posts");
    let created = app.post_json(&path, &json!({"title": title}), Some(token)).await;
    json_of(created).await["id"].as_i64().unwrap()
}

#[tokio::test]
async fn saved_and_hidden_posts_follow_the_reader_and_nobody_else() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&ann)).await;
    let first = post(&app, "town", "First", &ann).await;
    let second = post(&app, "town", "Second", &ann).await;
    let third = post(&app, "town", "Third", &ann).await;
    // Warm the shared caches first: the reader's choices apply on top of them.
    assert_eq!(titles(&app, "/api/v1/posts?sort=new", None).await, ["Third", "Second", "First"]);

    assert_eq!(status(&app, Method::PUT, &format!("/api/v1/posts/{first}/save"), &bob).await, StatusCode::NO_CONTENT);
    assert_eq!(status(&app, Method::PUT, &format!("/api/v1/posts/{first}/save"), &bob).await, StatusCode::NO_CONTENT);
    assert_eq!(status(&app, Method::PUT, "/api/v1/posts/999999/save", &bob).await, StatusCode::NOT_FOUND);
    let page = json_of(app.get_as("/api/v1/posts?sort=new", &bob).await).await;
    let flags: Vec<(bool, bool)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["saved"].as_bool().unwrap(), p["hidden"].as_bool().unwrap()))
        .collect();
    assert_eq!(flags, [(false, false), (false, false), (true, false)]);
    let anns = json_of(app.get_as("/api/v1/posts?sort=new", &ann).await).await;
    assert!(anns["items"].as_array().unwrap().iter().all(|p| p["saved"] == false), "saves are Bob's own");
    let one = json_of(app.get_as(&format!("/api/v1/posts/{first}"), &bob).await).await;
    assert_eq!(one["saved"], true);

    // Hide the second: it leaves Bob's listings, his search and the community page, not Ann's.
    assert_eq!(status(&app, Method::PUT, &format!("/api/v1/posts/{second}/hide"), &bob).await, StatusCode::NO_CONTENT);
    assert_eq!(titles(&app, "/api/v1/posts?sort=new", Some(&bob)).await, ["Third", "First"]);
    assert_eq!(titles(&app, "/api/v1/posts?sort=new&community=town", Some(&bob)).await, ["Third", "First"]);
    assert_eq!(titles(&app, "/api/v1/search?q=second", Some(&bob)).await, Vec::<String>::new());
    assert_eq!(titles(&app, "/api/v1/posts?sort=new", Some(&ann)).await, ["Third", "Second", "First"]);
    let opened = json_of(app.get_as(&format!("/api/v1/posts/{second}"), &bob).await).await;
    assert_eq!(opened["hidden"], true, "an opened hidden post says so");
    assert_eq!(
        status(&app, Method::DELETE, &format!("/api/v1/posts/{second}/hide"), &bob).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(titles(&app, "/api/v1/posts?sort=new", Some(&bob)).await, ["Third", "Second", "First"]);

    // /me/saved: most recently saved first, keyset-paginated, comments apart.
    app.send_as(Method::PUT, &format!("/api/v1/posts/{third}/save"), None, &bob).await;
    let saved = json_of(app.get_as("/api/v1/me/saved?limit=1", &bob).await).await;
    assert_eq!(saved["items"][0]["title"], "Third");
    let cursor = saved["next_cursor"].as_str().unwrap();
    let rest = json_of(app.get_as(&format!("/api/v1/me/saved?limit=1&cursor={cursor}"), &bob).await).await;
    assert_eq!(rest["items"][0]["title"], "First");
    assert!(rest["next_cursor"].is_null());
    app.send_as(Method::DELETE, &format!("/api/v1/posts/{third}/save"), None, &bob).await;
    assert_eq!(titles(&app, "/api/v1/me/saved", Some(&bob)).await, ["First"]);

    let comment =
        app.post_json(&format!("/api/v1/posts/{first}/comments"), &json!({"body": "keep me"}), Some(&ann)).await;
    let comment_id = json_of(comment).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/comments/{comment_id}/save");
    assert_eq!(status(&app, Method::PUT, &path, &bob).await, StatusCode::NO_CONTENT);
    let comments = json_of(app.get_as("/api/v1/me/saved?type=comments", &bob).await).await;
    assert_eq!(comments["items"][0]["body"], "keep me", "{comments}");
    let tree = json_of(app.get_as(&format!("/api/v1/posts/{first}/comments"), &bob).await).await;
    assert_eq!(tree["items"][0]["saved"], true);
    let anns_tree = json_of(app.get_as(&format!("/api/v1/posts/{first}/comments"), &ann).await).await;
    assert_eq!(anns_tree["items"][0]["saved"], false);

    for bad in ["/api/v1/me/saved?type=votes", "/api/v1/me/saved?cursor=nonsense", "/api/v1/me/saved?limit=0"] {
        assert_eq!(problem_code(app.get_as(bad, &bob).await).await, (422, "validation_failed".into()), "{bad}");
    }
    assert_eq!(app.get("/api/v1/me/saved").await.status(), StatusCode::UNAUTHORIZED);
    let scrape = app.scrape().await;
    assert_eq!(crate::harness::metric(&scrape, "agora_saves_total{mark=\"saved_post\"}"), 2.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_saves_total{mark=\"hidden_post\"}"), 1.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_saves_total{mark=\"saved_comment\"}"), 1.0);
}

#[tokio::test]
async fn a_filtered_page_is_refilled_from_the_next_pages_without_skipping_any_post() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&ann)).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(post(&app, "town", &format!("Post {n:02}"), &ann).await);
    }
    // Bob hides the four newest: his first page of five starts after them and stays full.
    for id in ids.iter().rev().take(4) {
        app.send_as(Method::PUT, &format!("/api/v1/posts/{id}/hide"), None, &bob).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/posts?sort=new&limit=5&cursor={c}"),
            None => "/api/v1/posts?sort=new&limit=5".to_owned(),
        };
        let page = json_of(app.get_as(&path, &bob).await).await;
        let items = page["items"].as_array().unwrap();
        if cursor.is_none() {
            assert_eq!(items.len(), 5, "the first page is refilled");
        }
        seen.extend(items.iter().map(|p| p["title"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..8).rev().map(|n| format!("Post {n:02}")).collect();
    assert_eq!(seen, expected, "every visible post once, in order");

    // Bob's page is made once and then served from memory, until anything on it changes.
    let first = "/api/v1/posts?sort=new&limit=5";
    app.get_as(first, &bob).await;
    assert_eq!(app.get_as(first, &bob).await.headers()["x-cache"], "hit");
    post(&app, "town", "Fresh", &ann).await;
    assert_eq!(titles(&app, first, Some(&bob)).await[0], "Fresh", "someone else's post reaches his page");
    app.send_as(Method::PUT, &format!("/api/v1/posts/{}/hide", ids[7]), None, &bob).await;
    assert!(!titles(&app, first, Some(&bob)).await.contains(&"Post 07".to_owned()), "and so does his own hide");
}

#[tokio::test]
async fn blocks_and_keywords_shape_the_blockers_listings_threads_and_inbox() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let cat = app.token_for("cat").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&ann)).await;
    app.post_json("/api/v1/communities", &json!({"name": "games", "title": "Games"}), Some(&ann)).await;
    let anns_post = post(&app, "town", "Ann writes about Rust", &ann).await;
    post(&app, "town", "Bob says hello", &bob).await;
    post(&app, "games", "Chess night", &cat).await;
    post(&app, "town", "Trusty old tools", &cat).await;
    let all = "/api/v1/posts?sort=new";
    assert_eq!(titles(&app, all, Some(&ann)).await.len(), 4);

    // Ann blocks Bob: his post leaves her listings; his comment in her thread is blanked.
    let bobs_comment = app
        .post_json(&format!("/api/v1/posts/{anns_post}/comments"), &json!({"body": "first u/ann"}), Some(&bob))
        .await;
    let bobs_comment = json_of(bobs_comment).await["id"].as_i64().unwrap();
    let reply = json!({"body": "a reply under Bob", "parent_id": bobs_comment});
    app.post_json(&format!("/api/v1/posts/{anns_post}/comments"), &reply, Some(&cat)).await;
    assert_eq!(status(&app, Method::PUT, "/api/v1/me/blocks/users/BOB", &ann).await, StatusCode::NO_CONTENT);
    assert_eq!(status(&app, Method::PUT, "/api/v1/me/blocks/users/bob", &ann).await, StatusCode::NO_CONTENT);
    assert!(!titles(&app, all, Some(&ann)).await.contains(&"Bob says hello".to_owned()));
    assert!(titles(&app, all, Some(&cat)).await.contains(&"Bob says hello".to_owned()), "only Ann's view");
    let tree = json_of(app.get_as(&format!("/api/v1/posts/{anns_post}/comments"), &ann).await).await;
    let blanked = &tree["items"][0];
    assert_eq!((blanked["blocked"].as_bool(), blanked["body"].as_str()), (Some(true), Some("")));
    assert_eq!(blanked["children"][0]["body"], "a reply under Bob", "replies stay");
    let subtree = json_of(app.get_as(&format!("/api/v1/comments/{bobs_comment}"), &ann).await).await;
    assert_eq!(subtree["blocked"], true);
    let cats_tree = json_of(app.get_as(&format!("/api/v1/posts/{anns_post}/comments"), &cat).await).await;
    assert_eq!(cats_tree["items"][0]["body"], "first u/ann");

    // Bob's new reply and mention do not reach Ann's inbox.
    let unread_before = json_of(app.get_as("/api/v1/me/unread", &ann).await).await["inbox"].as_i64().unwrap();
    app.post_json(&format!("/api/v1/posts/{anns_post}/comments"), &json!({"body": "hey u/ann"}), Some(&bob)).await;
    let unread_after = json_of(app.get_as("/api/v1/me/unread", &ann).await).await["inbox"].as_i64().unwrap();
    assert_eq!(unread_after, unread_before, "no notification from a blocked user");

    // Blocking a community drops its posts from her feeds, not from its own page.
    assert_eq!(status(&app, Method::PUT, "/api/v1/me/blocks/communities/games", &ann).await, StatusCode::NO_CONTENT);
    assert!(!titles(&app, all, Some(&ann)).await.contains(&"Chess night".to_owned()));
    assert_eq!(titles(&app, "/api/v1/posts?community=games", Some(&ann)).await, ["Chess night"]);

    // Keywords: whole words, ignoring case.
    let patch = app.send_as(Method::PATCH, "/api/v1/me", Some(json!({"filtered_keywords": ["RUST", " tools "]})), &ann);
    let me = json_of(patch.await).await;
    assert_eq!(me["filtered_keywords"], json!(["rust", "tools"]));
    assert_eq!(titles(&app, all, Some(&ann)).await, Vec::<String>::new());
    let patch = app.send_as(Method::PATCH, "/api/v1/me", Some(json!({"filtered_keywords": ["rust"]})), &ann);
    assert_eq!(patch.await.status(), StatusCode::OK);
    assert_eq!(titles(&app, all, Some(&ann)).await, ["Trusty old tools"]);
    for bad in [json!({"filtered_keywords": ["--"]}), json!({"filtered_keywords": ["x".repeat(61)]})] {
        let refused = app.send_as(Method::PATCH, "/api/v1/me", Some(bad), &ann).await;
        assert_eq!(problem_code(refused).await, (422, "validation_failed".into()));
    }

    let blocks = json_of(app.get_as("/api/v1/me/blocks", &ann).await).await;
    assert_eq!(blocks, json!({"users": ["bob"], "communities": ["games"]}));
    let myself = app.send_as(Method::PUT, "/api/v1/me/blocks/users/ann", None, &ann).await;
    assert_eq!(problem_code(myself).await, (422, "validation_failed".into()));
    let nobody = app.send_as(Method::PUT, "/api/v1/me/blocks/users/nobody", None, &ann).await;
    assert_eq!(problem_code(nobody).await, (404, "not_found".into()));
    let nowhere = app.send_as(Method::PUT, "/api/v1/me/blocks/communities/nowhere", None, &ann).await;
    assert_eq!(problem_code(nowhere).await, (404, "not_found".into()));

    // Unblocking brings everything back.
    app.send_as(Method::DELETE, "/api/v1/me/blocks/users/bob", None, &ann).await;
    app.send_as(Method::DELETE, "/api/v1/me/blocks/communities/games", None, &ann).await;
    app.send_as(Method::PATCH, "/api/v1/me", Some(json!({"filtered_keywords": []})), &ann).await;
    assert_eq!(titles(&app, all, Some(&ann)).await.len(), 4);
    let tree = json_of(app.get_as(&format!("/api/v1/posts/{anns_post}/comments?sort=old"), &ann).await).await;
    assert_eq!(tree["items"][0]["blocked"], false);
    let scrape = app.scrape().await;
    assert_eq!(crate::harness::metric(&scrape, "agora_blocks_total{target=\"user\"}"), 1.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_blocks_total{target=\"community\"}"), 1.0);
}

#[tokio::test]
async fn private_messages_reach_the_inbox_respect_blocks_and_can_be_reported() {
    let app = spawn_app_with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.messages_per_hour = 8;
    })
    .await;
    let admin = app.token_for("root").await;
    app.db.execute("UPDATE users SET is_admin = true WHERE username = 'root'").await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;

    let sent = app.post_json("/api/v1/messages", &json!({"to": "Bob", "body": "Hi **Bob**"}), Some(&ann)).await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let message = json_of(sent).await;
    assert_eq!((message["from"].as_str(), message["to"].as_str()), (Some("ann"), Some("bob")));
    assert_eq!(message["body_html"], "<p>Hi <strong>Bob</strong></p>\n");
    let inbox = json_of(app.get_as("/api/v1/me/inbox", &bob).await).await;
    let item = &inbox["items"][0];
    assert_eq!((item["kind"].as_str(), item["from"].as_str()), (Some("message"), Some("ann")));
    assert_eq!(item["message_id"], message["id"]);
    assert_eq!(json_of(app.get_as("/api/v1/me/unread", &bob).await).await["inbox"], 1);

    let answer = app.post_json("/api/v1/messages", &json!({"to": "ann", "body": "Hello back"}), Some(&bob)).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let conversation = json_of(app.get_as("/api/v1/messages?with=ann&limit=1", &bob).await).await;
    assert_eq!(conversation["items"][0]["body"], "Hello back");
    let cursor = conversation["next_cursor"].as_str().unwrap();
    let older = json_of(app.get_as(&format!("/api/v1/messages?with=ann&limit=1&cursor={cursor}"), &bob).await).await;
    assert_eq!(older["items"][0]["body"], "Hi **Bob**");
    let same = json_of(app.get_as("/api/v1/messages?with=bob", &ann).await).await;
    assert_eq!(same["items"].as_array().unwrap().len(), 2, "one conversation, seen from both sides");

    // Bad messages change nothing.
    for (body, expected) in [
        (json!({"to": "ann", "body": "   "}), (422, "validation_failed")),
        (json!({"to": "bob", "body": "me to me"}), (422, "validation_failed")),
        (json!({"to": "nobody", "body": "hi"}), (404, "not_found")),
        (json!({"to": "ann", "body": "x".repeat(10_001)}), (422, "validation_failed")),
    ] {
        let refused = app.post_json("/api/v1/messages", &body, Some(&bob)).await;
        assert_eq!(problem_code(refused).await, (expected.0, expected.1.to_owned()), "{body}");
    }
    assert_eq!(app.get("/api/v1/messages?with=ann").await.status(), StatusCode::UNAUTHORIZED);

    // Bob reports Ann's message to the admins; Ann cannot report her own.
    let id = message["id"].as_i64().unwrap();
    let own = app.post_json(&format!("/api/v1/messages/{id}/report"), &json!({"reason": "spam"}), Some(&ann)).await;
    assert_eq!(problem_code(own).await, (404, "not_found".into()));
    let no_reason = app.post_json(&format!("/api/v1/messages/{id}/report"), &json!({}), Some(&bob)).await;
    assert_eq!(problem_code(no_reason).await, (422, "validation_failed".into()));
    let reported =
        app.post_json(&format!("/api/v1/messages/{id}/report"), &json!({"reason": "spam"}), Some(&bob)).await;
    assert_eq!(reported.status(), StatusCode::CREATED);
    let queue = json_of(app.get_as("/api/v1/mod/reports", &admin).await).await;
    let report = &queue["items"][0];
    assert_eq!((report["message_id"].as_i64(), report["community"].as_str()), (Some(id), None));
    assert_eq!(report["message_body"], "Hi **Bob**");
    let report_id = report["id"].as_i64().unwrap();
    let by_ann = app.post_json(&format!("/api/v1/mod/reports/{report_id}/resolve"), &json!({}), Some(&ann)).await;
    assert_eq!(by_ann.status(), StatusCode::FORBIDDEN);
    let resolved = app.post_json(&format!("/api/v1/mod/reports/{report_id}/resolve"), &json!({}), Some(&admin)).await;
    assert!(resolved.status().is_success());

    // Bob blocks Ann: her next message is refused with `blocked`; his to her still goes.
    app.send_as(Method::PUT, "/api/v1/me/blocks/users/ann", None, &bob).await;
    let refused = app.post_json("/api/v1/messages", &json!({"to": "bob", "body": "again?"}), Some(&ann)).await;
    assert_eq!(problem_code(refused).await, (403, "blocked".into()));
    let theirs = app.post_json("/api/v1/messages", &json!({"to": "ann", "body": "bye"}), Some(&bob)).await;
    assert_eq!(theirs.status(), StatusCode::CREATED);

    // The `messages` class: Ann sent 2 of her 8 (a refused one counts: it was a request).
    let mut last = StatusCode::CREATED;
    for _ in 0..7 {
        last = app.post_json("/api/v1/messages", &json!({"to": "root", "body": "hi"}), Some(&ann)).await.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let scrape = app.scrape().await;
    assert!(crate::harness::metric(&scrape, "agora_messages_sent_total") >= 3.0);
    assert!(crate::harness::metric(&scrape, "agora_inbox_items_total{kind=\"message\"}") >= 3.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_rate_limited_requests_total{class=\"messages\"}"), 1.0);
}
