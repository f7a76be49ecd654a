//! Pages for browser users: end-to-end journeys in headless Chromium (with and without
//! JavaScript), accessibility, screenshots, hostile content, and the HTTP rules of pages
//! (CSRF, ETags, assets, query counts, sessions).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::email::SmtpSink;
use crate::harness::{TestApp, eventually, metric, spawn_app, spawn_app_with};

const PASSWORD: &str = "password123";

/// Signs `username` up through the form; the header then names them.
async fn sign_up(browser: &Browser, base: &str, username: &str) {
    browser.goto(&format!("{base}/signup")).await;
    browser.fill("#username", username).await;
    browser.fill("#email", &format!("{username}@example.org")).await;
    browser.fill("#password", PASSWORD).await;
    browser.submit("main form button[type=submit]").await;
    assert_eq!(browser.text("#me").await, username, "signed in after sign-up");
}

async fn sign_in(browser: &Browser, base: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await;
    browser.fill("#login", username).await;
    browser.fill("#password", password).await;
    browser.submit("main form button[type=submit]").await;
    assert_eq!(browser.text("#me").await, username, "signed in");
}

/// Posts a reply through the form of the post (`parent` None) or of a comment, and returns the
/// new comment's id from the address the form redirects to (`/p/N#cID`).
async fn reply(browser: &Browser, parent: Option<i64>, text: &str) -> i64 {
    let before = browser.url().await;
    match parent {
        None => {
            browser.fill("#reply-post", text).await;
            browser.submit("#comments > form button[type=submit]").await;
        }
        Some(parent) => {
            browser.click(&format!("#c{parent} > .comment-content details.reply > summary")).await;
            browser.fill(&format!("#reply-{parent}"), text).await;
            browser.submit(&format!("#c{parent} > .comment-content details.reply button[type=submit]")).await;
        }
    }
    let url = eventually(Duration::from_secs(10), "the redirect to the new comment", || async {
        let url = browser.url().await;
        (url != before && url.contains("#c")).then_some(url)
    })
    .await;
    url.rsplit("#c").next().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no comment id in {url}"))
}

/// The whole journey of the issue, in one browser with JavaScript on or off.
async fn journey(javascript: bool) {
    let sink = SmtpSink::start();
    let app = spawn_app_with(|config| sink.configure(config)).await;
    let base = app.base.clone();
    let alice = Browser::start(javascript).await;

    // Sign up, create a community, post.
    sign_up(&alice, &base, "alice").await;
    alice.goto(&format!("{base}/communities/new")).await;
    alice.fill("#name", "gardening").await;
    alice.fill("#title", "Gardening").await;
    alice.fill("#description", "Growing things together.").await;
    alice.fill("#rules", "Be kind\nNo spam").await;
    alice.submit("main form button[type=submit]").await;
    assert_eq!(alice.text("h1").await, "Gardening");
    assert!(alice.url().await.ends_with("/c/gardening"));
    alice.submit("a.button[href='/submit?community=gardening']").await;
    alice.fill("#title", "Tomatoes in November?").await;
    alice.fill("#body", "Mine are still **green**.").await;
    alice.submit("main form button[type=submit]").await;
    assert_eq!(alice.text("article.post-full h1").await, "Tomatoes in November?");
    assert_eq!(alice.text("article.post-full .body strong").await, "green");
    let post_url = alice.url().await;
    let post_path = post_url.trim_start_matches(&base).to_owned();

    // Reply three levels deep: each reply nests inside its parent.
    let one = reply(&alice, None, "Level one: pick them and let them ripen indoors.").await;
    let two = reply(&alice, Some(one), "Level two: in a paper bag with a banana.").await;
    let three = reply(&alice, Some(two), "Level three: the banana gives off ethylene.").await;
    assert_eq!(alice.count(&format!("#c{one} #c{two} #c{three}")).await, 1, "nested three deep");
    assert!(alice.text(&format!("#c{three} .body")).await.contains("ethylene"));

    // Vote and see the score change; with JavaScript the page does not reload.
    alice.goto(&format!("{base}{post_path}")).await;
    assert_eq!(alice.text("article.post-full .score").await, "0");
    if javascript {
        alice.execute("window.agoraMarker = 'same page';").await;
    }
    if javascript {
        alice.click("article.post-full form.vote button.up").await;
    } else {
        alice.submit("article.post-full form.vote button.up").await;
    }
    eventually(Duration::from_secs(10), "the new score", || async {
        (alice.text("article.post-full .score").await == "1").then_some(())
    })
    .await;
    if javascript {
        assert_eq!(alice.execute("return window.agoraMarker || null;").await, json!("same page"), "no reload");
    }
    alice.goto(&format!("{base}{post_path}")).await;
    assert_eq!(alice.text("article.post-full .score").await, "1", "the vote was stored");
    assert_eq!(alice.count("article.post-full form.vote button.up[aria-pressed=true]").await, 1);

    // Collapse a thread and expand it again: the replies hide with it.
    assert!(alice.displayed(&format!("#c{three} .body")).await);
    alice.click(&format!("#c{one} > summary")).await;
    assert!(!alice.displayed(&format!("#c{one} > .comment-content")).await, "collapsed");
    assert!(!alice.displayed(&format!("#c{three} .body")).await, "its replies are hidden too");
    alice.click(&format!("#c{one} > summary")).await;
    assert!(alice.displayed(&format!("#c{three} .body")).await, "expanded again");

    // Sign out, and in again.
    alice.submit("#sign-out").await;
    assert!(alice.try_find("#me").await.is_none(), "signed out");
    assert_eq!(alice.count("a[href='/login']").await, 1);
    sign_in(&alice, &base, "alice", PASSWORD).await;

    // Reset the password from the emailed link, then sign in with the new one.
    alice.submit("#sign-out").await;
    alice.goto(&format!("{base}/reset")).await;
    alice.fill("#email", "alice@example.org").await;
    alice.submit("main form button[type=submit]").await;
    assert!(alice.text("#reset-sent").await.contains("reset link"));
    let email = eventually(Duration::from_secs(20), "the reset email", || async {
        sink.to("alice@example.org").into_iter().find(|m| m["subject"] == "Reset your Agora password")
    })
    .await;
    let text = email["text"].as_str().unwrap_or_default();
    let token =
        text.lines().find_map(|l| l.split("reset-password?token=").nth(1)).expect("reset link").trim().to_owned();
    alice.goto(&format!("{base}/reset-password?token={token}")).await;
    alice.fill("#password", "a-brand-new-password").await;
    alice.submit("main form button[type=submit]").await;
    assert!(alice.url().await.contains("/login?reset=done"));
    sign_in(&alice, &base, "alice", "a-brand-new-password").await;

    // A moderator removes a comment and it disappears for everyone else.
    let bob = Browser::start(javascript).await;
    sign_up(&bob, &base, "bob").await;
    bob.goto(&format!("{base}{post_path}")).await;
    let spam = reply(&bob, None, "Cheap watches at example.invalid!").await;
    alice.goto(&format!("{base}{post_path}")).await;
    alice.submit(&format!("#c{spam} form[action$='/mod'] button[value=remove]")).await;
    assert!(alice.text(&format!("#c{spam} .removed-note")).await.contains("removed"));
    bob.goto(&format!("{base}{post_path}")).await;
    assert!(bob.text(&format!("#c{spam} .removed-note")).await.contains("removed by a moderator"));
    assert!(!bob.source().await.contains("Cheap watches"), "the text is gone for its author too");
    let anonymous = app.get(&post_path).await.text().await.unwrap_or_default();
    assert!(!anonymous.contains("Cheap watches") && anonymous.contains("Level three"));

    // Reports reach the moderators' queue; the mod log records the removal.
    bob.click(&format!("#c{one} > .comment-content details.report > summary")).await;
    bob.click(&format!("#report-rule-{one} option[value='1']")).await;
    bob.fill(&format!("#report-{one}"), "Bananas are off topic").await;
    bob.submit(&format!("#c{one} > .comment-content details.report button[type=submit]")).await;
    assert!(bob.text("p.notice[role=status]").await.contains("moderators will look"));
    alice.goto(&format!("{base}/c/gardening/mod")).await;
    let queue = alice.text("main table").await;
    assert!(queue.contains("Bananas are off topic") && queue.contains("Rule: Be kind"), "{queue}");
    alice.submit("main table form button[type=submit]").await;
    assert!(alice.text("p.notice[role=status]").await.contains("closed"));
    alice.goto(&format!("{base}/c/gardening/modlog")).await;
    assert!(alice.text("main table").await.contains("comment.remove"));

    if javascript {
        assert_no_console_errors(&alice).await;
    }
    drop((alice, bob));
    app.stop().await;
}

