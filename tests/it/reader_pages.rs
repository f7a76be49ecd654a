//! The signed-in reader's journey in a real browser, with JavaScript on and off: Ann joins a
//! community and gets it as her home page, saves and hides posts, reads a reply and a mention
//! in her inbox with the badge counting them, exchanges private messages with Bob, blocks him
//! and stops seeing him, filters a keyword, and reads an Atom feed that parses.

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::harness::{TestApp, spawn_app};

async fn post(app: &TestApp, community: &str, title: &str, token: &str) -> i64 {
    let path = format!("/api/v1/communities/{community}/posts");
    let created: Value = app.post_json(&path, &json!({"title": title}), Some(token)).await.json().await.unwrap();
    created["id"].as_i64().unwrap()
}

async fn titles(browser: &Browser) -> Vec<String> {
    let value = browser
        .execute("return [...document.querySelectorAll('ol.posts li h2.post-title a')].map(a => a.textContent);")
        .await;
    value.as_array().map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

async fn journey(javascript: bool) {
    let app = spawn_app().await;
    let base = app.base.clone();
    let bob = app.token_for("bob").await;
    let cat = app.token_for("cat").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&bob)).await;
    app.post_json("/api/v1/communities", &json!({"name": "games", "title": "Games"}), Some(&bob)).await;
    let news = post(&app, "town", "Town news", &cat).await;
    let pics = post(&app, "town", "Cat pictures", &cat).await;
    post(&app, "town", "Bob on the market", &bob).await;
    post(&app, "town", "Crypto giveaway today", &cat).await;
    post(&app, "games", "Game night", &cat).await;

    let browser = Browser::start(javascript).await;
    browser.goto(&format!("{base}/signup")).await;
    browser.fill("#username", "ann").await;
    browser.fill("#email", "ann@example.org").await;
    browser.fill("#password", "password123").await;
    browser.submit("main form button[type=submit]").await;

    // Joining a community makes it her home page.
    browser.goto(&format!("{base}/c/town")).await;
    browser.submit("form[action='/c/town/membership'] button").await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.text("main h1").await, "Your communities");
    let home = titles(&browser).await;
    assert!(home.contains(&"Town news".to_owned()) && !home.contains(&"Game night".to_owned()), "{home:?}");

    // Save one post, hide another.
    browser.submit(&format!("#p{news} form[action$='/save'] button")).await;
    assert_eq!(browser.text(&format!("#p{news} form[action$='/save'] button")).await, "Saved");
    browser.submit(&format!("#p{pics} form[action$='/hide'] button")).await;
    assert!(!titles(&browser).await.contains(&"Cat pictures".to_owned()), "a hidden post leaves her listings");
    browser.goto(&format!("{base}/saved")).await;
    assert_eq!(titles(&browser).await, ["Town news"]);
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty(), "the saved page is accessible");
    }

    // A reply and a mention arrive in her inbox; the badge counts them.
    let ann = {
        let login = json!({"login": "ann", "password": "password123"});
        let signed: Value = app.post_json("/api/v1/auth/login", &login, None).await.json().await.unwrap();
        signed["access_token"].as_str().unwrap().to_owned()
    };
    let asks = post(&app, "town", "Ann asks", &ann).await;
    let comment = |body: &str| json!({"body": body});
    app.post_json(&format!("/api/v1/posts/{asks}/comments"), &comment("Bob answers"), Some(&bob)).await;
    app.post_json(&format!("/api/v1/posts/{news}/comments"), &comment("u/ann should see this"), Some(&bob)).await;
    browser.goto(&format!("{base}/")).await;
    assert!(browser.text("#unread").await.starts_with('2'), "the badge counts the reply and the mention");
    browser.submit("#inbox-link").await;
    assert_eq!(browser.count("ol.inbox li.unread").await, 2);

    // Saving a comment from its thread.
    browser.goto(&format!("{base}/p/{asks}")).await;
    browser.submit(".comment button[formaction$='/save']").await;
    assert_eq!(browser.text(".comment button[formaction$='/save']").await, "Saved");
    browser.goto(&format!("{base}/saved?show=comments")).await;
    assert!(browser.text("ol.posts li .body").await.contains("Bob answers"));

    // Private messages: Ann writes from Bob's profile, Bob answers.
    browser.goto(&format!("{base}/u/bob")).await;
    browser.submit("a[href='/messages?to=bob']").await;
    assert_eq!(browser.attribute("#to", "value").await.as_deref(), Some("bob"));
    browser.fill("#message-body", "Hello **Bob**, shall we meet?").await;
    browser.submit("form[action='/messages'] button[type=submit]").await;
    assert!(browser.url().await.contains("/messages/bob"), "{}", browser.url().await);
    assert!(browser.text("ol.messages li.mine .body").await.contains("Hello Bob"));
    let answer = json!({"to": "ann", "body": "Yes, at noon."});
    assert_eq!(app.post_json("/api/v1/messages", &answer, Some(&bob)).await.status(), 201);
    browser.goto(&format!("{base}/messages/bob")).await;
    assert!(browser.text("ol.messages li.theirs .body").await.contains("Yes, at noon."));
    assert!(browser.text("#unread").await.starts_with('3'), "the message is in the inbox too");
    browser.fill("#reply-body", "See you").await;
    browser.submit("form[action='/messages/bob'] button[type=submit]").await;
    assert_eq!(browser.count("ol.messages li").await, 3);
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty(), "the conversation is accessible");
        browser.screenshot("conversation-1280-light").await;
    }
    browser.goto(&format!("{base}/messages")).await;
    assert!(browser.text("ol.conversations li").await.contains("See you"));

    // Blocking Bob: his posts leave her listings, his comment is blanked, he cannot write.
    browser.goto(&format!("{base}/u/bob")).await;
    browser.submit("#block-user").await;
    assert_eq!(browser.text("#block-user").await, "Unblock");
    browser.goto(&format!("{base}/")).await;
    assert!(!titles(&browser).await.contains(&"Bob on the market".to_owned()));
    browser.goto(&format!("{base}/p/{asks}")).await;
    assert!(browser.text(".comment .removed-note").await.contains("you blocked bob"));
    let refused = app.post_json("/api/v1/messages", &json!({"to": "ann", "body": "hey"}), Some(&bob)).await;
    assert_eq!(refused.status(), 403);

    // A filtered keyword, through the settings.
    browser.goto(&format!("{base}/settings")).await;
    browser.fill("#keywords", "crypto").await;
    browser.submit("form[action='/settings/filters'] button").await;
    assert!(browser.text(".notice").await.contains("filters are saved"));
    assert!(browser.text("ul.blocks").await.contains("u/bob"));
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty(), "the settings are accessible");
    }
    browser.goto(&format!("{base}/")).await;
    let home = titles(&browser).await;
    assert!(!home.contains(&"Crypto giveaway today".to_owned()) && home.contains(&"Town news".to_owned()), "{home:?}");
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty(), "the home page is accessible");
        browser.screenshot("home-reader-1280-light").await;
        browser.goto(&format!("{base}/settings")).await;
        browser.screenshot("settings-filters-1280-light").await;
    }

    // The community's Atom feed is linked from its page and parses.
    browser.goto(&format!("{base}/c/town")).await;
    let feed = browser.attribute("link[rel=alternate][type='application/atom+xml']", "href").await;
    assert_eq!(feed.as_deref(), Some("/c/town/feed.xml"));
    let xml = app.get("/c/town/feed.xml").await.text().await.unwrap();
    let parsed = crate::feeds::parse_atom(&xml);
    assert!(parsed["entries"].as_array().unwrap().iter().any(|e| e["title"] == "Town news"));
}

