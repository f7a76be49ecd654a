//! The inbox: replies, mentions and moderator removals arrive with what caused them (whether
//! or not email is on), the unread count follows every change, and items are read one by one
//! or all at once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

async fn unread(app: &TestApp, token: &str) -> i64 {
    let body: Value = app.get_as("/api/v1/me/unread", token).await.json().await.unwrap();
    body["inbox"].as_i64().unwrap()
}

async fn inbox(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let body: Value = app.get_as(&format!("/api/v1/me/inbox{query}"), token).await.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn replies_mentions_and_removals_arrive_and_are_counted_until_read() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let cat = app.token_for("cat").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town", "rules": ["Be kind"]}), Some(&ann))
        .await;
    let post: Value = app
        .post_json("/api/v1/communities/town/posts", &json!({"title": "Hello"}), Some(&ann))
        .await
        .json()
        .await
        .unwrap();
    let post_id = post["id"].as_i64().unwrap();
    assert_eq!(unread(&app, &ann).await, 0);

    // Bob replies to Ann's post and mentions Cat (and Ann, who gets one item, the reply).
    let body = json!({"body": "Nice one u/ann, what do you think u/cat?"});
    let comment: Value =
        app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &body, Some(&bob)).await.json().await.unwrap();
    let comment_id = comment["id"].as_i64().unwrap();
    assert_eq!(unread(&app, &ann).await, 1, "the count is invalidated by someone else's write");
    assert_eq!(unread(&app, &cat).await, 1);
    assert_eq!(unread(&app, &bob).await, 0, "nobody is notified of their own comment");
    let items = inbox(&app, &ann, "").await;
    assert_eq!(items[0]["kind"], "reply");
    assert_eq!(items[0]["from"], "bob");
    assert_eq!((items[0]["post_id"].as_i64(), items[0]["comment_id"].as_i64()), (Some(post_id), Some(comment_id)));
    assert!(items[0]["excerpt"].as_str().unwrap().starts_with("Nice one"));
    assert_eq!(inbox(&app, &cat, "").await[0]["kind"], "mention");

    // Ann replies to Bob's comment: Bob gets a reply. Ann removes it as a moderator... her own
    // removal of Bob's comment notifies Bob with the rule.
    let reply = json!({"body": "Thanks!", "parent_id": comment_id});
    app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &reply, Some(&ann)).await;
    assert_eq!(unread(&app, &bob).await, 1);
    let removal = json!({"rule_index": 0, "reason": "too loud"});
    let removed = app.post_json(&format!("/api/v1/mod/comments/{comment_id}/remove"), &removal, Some(&ann)).await;
    assert!(removed.status().is_success());
    assert_eq!(unread(&app, &bob).await, 2);
    let bob_items = inbox(&app, &bob, "?unread_only=true").await;
    assert_eq!(bob_items[0]["kind"], "mod_action");
    assert!(bob_items[0]["from"].is_null(), "moderators are not named");
    let note = bob_items[0]["excerpt"].as_str().unwrap();
    assert!(note.contains("rule 1: Be kind") && note.contains("too loud"), "{note}");

    // Reading one, then all.
    let first = bob_items[0]["id"].as_i64().unwrap();
    let read = app.post_json(&format!("/api/v1/me/inbox/{first}/read"), &json!({}), Some(&bob)).await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(&app, &bob).await, 1);
    assert_eq!(inbox(&app, &bob, "?unread_only=true").await.len(), 1);
    assert_eq!(inbox(&app, &bob, "").await.len(), 2, "read items stay");
    let not_hers = app.post_json(&format!("/api/v1/me/inbox/{first}/read"), &json!({}), Some(&ann)).await;
    assert_eq!(problem_code(not_hers).await, (404, "not_found".to_owned()));
    let all = app.post_json("/api/v1/me/inbox/read-all", &json!({}), Some(&bob)).await;
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert_eq!(unread(&app, &bob).await, 0);
    assert_eq!(app.get("/api/v1/me/unread").await.status(), StatusCode::UNAUTHORIZED);

    // Paging: newest first, keyset.
    for n in 0..5 {
        let body = json!({"body": format!("ping {n} u/cat")});
        app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &body, Some(&bob)).await;
    }
    let first_page: Value = app.get_as("/api/v1/me/inbox?limit=4", &cat).await.json().await.unwrap();
    assert_eq!(first_page["items"][0]["excerpt"], "ping 4 u/cat");
    let cursor = first_page["next_cursor"].as_str().unwrap();
    let second: Value =
        app.get_as(&format!("/api/v1/me/inbox?limit=4&cursor={cursor}"), &cat).await.json().await.unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    let scrape = app.scrape().await;
    assert!(crate::harness::metric(&scrape, "agora_inbox_items_total{kind=\"mention\"}") >= 6.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_inbox_items_total{kind=\"mod_action\"}"), 1.0);
}

async fn inbox_in_a_browser(javascript: bool) {
    use crate::browser::Browser;
    let app = spawn_app().await;
    let base = app.base.clone();
    let bob = app.token_for("bob").await;
    let browser = Browser::start(javascript).await;
    browser.goto(&format!("{base}/signup")).await;
    browser.fill("#username", "ann").await;
    browser.fill("#email", "ann@example.org").await;
    browser.fill("#password", "password123").await;
    browser.submit("main form button[type=submit]").await;
    assert_eq!(browser.count("#unread").await, 0, "no badge while nothing is unread");
    // Ann's post gets a reply and a mention from Bob, through the API.
    let ann = {
        let login = json!({"login": "ann", "password": "password123"});
        let signed: Value = app.post_json("/api/v1/auth/login", &login, None).await.json().await.unwrap();
        signed["access_token"].as_str().unwrap().to_owned()
    };
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&ann)).await;
    let post: Value = app
        .post_json("/api/v1/communities/town/posts", &json!({"title": "Hi"}), Some(&ann))
        .await
        .json()
        .await
        .unwrap();
    let post_id = post["id"].as_i64().unwrap();
    let reply: Value = app
        .post_json(&format!("/api/v1/posts/{post_id}/comments"), &json!({"body": "Welcome, u/ann!"}), Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    browser.goto(&format!("{base}/")).await;
    assert!(browser.text("#unread").await.starts_with('1'), "the badge counts the reply");
    browser.submit("#inbox-link").await;
    assert!(browser.url().await.ends_with("/inbox"));
    assert_eq!(browser.count("ol.inbox li.unread").await, 1);
    assert!(browser.text("ol.inbox li").await.contains("Welcome, u/ann!"));
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty(), "the inbox is accessible");
    }
    browser.submit("ol.inbox li a[href*='/comments/']").await;
    assert!(browser.url().await.ends_with(&format!("/p/{post_id}/comments/{}", reply["id"])), "in context");
    browser.goto(&format!("{base}/inbox")).await;
    browser.submit("ol.inbox li form button").await;
    assert_eq!(browser.count("#unread").await, 0, "read: the badge is gone");
    assert_eq!(browser.count("ol.inbox li.read").await, 1);
}

#[tokio::test]
async fn the_inbox_page_and_its_badge_work_in_a_real_browser() {
    inbox_in_a_browser(true).await;
}

#[tokio::test]
async fn the_inbox_page_and_its_badge_work_with_javascript_off() {
    inbox_in_a_browser(false).await;
}