async fn assert_no_console_errors(browser: &Browser) {
    let errors: Vec<Value> = browser.console().await.into_iter().filter(|m| m["level"] == "SEVERE").collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_works_in_a_real_browser() {
    journey(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_works_with_javascript_off() {
    journey(false).await;
}

/// A community with a long thread: a deep chain (past the page's depth) and siblings.
async fn seed_thread(app: &TestApp) -> (String, i64) {
    let owner = app.register("gardener").await;
    let token = owner["access_token"].as_str().unwrap_or_default().to_owned();
    let community = json!({"name": "gardening", "title": "Gardening", "description": "Growing food and flowers in small spaces.", "rules": ["Be kind", "No spam"]});
    assert_eq!(app.post_json("/api/v1/communities", &community, Some(&token)).await.status(), 201);
    let titles = [
        "Tomatoes in November: ripen indoors or give up?",
        "My balcony herb garden after one year",
        "Which compost bin for a small flat?",
        "Show us your seedlings",
    ];
    let mut first = 0;
    for (i, title) in titles.iter().enumerate() {
        let body = json!({"title": title, "body": "Mine are still **green**, and nights are getting cold. Ideas?"});
        let post: Value = app
            .post_json("/api/v1/communities/gardening/posts", &body, Some(&token))
            .await
            .json()
            .await
            .unwrap_or_default();
        if i == 0 {
            first = post["id"].as_i64().unwrap_or_default();
        }
    }
    let mut parent: Option<i64> = None;
    let voices = [
        "Pick them and let them ripen on a windowsill.",
        "A paper bag with a banana works.",
        "The banana gives off ethylene, which ripens them.",
        "Is ethylene safe indoors?",
        "Yes, fruit makes it all the time.",
        "Good to know!",
        "Mine took two weeks.",
        "Patience is the secret ingredient.",
    ];
    for text in voices {
        let mut body = json!({"body": text});
        if let Some(parent) = parent {
            body["parent_id"] = json!(parent);
        }
        let comment: Value = app
            .post_json(&format!("/api/v1/posts/{first}/comments"), &body, Some(&token))
            .await
            .json()
            .await
            .unwrap_or_default();
        parent = comment["id"].as_i64();
    }
    for text in ["Green tomato chutney is great too.", "Fried green tomatoes!"] {
        app.post_json(&format!("/api/v1/posts/{first}/comments"), &json!({"body": text}), Some(&token)).await;
    }
    (token, first)
}

#[tokio::test(flavor = "multi_thread")]
async fn main_pages_are_accessible_and_fit_phones_and_desktops_in_both_themes() {
    let app = spawn_app().await;
    let (_token, post_id) = seed_thread(&app).await;
    let base = app.base.clone();
    let browser = Browser::start(true).await;
    sign_up(&browser, &base, "reader").await;
    let pages = [
        ("front", "/".to_owned()),
        ("post", format!("/p/{post_id}")),
        ("submit", "/submit?community=gardening".to_owned()),
    ];
    for (name, path) in &pages {
        for width in [390, 1280] {
            for dark in [false, true] {
                browser.emulate(width, dark).await;
                browser.goto(&format!("{base}{path}")).await;
                let theme = if dark { "dark" } else { "light" };
                let overflow =
                    browser.execute("return document.documentElement.scrollWidth - window.innerWidth;").await;
                assert!(overflow.as_i64().unwrap_or(1) <= 0, "{name} at {width}px scrolls sideways by {overflow}px");
                browser.screenshot(&format!("{name}-{width}-{theme}")).await;
                if width == 1280 || *name == "post" {
                    let violations = browser.accessibility_violations().await;
                    assert!(violations.is_empty(), "{name} ({width}px, {theme}): {violations:#?}");
                }
            }
        }
    }
    // The smallest phones still get no sideways scrolling.
    for (name, path) in &pages {
        browser.emulate(360, false).await;
        browser.goto(&format!("{base}{path}")).await;
        let overflow = browser.execute("return document.documentElement.scrollWidth - window.innerWidth;").await;
        assert!(overflow.as_i64().unwrap_or(1) <= 0, "{name} at 360px scrolls sideways by {overflow}px");
    }
    browser.emulate(1280, false).await;
    browser.goto(&format!("{base}/p/{post_id}")).await;
    assert!(browser.count("a.continue").await >= 1, "a chain deeper than the page shows offers to continue");

    // Keyboard: the first Tab reaches "Skip to content", which shows a visible focus ring.
    browser.press_tab().await;
    let focused = browser
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e);
             return [e.textContent.trim(), s.outlineStyle, s.outlineWidth];",
        )
        .await;
    assert_eq!(focused[0], json!("Skip to content"), "{focused}");
    assert_ne!(focused[1], json!("none"), "the focused element is outlined: {focused}");
    drop(browser);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_content_renders_as_text_and_runs_no_script() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let signed_in = app.register("mallory").await;
    let token = signed_in["access_token"].as_str().unwrap_or_default().to_owned();
    let payload = r#"<script>window.xss=1;alert(1)</script><img src=x onerror="window.xss=1;alert(1)"><svg onload=alert(1)></svg><a href="javascript:alert(1)">click</a> [md](javascript:alert(1)) <iframe src="javascript:alert(1)"></iframe><div onclick=alert(1)>broken <b>html <i>unclosed<style>body{display:none}</style>"#;
    let community = json!({"name": "hostile", "title": "\"><script>alert(1)</script><img src=x onerror=alert(1)>", "description": payload, "rules": [payload]});
    let created = app.post_json("/api/v1/communities", &community, Some(&token)).await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap_or_default());
    let post = json!({"title": "<script>alert('title')</script><img src=x onerror=\"window.xss=1\"><a href=\"javascript:alert(1)\">", "body": payload});
    let post: Value =
        app.post_json("/api/v1/communities/hostile/posts", &post, Some(&token)).await.json().await.unwrap_or_default();
    let post_id = post["id"].as_i64().unwrap_or_default();
    app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &json!({"body": payload}), Some(&token)).await;
    let bio = app.send_as(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"bio": payload})), &token).await;
    assert_eq!(bio.status(), 200);
    let link = json!({"title": "a link", "url": "javascript:alert(1)"});
    assert_eq!(app.post_json("/api/v1/communities/hostile/posts", &link, Some(&token)).await.status(), 422);

    let browser = Browser::start(true).await;
    // A username made of markup is refused, and the form shows it back as text.
    browser.goto(&format!("{base}/signup")).await;
    browser.fill("#username", "<script>alert(1)</script>").await;
    browser.fill("#email", "x@example.org").await;
    browser.fill("#password", PASSWORD).await;
    browser.submit("main form button[type=submit]").await;
    assert!(browser.text("#form-errors").await.contains("Username"));
    check_no_script_ran(&browser, "the sign-up form").await;

    for path in [
        "/".to_owned(),
        "/c/hostile".into(),
        "/c/hostile/about".into(),
        format!("/p/{post_id}"),
        "/u/mallory".into(),
        "/u/mallory?show=comments".into(),
        "/search?q=script".into(),
    ] {
        browser.goto(&format!("{base}{path}")).await;
        check_no_script_ran(&browser, &path).await;
    }
    browser.goto(&format!("{base}/p/{post_id}")).await;
    assert!(
        browser.text("article.post-full h1").await.contains("<script>alert('title')</script>"),
        "the title shows as text"
    );
    drop(browser);
    app.stop().await;
}

