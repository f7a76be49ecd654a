//! Rate limits: per address on sign-in, per user once signed in, proxies only when trusted.

use std::time::Duration;

use serde_json::json;

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app_with};

async fn login(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request =
        app.client.post(format!("{}/api/v1/auth/login", app.base)).json(&json!({"login": "nobody", "password": "x"}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_sixth_sign_in_within_a_minute_is_refused_with_headers_then_allowed_again() {
    let app = spawn_app_with(|config| config.rate_limits.enabled = true).await;
    for remaining in (0..5).rev() {
        let response = login(&app, None).await;
        assert_eq!(response.status(), 401, "the attempt itself is processed");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(response.headers()["ratelimit-remaining"], remaining.to_string().as_str());
    }
    let refused = login(&app, None).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("ratelimit-reset"));
    assert_eq!(problem_code(refused).await, (429, "rate_limited".into()));
    // An untrusted peer cannot pick another address by sending X-Forwarded-For.
    assert_eq!(login(&app, Some("203.0.113.9")).await.status(), 429);
    assert!(app.scrape().await.contains(r#"agora_rate_limited_requests_total{class="auth"} 2"#));
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(login(&app, None).await.status(), 401, "allowed again once the interval has passed");
    app.stop().await;
}

#[tokio::test]
async fn trusted_proxies_name_the_client() {
    let app = spawn_app_with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    for _ in 0..5 {
        login(&app, Some("198.51.100.1")).await;
    }
    assert_eq!(login(&app, Some("198.51.100.1")).await.status(), 429);
    assert_eq!(login(&app, Some("198.51.100.2")).await.status(), 401, "another client behind the proxy");
    app.stop().await;
}

#[tokio::test]
async fn signed_in_users_have_their_own_allowance() {
    let app = spawn_app_with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.auth_per_minute = 100;
        config.rate_limits.anonymous_per_minute = 3;
        config.rate_limits.signed_in_per_minute = 6;
    })
    .await;
    let token = app.token_for("alice").await;
    for _ in 0..2 {
        assert_eq!(app.get("/api/v1/posts").await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/posts").await.status(), 429, "anonymous: 3 per minute, the registration counted");
    for _ in 0..6 {
        assert_eq!(app.get_as("/api/v1/posts", &token).await.status(), 200, "a user is limited on their own");
    }
    assert_eq!(app.get_as("/api/v1/posts", &token).await.status(), 429);
    assert_eq!(app.get("/health/live").await.status(), 200, "operations endpoints are not limited");
    app.stop().await;
}