#[tokio::test]
async fn the_signed_in_readers_journey_works_in_a_real_browser() {
    journey(true).await;
}

#[tokio::test]
async fn the_signed_in_readers_journey_works_with_javascript_off() {
    journey(false).await;
}

#[tokio::test]
async fn site_admins_read_and_close_reported_messages_in_the_pages() {
    use crate::pages::Session;
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let sent: Value = app
        .post_json("/api/v1/messages", &json!({"to": "ann", "body": "Buy my pills"}), Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    let id = sent["id"].as_i64().unwrap();
    let report = app.post_json(&format!("/api/v1/messages/{id}/report"), &json!({"reason": "spam"}), Some(&ann)).await;
    assert_eq!(report.status(), 201);

    let mut member = Session::new(&app);
    member.sign_up("carl").await;
    assert_eq!(member.get("/reports/messages").await.status(), 403, "only site admins");
    assert!(!member.html("/messages").await.contains("/reports/messages"));

    let mut admin = Session::new(&app);
    admin.sign_up("root").await;
    app.db.execute("UPDATE users SET is_admin = true WHERE username = 'root'").await;
    assert!(admin.html("/messages").await.contains("Reported messages</a>: 1 open"));
    let queue = admin.html("/reports/messages").await;
    assert!(queue.contains("Buy my pills") && queue.contains("spam"), "{queue}");
    let report_id = report_id(&queue);
    let closed = admin.form(&format!("/reports/{report_id}/resolve"), &[]).await;
    assert_eq!(closed.status(), 303);
    assert!(admin.html("/reports/messages").await.contains("No open reports"));
}

fn report_id(page: &str) -> i64 {
    let at = page.find("/reports/").and_then(|i| page[i..].find("/resolve").map(|j| &page[i + 9..i + j]));
    at.and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no report form in {page}"))
}

#[tokio::test]
async fn a_community_is_blocked_from_its_sidebar_and_unblocked_from_the_settings() {
    use crate::pages::Session;
    let app = spawn_app().await;
    let bob = app.token_for("bob").await;
    app.post_json("/api/v1/communities", &json!({"name": "games", "title": "Games"}), Some(&bob)).await;
    post(&app, "games", "Chess night", &bob).await;
    let mut ann = Session::new(&app);
    ann.sign_up("ann").await;
    assert!(ann.html("/all").await.contains("Chess night"));
    assert!(ann.html("/c/games").await.contains("Block this community"));
    assert_eq!(ann.form("/c/games/block", &[("action", "block")]).await.status(), 303);
    assert!(!ann.html("/all").await.contains("Chess night"), "gone from her front page");
    let side = ann.html("/c/games").await;
    assert!(side.contains("Unblock this community") && side.contains("Chess night"), "its own page still lists it");
    let settings = ann.html("/settings").await;
    assert!(settings.contains("href=\"/c/games\">c/games</a>"), "listed under blocked communities");

    // A keyword list the rules refuse comes back as the form's error and changes nothing.
    let refused = ann.form("/settings/filters", &[("keywords", "--")]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap_or_default().contains("each keyword needs a letter or a digit"));
    assert!(!ann.form("/c/games/block", &[("action", "maybe")]).await.status().is_success());

    assert_eq!(ann.form("/c/games/block", &[("action", "unblock")]).await.status(), 303);
    assert!(ann.html("/all").await.contains("Chess night"), "back after unblocking");
    assert!(!ann.html("/settings").await.contains("href=\"/c/games\">c/games</a>"));
}