async fn check_no_script_ran(browser: &Browser, page: &str) {
    assert_eq!(browser.alert().await, None, "{page}: an alert opened");
    assert_eq!(browser.execute("return window.xss === undefined;").await, json!(true), "{page}: injected code ran");
    let dangerous = browser
        .execute(
            "return document.querySelectorAll('script:not([src]), main script, [onerror], [onload], [onclick], \
             a[href^=\"javascript:\" i], iframe, svg, object, embed, main style').length;",
        )
        .await;
    assert_eq!(dangerous, json!(0), "{page}: live markup from the payload");
    assert_eq!(browser.count("script").await, 1, "{page}: only our own script");
    // `<img src=x>` survives sanitizing as a harmless broken image; anything else is a finding.
    let errors: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|m| {
            m["level"] == "SEVERE" && !m["message"].as_str().unwrap_or_default().contains("Failed to load resource")
        })
        .collect();
    assert!(errors.is_empty(), "{page}: console errors {errors:#?}");
}

/// A browser-like HTTP client: keeps cookies by hand and sends our Origin on forms.
pub(crate) struct Session<'a> {
    app: &'a TestApp,
    cookies: std::collections::BTreeMap<String, String>,
    client: reqwest::Client,
}

impl<'a> Session<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
        Self { app, cookies: Default::default(), client }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep(&response);
        response
    }

    async fn post(&mut self, path: &str, origin: Option<&str>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap_or_default());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.expect("request");
        self.keep(&response);
        response
    }

    fn csrf(&self) -> String {
        self.cookies.get("agora_csrf").cloned().unwrap_or_default()
    }

    pub(crate) async fn sign_up(&mut self, username: &str) {
        self.get("/signup").await;
        let csrf = self.csrf();
        let email = format!("{username}@example.org");
        let origin = self.app.base.clone();
        let form =
            [("csrf", csrf.as_str()), ("username", username), ("email", &email), ("password", PASSWORD), ("next", "/")];
        let response = self.post("/signup", Some(&origin), &form).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(self.cookies.contains_key("agora_session") && self.cookies.contains_key("agora_refresh"));
    }
}

