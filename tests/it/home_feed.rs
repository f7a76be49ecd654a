//! The home feed: `GET /api/v1/posts?feed=subscribed` lists the posts of the communities the
//! caller joined, in every sort, keyset-paginated, fresh after a join or leave; the front page
//! of a member shows it by default with a tab for everything.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::spawn_app;

fn titles(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_subscribed_feed_holds_the_joined_communities_posts_in_every_sort() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    for name in ["cats", "dogs", "fish"] {
        let created = app.post_json("/api/v1/communities", &json!({"name": name, "title": name}), Some(&ann)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        for n in 0..3 {
            let body = json!({"title": format!("{name} {n}")});
            let response = app.post_json(&format!("/api/v1/communities/{name}/posts"), &body, Some(&ann)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }
    // Bob joins cats and fish: his feed holds their six posts, in every sort.
    for name in ["cats", "fish"] {
        let joined =
            app.send_as(reqwest::Method::PUT, &format!("/api/v1/communities/{name}/membership"), None, &bob).await;
        assert_eq!(joined.status(), StatusCode::NO_CONTENT);
    }
    for sort in ["hot", "new", "top", "controversial", "active"] {
        let page: Value =
            app.get_as(&format!("/api/v1/posts?feed=subscribed&sort={sort}&t=all"), &bob).await.json().await.unwrap();
        let mut got = titles(&page);
        got.sort();
        assert_eq!(got, ["cats 0", "cats 1", "cats 2", "fish 0", "fish 1", "fish 2"], "{sort}");
    }
    let newest: Value = app.get_as("/api/v1/posts?feed=subscribed&sort=new&limit=4", &bob).await.json().await.unwrap();
    assert_eq!(titles(&newest), ["fish 2", "fish 1", "fish 0", "cats 2"]);
    let cursor = newest["next_cursor"].as_str().unwrap().to_owned();
    let rest: Value = app
        .get_as(&format!("/api/v1/posts?feed=subscribed&sort=new&limit=4&cursor={cursor}"), &bob)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(titles(&rest), ["cats 1", "cats 0"]);
    assert!(rest["next_cursor"].is_null());

    // Leaving shows at once (the feed is cached per reader and invalidated by their memberships).
    let left = app.send_as(reqwest::Method::DELETE, "/api/v1/communities/fish/membership", None, &bob).await;
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    let after: Value = app.get_as("/api/v1/posts?feed=subscribed&sort=new", &bob).await.json().await.unwrap();
    assert_eq!(titles(&after), ["cats 2", "cats 1", "cats 0"]);
    // A new post in a joined community shows at once too.
    let body = json!({"title": "cats 3"});
    assert_eq!(app.post_json("/api/v1/communities/cats/posts", &body, Some(&ann)).await.status(), StatusCode::CREATED);
    let fresh: Value = app.get_as("/api/v1/posts?feed=subscribed&sort=new&limit=1", &bob).await.json().await.unwrap();
    assert_eq!(titles(&fresh), ["cats 3"]);

    let anonymous = app.get("/api/v1/posts?feed=subscribed").await;
    assert_eq!(problem_code(anonymous).await, (401, "unauthorized".to_owned()));
    let mixed = app.get_as("/api/v1/posts?feed=subscribed&community=cats", &bob).await;
    assert_eq!(problem_code(mixed).await, (422, "validation_failed".to_owned()));
    let all: Value = app.get_as("/api/v1/posts?feed=all&limit=100", &bob).await.json().await.unwrap();
    assert_eq!(titles(&all).len(), 10, "feed=all is every community");

    // The front page of a member is their feed, with a tab for everything.
    let front =
        app.client.get(format!("{}/", app.base)).header("cookie", format!("agora_session={bob}")).send().await.unwrap();
    let html = front.text().await.unwrap();
    assert!(html.contains("Your communities") && html.contains("cats 3") && !html.contains("dogs 0"), "home feed");
    assert!(html.contains("href=\"/all\""), "a tab for everything");
    let everything = app
        .client
        .get(format!("{}/all", app.base))
        .header("cookie", format!("agora_session={bob}"))
        .send()
        .await
        .unwrap();
    assert!(everything.text().await.unwrap().contains("dogs 0"));
    let anonymous_front = app.get("/").await.text().await.unwrap();
    assert!(anonymous_front.contains("All communities") && anonymous_front.contains("dogs 0"));
}

/// A reader of many communities gets the global index read, one of a few small ones the
/// merge of each community's index (`db::posts::merges_feed`): the same posts, in the same
/// order, either way.
#[tokio::test]
async fn a_reader_of_many_communities_gets_the_same_feed_from_the_other_plan() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let few = app.token_for("few").await;
    let many = app.token_for("many").await;
    let communities = 42;
    assert!(!agora::db::posts::merges_feed(42, 42, 42) && agora::db::posts::merges_feed(5, 5, 42));
    for n in 0..communities {
        let name = format!("c{n:03}");
        let created = app.post_json("/api/v1/communities", &json!({"name": name, "title": name}), Some(&ann)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let body = json!({"title": format!("post in {name}")});
        assert_eq!(
            app.post_json(&format!("/api/v1/communities/{name}/posts"), &body, Some(&ann)).await.status(),
            StatusCode::CREATED
        );
        let path = format!("/api/v1/communities/{name}/membership");
        assert_eq!(app.send_as(reqwest::Method::PUT, &path, None, &many).await.status(), StatusCode::NO_CONTENT);
        if n < 5 {
            assert_eq!(app.send_as(reqwest::Method::PUT, &path, None, &few).await.status(), StatusCode::NO_CONTENT);
        }
    }
    async fn every_page(app: &crate::harness::TestApp, token: &str, sort: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/api/v1/posts?feed=subscribed&sort={sort}&t=all&limit=10{cursor}");
            let page: Value = app.get_as(&path, token).await.json().await.unwrap();
            seen.extend(titles(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return seen,
            }
        }
    }
    for sort in ["new", "hot", "top"] {
        let many_feed = every_page(&app, &many, sort).await;
        assert_eq!(many_feed.len() as i64, communities, "{sort}: every joined community's post, once");
        let all: Value = app.get(&format!("/api/v1/posts?sort={sort}&t=all&limit=100")).await.json().await.unwrap();
        assert_eq!(many_feed, titles(&all), "{sort}: the order of the global listing");
        let few_feed = every_page(&app, &few, sort).await;
        let expected: Vec<String> =
            titles(&all).into_iter().filter(|t| (0..5).any(|n| t == &format!("post in c{n:03}"))).collect();
        assert_eq!(few_feed, expected, "{sort}: the merged plan keeps the order too");
    }
}