/// A post "Hello" by `poster` in a new community `news`.
async fn hello_in_news(app: &TestApp) -> Value {
    let token = app.token_for("poster").await;
    app.post_json("/api/v1/communities", &json!({"name": "news", "title": "News"}), Some(&token)).await;
    app.post_json("/api/v1/communities/news/posts", &json!({"title": "Hello"}), Some(&token))
        .await
        .json()
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn unsafe_page_requests_need_our_origin_and_the_form_token() {
    let app = spawn_app().await;
    let post = hello_in_news(&app).await;
    let vote_path = format!("/p/{}/vote", post["id"]);
    let mut session = Session::new(&app);
    session.sign_up("voter").await;
    let csrf = session.csrf();
    let origin = app.base.clone();

    let refused = [
        session.post(&vote_path, Some("https://evil.example"), &[("csrf", &csrf), ("value", "1")]).await,
        session.post(&vote_path, None, &[("csrf", &csrf), ("value", "1")]).await,
        session.post(&vote_path, Some(&origin), &[("csrf", "forged"), ("value", "1")]).await,
        session.post(&vote_path, Some(&origin), &[("value", "1")]).await,
    ];
    for response in refused {
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/html"));
    }
    let json_body = app
        .client
        .post(format!("{}{vote_path}", app.base))
        .header("cookie", session.cookie_header())
        .header("origin", &origin)
        .json(&json!({"csrf": csrf, "value": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(json_body.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "forms only");
    let stored: Value = app.get(&format!("/api/v1/posts/{}", post["id"])).await.json().await.unwrap_or_default();
    assert_eq!(stored["score"], 0, "nothing changed");

    let accepted = session.post(&vote_path, Some(&origin), &[("csrf", &csrf), ("value", "1")]).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let stored: Value = app.get(&format!("/api/v1/posts/{}", post["id"])).await.json().await.unwrap_or_default();
    assert_eq!(stored["score"], 1);

    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_page_csrf_refusals_total{reason=\"origin\"}"), 2.0);
    assert_eq!(metric(&scrape, "agora_page_csrf_refusals_total{reason=\"token\"}"), 2.0);
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_etags_and_the_strict_headers_and_assets_are_fingerprinted_and_precompressed() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap_or_default().to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["set-cookie"].to_str().unwrap_or_default().contains("HttpOnly; Secure; SameSite=Lax"));
    let etag = headers["etag"].to_str().unwrap_or_default().to_owned();
    let html = page.text().await.unwrap_or_default();
    assert!(html.starts_with("<!doctype html>") && html.contains("<html lang=\"en\">"));
    assert!(!html.contains(" style=") && !html.contains("<script>"), "no inline style or script");

    let cookie = headers["set-cookie"].to_str().unwrap_or_default().split(';').next().unwrap_or_default().to_owned();
    let again = app
        .client
        .get(format!("{}/", app.base))
        .header("cookie", &cookie)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap_or_default().is_empty());

    let css = html.split("href=\"/static/").nth(1).and_then(|rest| rest.split('"').next()).expect("stylesheet link");
    assert!(css.starts_with("agora.") && css.ends_with(".css") && css.len() == "agora.".len() + 12 + ".css".len());
    for (accept, encoding) in [("br", Some("br")), ("gzip", Some("gzip")), ("identity", None)] {
        let response = app
            .client
            .get(format!("{}/static/{css}", app.base))
            .header("accept-encoding", accept)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(response.headers().get("content-encoding").and_then(|v| v.to_str().ok()), encoding);
        assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/css"));
        assert!(!response.headers().contains_key("set-cookie"), "a cacheable file never sets a cookie");
    }
    let stale = app.get("/static/agora.000000000000.css").await;
    assert_eq!(stale.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_post_page_makes_the_same_number_of_queries_whatever_the_thread_size() {
    let app = spawn_app().await;
    let token = app.token_for("author").await;
    let mut ids = Vec::new();
    // Two communities, so that each post's first view fills the same caches.
    for (title, comments) in [("small", 2), ("large", 120)] {
        app.post_json("/api/v1/communities", &json!({"name": title, "title": title}), Some(&token)).await;
        let post: Value = app
            .post_json(&format!("/api/v1/communities/{title}/posts"), &json!({"title": title}), Some(&token))
            .await
            .json()
            .await
            .unwrap_or_default();
        let id = post["id"].as_i64().unwrap_or_default();
        let mut parent: Option<i64> = None;
        for n in 0..comments {
            let mut body = json!({"body": format!("comment {n}")});
            // Half a deep chain, half top-level threads.
            if n % 2 == 1
                && let Some(parent) = parent
            {
                body["parent_id"] = json!(parent);
            }
            let comment: Value = app
                .post_json(&format!("/api/v1/posts/{id}/comments"), &body, Some(&token))
                .await
                .json()
                .await
                .unwrap_or_default();
            parent = comment["id"].as_i64();
        }
        ids.push(id);
    }
    let mut session = Session::new(&app);
    session.sign_up("reader").await;
    session.get("/").await;
    // Warms what every page of this reader shares (their profile), not what a thread needs.
    app.post_json("/api/v1/communities", &json!({"name": "warmup", "title": "Warm-up"}), Some(&token)).await;
    session.get("/c/warmup").await;
    let mut per_view = Vec::new();
    for id in [ids[0], ids[1], ids[1]] {
        let before = app.scrape().await;
        assert_eq!(session.get(&format!("/p/{id}")).await.status(), 200);
        let after = app.scrape().await;
        let line = "agora_page_db_queries_sum{page=\"/p/{id}\"}";
        per_view.push(metric(&after, line) - metric(&before, line));
    }
    assert_eq!(per_view[0], per_view[1], "queries per first view: {per_view:?}");
    assert!(per_view[0] <= 8.0, "a post page takes {} units of database work", per_view[0]);
    assert_eq!(per_view[2], 0.0, "a second view of an unchanged thread is served from memory: {per_view:?}");
    app.stop().await;
}

#[tokio::test]
async fn the_front_page_is_served_from_the_listing_cache() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.get("/").await.status(), 200);
    }
    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_cache_requests_total{cache=\"listings\",result=\"miss\"}"), 1.0);
    assert_eq!(metric(&scrape, "agora_cache_requests_total{cache=\"listings\",result=\"hit\"}"), 2.0);
    let anonymous_front = "agora_page_db_queries_sum{page=\"/\"}";
    assert_eq!(metric(&scrape, anonymous_front), 1.0, "only the first view read the database (one listing query)");
    app.stop().await;
}

#[tokio::test]
async fn signed_out_browsers_are_sent_to_sign_in_and_expired_sessions_refresh_quietly() {
    let app = spawn_app().await;
    let mut session = Session::new(&app);
    let response = session.get("/submit?community=x").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/login?next=%2Fsubmit%3Fcommunity%3Dx");

    session.sign_up("sleeper").await;
    // The access cookie is gone (expired); the refresh cookie buys a new pair on the next page.
    session.cookies.remove("agora_session");
    let old_refresh = session.cookies.get("agora_refresh").cloned().unwrap_or_default();
    let page = session.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap_or_default().contains("id=\"me\">sleeper<"));
    assert!(session.cookies.contains_key("agora_session"));
    assert_ne!(session.cookies.get("agora_refresh"), Some(&old_refresh), "the refresh token rotated");
    assert_eq!(metric(&app.scrape().await, "agora_page_session_refreshes_total{outcome=\"success\"}"), 1.0);

    // A spent refresh token signs nobody in, and the cookies are cleared.
    session.cookies.remove("agora_session");
    session.cookies.insert("agora_refresh".into(), old_refresh);
    let page = session.get("/").await;
    assert!(page.text().await.unwrap_or_default().contains("href=\"/login\""));
    assert!(!session.cookies.contains_key("agora_refresh"));
    app.stop().await;
}

#[tokio::test]
async fn missing_pages_get_a_friendly_page_and_the_api_keeps_problem_json() {
    let app = spawn_app().await;
    for path in ["/p/999999", "/c/nowhere", "/u/nobody", "/no/such/page", "/p/not-a-number"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap_or_default().starts_with("text/html"), "{path}");
        assert!(response.headers().contains_key("content-security-policy"));
        let html = response.text().await.unwrap_or_default();
        assert!(html.contains("<h1>Not found</h1>") && html.contains("href=\"/\""), "{path}: {html}");
    }
    let response = app.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let bad_sort = app.get("/?sort=sideways").await;
    assert_eq!(bad_sort.status(), 400);
    assert!(bad_sort.text().await.unwrap_or_default().contains("bad parameter"));
    app.stop().await;
}

#[tokio::test]
async fn the_sign_in_form_shares_the_api_sign_in_allowance() {
    let app = spawn_app_with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.auth_per_minute = 3;
    })
    .await;
    let mut session = Session::new(&app);
    session.get("/login").await;
    let csrf = session.csrf();
    let origin = app.base.clone();
    for _ in 0..3 {
        let form = [("csrf", csrf.as_str()), ("login", "nobody"), ("password", "wrong-password"), ("next", "/")];
        let response = session.post("/login", Some(&origin), &form).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a wrong password shows the form again");
        assert!(response.text().await.unwrap_or_default().contains("Wrong username, email or password"));
    }
    let form = [("csrf", csrf.as_str()), ("login", "nobody"), ("password", "wrong-password"), ("next", "/")];
    let refused = session.post("/login", Some(&origin), &form).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.text().await.unwrap_or_default().contains("Slow down"));
    let api = app.post_json("/api/v1/auth/login", &json!({"login": "nobody", "password": "x"}), None).await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS, "one allowance for both doors");
    app.stop().await;
}

impl Session<'_> {
    /// Posts a form with this session's token from our own origin.
    pub(crate) async fn form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf();
        let origin = self.app.base.clone();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(path, Some(&origin), &form).await
    }

    pub(crate) async fn html(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap_or_default()
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn moderators_lock_pin_and_ban_from_the_pages() {
    let app = spawn_app().await;
    let mut moderator = Session::new(&app);
    moderator.sign_up("mod").await;
    let created = moderator
        .form("/communities/new", &[("name", "town"), ("title", "Town"), ("description", ""), ("rules", "Be civil")])
        .await;
    assert_eq!(location(&created), "/c/town");
    let first =
        moderator.form("/submit", &[("community", "town"), ("title", "Old news"), ("url", ""), ("body", "")]).await;
    let second = moderator
        .form(
            "/submit",
            &[
                ("community", "town"),
                ("title", "Town meeting notes"),
                ("url", "https://example.org/notes"),
                ("body", ""),
            ],
        )
        .await;
    let (first, second) = (location(&first), location(&second));
    assert!(first.starts_with("/p/") && second.starts_with("/p/"));

    // Pin the older post: it leads the community page.
    assert_eq!(moderator.form(&format!("{first}/mod"), &[("action", "pin"), ("reason", "")]).await.status(), 303);
    let page = moderator.html("/c/town").await;
    let (old, notes) = (page.find("Old news").unwrap_or(usize::MAX), page.find("Town meeting notes").unwrap_or(0));
    assert!(old < notes && page.contains("pinned"), "the pinned post comes first");

    // Lock it: the reply form is gone and replies are refused.
    let mut member = Session::new(&app);
    member.sign_up("member").await;
    assert_eq!(moderator.form(&format!("{first}/mod"), &[("action", "lock"), ("reason", "")]).await.status(), 303);
    let page = member.html(&first).await;
    assert!(page.contains("This post is locked") && !page.contains("id=\"reply-post\""));
    let refused = member.form(&format!("{first}/reply"), &[("body", "let me in")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap_or_default().contains("locked"));

    // Ban the member: their next post is refused with a page saying why.
    let banned = moderator.form("/c/town/ban", &[("username", "member"), ("reason", "spam"), ("days", "7")]).await;
    assert_eq!(location(&banned), "/c/town/mod?notice=banned");
    assert!(moderator.html("/c/town/mod?notice=banned").await.contains("is banned"));
    let refused = member.form("/submit", &[("community", "town"), ("title", "hello"), ("url", ""), ("body", "")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap_or_default().contains("banned"));
    let log = moderator.html("/c/town/modlog").await;
    for action in ["post.pin", "post.lock", "ban"] {
        assert!(log.contains(action), "{action} in the mod log");
    }

    // Members cannot moderate.
    let denied = member.form(&format!("{second}/mod"), &[("action", "remove"), ("reason", "")]).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(member.get("/c/town/mod").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(member.get("/c/town/settings").await.status(), StatusCode::FORBIDDEN);

    // Community settings: title, rules, the summaries switch, and the moderator list.
    let saved = moderator
        .form(
            "/c/town/settings",
            &[("title", "Our Town"), ("description", "Local news."), ("rules", "Be civil\nNo ads")],
        )
        .await;
    assert_eq!(location(&saved), "/c/town/settings?saved=1");
    let community: Value = app.get("/api/v1/communities/town").await.json().await.unwrap_or_default();
    assert_eq!(community["title"], "Our Town");
    assert_eq!(community["rules"], json!(["Be civil", "No ads"]));
    assert_eq!(community["summaries_enabled"], false, "an unchecked box switches summaries off");
    let page = moderator.html("/c/town/settings?saved=1").await;
    assert!(page.contains("Saved.") && !page.contains(" checked"));
    let mut helper = Session::new(&app);
    helper.sign_up("helper").await;
    moderator.form("/c/town/moderators", &[("username", "helper"), ("action", "add")]).await;
    assert_eq!(helper.get("/c/town/settings").await.status(), 200, "a new moderator may");
    moderator.form("/c/town/moderators", &[("username", "helper"), ("action", "remove")]).await;
    assert_eq!(helper.get("/c/town/settings").await.status(), StatusCode::FORBIDDEN, "and no longer");
    app.stop().await;
}

#[tokio::test]
async fn authors_edit_and_delete_their_posts_and_comments() {
    let app = spawn_app().await;
    let mut author = Session::new(&app);
    author.sign_up("author").await;
    author.form("/communities/new", &[("name", "notes"), ("title", "Notes"), ("description", ""), ("rules", "")]).await;
    let post = location(
        &author.form("/submit", &[("community", "notes"), ("title", "Frist"), ("url", ""), ("body", "typo")]).await,
    );
    let edited = author.form(&format!("{post}/edit"), &[("title", "First"), ("body", "fixed")]).await;
    assert_eq!(location(&edited), post);
    let page = author.html(&post).await;
    assert!(page.contains("<h1>First</h1>") && page.contains("fixed") && page.contains("edited"));
    let empty = author.form(&format!("{post}/edit"), &[("title", ""), ("body", "x")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY, "the form comes back with the error");

    let reply = location(&author.form(&format!("{post}/reply"), &[("body", "a comment")]).await);
    let comment_id = reply.rsplit("#c").next().unwrap_or_default().to_owned();
    let edit_form = author.html(&format!("/comments/{comment_id}/edit")).await;
    assert!(edit_form.contains(">a comment</textarea>"));
    author.form(&format!("/comments/{comment_id}/edit"), &[("body", "a better comment")]).await;
    assert!(author.html(&post).await.contains("a better comment"));

    // Someone else can neither edit nor delete them.
    let mut other = Session::new(&app);
    other.sign_up("other").await;
    assert_eq!(other.get(&format!("{post}/edit")).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(other.form(&format!("/comments/{comment_id}/delete"), &[]).await.status(), StatusCode::FORBIDDEN);

    author.form(&format!("/comments/{comment_id}/delete"), &[]).await;
    author.form(&format!("{post}/delete"), &[]).await;
    let page = author.html(&post).await;
    assert!(page.contains("[deleted]") && !page.contains("a better comment"));
    assert!(!author.html("/").await.contains("First"), "a deleted post leaves the front page at once");
    app.stop().await;
}

#[tokio::test]
async fn settings_change_email_preferences_and_the_password() {
    let app = spawn_app().await;
    let mut user = Session::new(&app);
    user.sign_up("settler").await;
    let page = user.html("/settings").await;
    assert!(page.contains("settler@example.org") && page.matches(" checked").count() == 3);
    let saved = user.form("/settings", &[("email_on_mention", "on")]).await;
    assert_eq!(location(&saved), "/settings?saved=notifications");
    let page = user.html("/settings?saved=notifications").await;
    assert!(page.contains("Your settings are saved") && page.matches(" checked").count() == 1);
    let login = app.post_json("/api/v1/auth/login", &json!({"login": "settler", "password": PASSWORD}), None).await;
    let signed_in: Value = login.json().await.unwrap_or_default();
    let token = signed_in["access_token"].as_str().unwrap_or_default();
    let me: Value = app.get_as("/api/v1/me", token).await.json().await.unwrap_or_default();
    assert_eq!(
        me["notification_settings"],
        json!({"email_on_reply": false, "email_on_mention": true, "email_on_message": false})
    );

    let saved = user.form("/settings/profile", &[("bio", "I grow *tomatoes*.")]).await;
    assert_eq!(location(&saved), "/settings?saved=profile");
    assert!(user.html("/settings?saved=profile").await.contains(">I grow *tomatoes*.</textarea>"));
    assert!(user.html("/u/settler").await.contains("I grow <em>tomatoes</em>."), "the profile shows it rendered");

    let wrong =
        user.form("/settings/password", &[("current_password", "not-it"), ("new_password", "another-password")]).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap_or_default().contains("Current password: is not your current password"));
    let changed =
        user.form("/settings/password", &[("current_password", PASSWORD), ("new_password", "another-password")]).await;
    assert_eq!(location(&changed), "/settings?saved=password");
    assert!(user.html("/settings?saved=password").await.contains("id=\"me\">settler<"), "this browser stays signed in");
    let old = app.post_json("/api/v1/auth/login", &json!({"login": "settler", "password": PASSWORD}), None).await;
    assert_eq!(old.status(), 401);
    let new =
        app.post_json("/api/v1/auth/login", &json!({"login": "settler", "password": "another-password"}), None).await;
    assert_eq!(new.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn search_profiles_and_the_community_directory() {
    let app = spawn_app().await;
    let mut user = Session::new(&app);
    user.sign_up("writer").await;
    user.form(
        "/communities/new",
        &[("name", "birds"), ("title", "Birdwatching"), ("description", "Feathers."), ("rules", "")],
    )
    .await;
    let post = location(
        &user
            .form(
                "/submit",
                &[
                    ("community", "birds"),
                    ("title", "A kingfisher at dawn"),
                    ("url", ""),
                    ("body", "Blue flash over the river."),
                ],
            )
            .await,
    );
    user.form(&format!("{post}/reply"), &[("body", "It came back the next morning.")]).await;

    let found = user.html("/search?q=kingfisher").await;
    assert!(found.contains("A kingfisher at dawn") && found.contains("value=\"kingfisher\""));
    assert!(user.html("/search?q=penguin").await.contains("No posts match"));
    let profile = user.html("/u/writer").await;
    assert!(profile.contains("A kingfisher at dawn") && profile.contains("karma"));
    assert!(user.html("/u/writer?show=comments").await.contains("It came back the next morning."));
    let directory = user.html("/communities").await;
    assert!(directory.contains("c/birds") && directory.contains("Birdwatching") && directory.contains("joined"));
    let about = user.html("/c/birds/about").await;
    assert!(about.contains("Feathers.") && about.contains("href=\"/u/writer\""));
    let left = user.form("/c/birds/membership", &[("action", "leave")]).await;
    assert_eq!(location(&left), "/c/birds");
    assert!(user.html("/c/birds").await.contains("value=\"join\""));
    let new_tab = user.html("/?sort=top&t=week").await;
    assert!(new_tab.contains("aria-current=\"page\">Top<") && new_tab.contains("aria-current=\"page\">This week<"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_box_loads_in_place_and_works_without_javascript() {
    let app = spawn_app_with(|config| {
        config.summaries.page_min_comments = 5;
        config.queue.poll_interval_ms = 50;
    })
    .await;
    let (_token, post_id) = seed_thread(&app).await;
    let browser = Browser::start(true).await;
    browser.goto(&format!("{}/p/{post_id}", app.base)).await;
    browser.click("[data-summary-url]").await;
    let summary = eventually(Duration::from_secs(30), "the summary in the box", || async {
        let text = browser.text(".summary-box .summary-text").await;
        (!text.is_empty()).then_some(text)
    })
    .await;
    assert!(summary.to_lowercase().contains("banana") || summary.to_lowercase().contains("ripen"), "{summary}");
    assert!(browser.text(".summary-box .summary-status").await.contains("extractive"));
    assert_no_console_errors(&browser).await;
    drop(browser);

    let mut session = Session::new(&app);
    let page = session.html(&format!("/p/{post_id}/summary")).await;
    assert!(page.contains("By extractive"), "the page without script shows the stored summary");
    let small: Value = app.get("/api/v1/posts?sort=new&limit=1").await.json().await.unwrap_or_default();
    let quiet = session.html(&format!("/p/{}", small["items"][0]["id"])).await;
    assert!(!quiet.contains("summary-box"), "short threads have no summary box");
    app.stop().await;
}

#[tokio::test]
async fn the_unsubscribe_page_asks_first_then_turns_the_emails_off_without_sign_in() {
    let app = spawn_app().await;
    let signed_in = app.register("reader").await;
    let token = signed_in["access_token"].as_str().unwrap_or_default().to_owned();
    let user_id = signed_in["user"]["id"].as_i64().unwrap_or_default();
    let link_token = app.app().state().auth.keys.issue_unsubscribe(user_id, "replies").expect("token");
    let settings = || async {
        let me: Value = app.get_as("/api/v1/me", &token).await.json().await.unwrap_or_default();
        me["notification_settings"].clone()
    };

    let mut browser = Session::new(&app);
    let page = browser.html(&format!("/unsubscribe?token={link_token}")).await;
    assert!(page.contains("Stop these emails"));
    assert_eq!(
        settings().await,
        json!({"email_on_reply": true, "email_on_mention": true, "email_on_message": true}),
        "opening the link changes nothing"
    );
    let done = browser.form("/unsubscribe", &[("token", &link_token)]).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap_or_default().contains("no longer get emails about replies to you"));
    assert_eq!(settings().await, json!({"email_on_reply": false, "email_on_mention": true, "email_on_message": true}));
    let forged = browser.form("/unsubscribe", &[("token", "not-a-token")]).await;
    assert_eq!(forged.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn nul_bytes_and_overlong_input_in_addresses_are_refused_not_500s() {
    let app = spawn_app().await;
    let long = "x".repeat(3000);
    for (path, status) in [
        ("/c/%00".to_owned(), 404),
        ("/c/%00/about".to_owned(), 404),
        ("/search?q=%00".to_owned(), 422),
        (format!("/search?q={long}"), 422),
        ("/?cursor=garbage".to_owned(), 422),
        ("/u/nobody?before=1_x".to_owned(), 400),
        ("/api/v1/communities/%00".to_owned(), 404),
        ("/api/v1/posts?community=%00".to_owned(), 404),
        ("/api/v1/search?q=%00".to_owned(), 422),
    ] {
        assert_eq!(app.get(&path).await.status().as_u16(), status, "{path}");
    }
    let mut session = Session::new(&app);
    session.get("/login").await;
    let big = "a".repeat(300_000);
    let response = session.form("/login", &[("login", &big), ("password", "x")]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn writes_through_the_pages_show_at_once_on_the_shared_anonymous_pages_and_in_the_api() {
    let app = spawn_app().await;
    let post = hello_in_news(&app).await;
    let id = post["id"].as_i64().unwrap_or_default();
    let path = format!("/p/{id}");
    let page = async |app: &TestApp| app.get(&path).await.text().await.unwrap_or_default();
    // Two anonymous views: the second is the shared page, each with its browser's own form token.
    let (first, second) = (page(&app).await, page(&app).await);
    assert!(first.contains("title=\"score\">0<") && second.contains("title=\"score\">0<"));
    let token_in = |html: &str| html.split("name=\"csrf\" value=\"").nth(1).map(|rest| rest[..10].to_owned());
    assert_ne!(token_in(&first), token_in(&second), "each browser gets its own token");
    app.get("/").await;

    let mut session = Session::new(&app);
    session.sign_up("voter").await;
    let csrf = session.csrf();
    let origin = app.base.clone();
    let voted = session.post(&format!("/p/{id}/vote"), Some(&origin), &[("csrf", &csrf), ("value", "1")]).await;
    assert_eq!(voted.status(), StatusCode::SEE_OTHER);
    assert!(page(&app).await.contains("title=\"score\">1<"), "the shared page shows the vote");
    let api: Value = app.get(&format!("/api/v1/posts/{id}")).await.json().await.unwrap_or_default();
    assert_eq!(api["score"], 1);
    let replied = session
        .post(&format!("/p/{id}/reply"), Some(&origin), &[("csrf", &csrf), ("body", "a reply from the page")])
        .await;
    assert_eq!(replied.status(), StatusCode::SEE_OTHER);
    assert!(page(&app).await.contains("a reply from the page"));
    assert!(app.get("/").await.text().await.unwrap_or_default().contains("1 comment"));
    let tree: Value = app.get(&format!("/api/v1/posts/{id}/comments")).await.json().await.unwrap_or_default();
    assert_eq!(tree["items"][0]["body"], "a reply from the page");
    app.stop().await;
}
