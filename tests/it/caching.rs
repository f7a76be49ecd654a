//! The response cache: every write is seen by the very next read (the writer's and an
//! anonymous reader's, no waiting), hits answer from memory with ETags and ready encodings, and
//! several daemons on one database keep each other's caches true over LISTEN/NOTIFY.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, metric, spawn_app};

impl TestApp {
    /// `GET path` as JSON, anonymously or with a token.
    async fn read(&self, path: &str, token: Option<&str>) -> Value {
        let response = match token {
            Some(token) => self.get_as(path, token).await,
            None => self.get(path).await,
        };
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// Reads `path` as anonymous and as `token`, so that both answers are cached.
    async fn warm(&self, path: &str, token: &str) {
        self.read(path, None).await;
        self.read(path, Some(token)).await;
    }
}

fn titles(listing: &Value) -> Vec<String> {
    listing["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn every_write_is_seen_by_the_next_read_of_its_writer_and_of_anonymous_readers() {
    let app = spawn_app().await;
    let author = app.token_for("author").await;
    let voter = app.token_for("voter").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&author)).await;
    let listing = "/api/v1/posts?community=town&sort=new";
    app.warm(listing, &author).await;

    // A new post.
    let post: Value = app
        .post_json("/api/v1/communities/town/posts", &json!({"title": "first"}), Some(&author))
        .await
        .json()
        .await
        .unwrap();
    let id = post["id"].as_i64().unwrap();
    assert_eq!(titles(&app.read(listing, None).await), ["first"]);
    assert_eq!(titles(&app.read(listing, Some(&author)).await), ["first"]);

    // A vote: the post, the listing and the voter's own view; the author's karma.
    let post_path = format!("/api/v1/posts/{id}");
    app.warm(&post_path, &voter).await;
    app.warm(listing, &voter).await;
    app.warm("/api/v1/users/author", &voter).await;
    let vote = app.send_as(Method::PUT, &format!("{post_path}/vote"), Some(json!({"value": 1})), &voter).await;
    assert_eq!(vote.status(), 200);
    assert_eq!(app.read(&post_path, None).await["score"], 1);
    assert_eq!(app.read(&post_path, None).await["my_vote"], 0);
    let seen_by_voter = app.read(&post_path, Some(&voter)).await;
    assert_eq!((seen_by_voter["score"].as_i64(), seen_by_voter["my_vote"].as_i64()), (Some(1), Some(1)));
    assert_eq!(app.read(listing, Some(&voter)).await["items"][0]["my_vote"], 1);
    assert_eq!(app.read(listing, None).await["items"][0]["score"], 1);
    assert_eq!(app.read("/api/v1/users/author", None).await["karma"], 1);

    // A comment: the tree and the post's count; then a vote on it.
    let tree_path = format!("/api/v1/posts/{id}/comments");
    app.warm(&tree_path, &voter).await;
    let comment: Value = app
        .post_json(&format!("/api/v1/posts/{id}/comments"), &json!({"body": "hello"}), Some(&author))
        .await
        .json()
        .await
        .unwrap();
    let comment_id = comment["id"].as_i64().unwrap();
    assert_eq!(app.read(&tree_path, None).await["items"][0]["body"], "hello");
    assert_eq!(app.read(&post_path, Some(&voter)).await["comment_count"], 1);
    assert_eq!(app.read(listing, None).await["items"][0]["comment_count"], 1);
    let subtree_path = format!("/api/v1/comments/{comment_id}");
    app.warm(&subtree_path, &voter).await;
    let vote = app
        .send_as(Method::PUT, &format!("/api/v1/comments/{comment_id}/vote"), Some(json!({"value": -1})), &voter)
        .await;
    assert_eq!(vote.status(), 200);
    let tree = app.read(&tree_path, Some(&voter)).await;
    assert_eq!((tree["items"][0]["score"].as_i64(), tree["items"][0]["my_vote"].as_i64()), (Some(-1), Some(-1)));
    assert_eq!(app.read(&subtree_path, None).await["score"], -1);
    assert_eq!(app.read(&tree_path, None).await["items"][0]["my_vote"], 0);

    // Edits.
    let edit = app.send_as(Method::PATCH, &post_path, Some(json!({"title": "renamed"})), &author).await;
    assert_eq!(edit.status(), 200);
    assert_eq!(app.read(&post_path, None).await["title"], "renamed");
    assert_eq!(titles(&app.read(listing, Some(&voter)).await), ["renamed"]);
    let edit = app.send_as(Method::PATCH, &subtree_path, Some(json!({"body": "hello again"})), &author).await;
    assert_eq!(edit.status(), 200);
    assert_eq!(app.read(&tree_path, None).await["items"][0]["body"], "hello again");
    assert_eq!(app.read(&subtree_path, Some(&voter)).await["body"], "hello again");

    // The community: its text and its members.
    app.warm("/api/v1/communities/town", &voter).await;
    let edit =
        app.send_as(Method::PATCH, "/api/v1/communities/town", Some(json!({"title": "Our town"})), &author).await;
    assert_eq!(edit.status(), 200);
    assert_eq!(app.read("/api/v1/communities/town", None).await["title"], "Our town");
    let members_before = app.read("/api/v1/communities/town", None).await["member_count"].as_i64().unwrap();
    let join = app.send_as(Method::PUT, "/api/v1/communities/town/membership", None, &voter).await;
    assert_eq!(join.status(), 204);
    assert_eq!(app.read("/api/v1/communities/town", Some(&voter)).await["is_member"], true);
    assert_eq!(app.read("/api/v1/communities/town", None).await["is_member"], false);
    assert_eq!(app.read("/api/v1/communities/town", None).await["member_count"], members_before + 1);

    // A profile.
    let bio = app.send_as(Method::PATCH, "/api/v1/me", Some(json!({"bio": "I vote"})), &voter).await;
    assert_eq!(bio.status(), 200);
    assert_eq!(app.read("/api/v1/users/voter", None).await["bio"], "I vote");

    // Moderation and deletion.
    let removed = app
        .send_as(
            Method::POST,
            &format!("/api/v1/mod/comments/{comment_id}/remove"),
            Some(json!({"reason": "no"})),
            &author,
        )
        .await;
    assert_eq!(removed.status(), 200);
    assert_eq!(app.read(&tree_path, None).await["items"][0]["removed"], true);
    let removed = app
        .send_as(Method::POST, &format!("/api/v1/mod/posts/{id}/remove"), Some(json!({"reason": "no"})), &author)
        .await;
    assert_eq!(removed.status(), 200);
    assert_eq!(titles(&app.read(listing, None).await), Vec::<String>::new());
    assert_eq!(app.read(&post_path, Some(&voter)).await["removed"], true);
    app.stop().await;
}

#[tokio::test]
async fn hits_answer_from_memory_with_an_etag_and_ready_encodings() {
    let app = spawn_app().await;
    let token = app.token_for("ann").await;
    app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&token)).await;
    let post: Value = app
        .post_json("/api/v1/communities/town/posts", &json!({"title": "hi"}), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{}/api/v1/posts/{}", app.base, post["id"]);
    let first = app.client.get(&path).send().await.unwrap();
    assert_eq!(first.headers()["x-cache"], "miss");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    let second = app.client.get(&path).send().await.unwrap();
    assert_eq!(second.headers()["x-cache"], "hit");
    assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
    let unchanged = app.client.get(&path).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(unchanged.status(), 304);

    let gzipped = app.client.get(&path).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let bytes = gzipped.bytes().await.unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), body);
    let brotli = app.client.get(&path).header("accept-encoding", "br").send().await.unwrap();
    assert_eq!(brotli.headers()["content-encoding"], "br");

    // A reader with a vote gets their own bytes, under their own ETag.
    app.send_as(Method::PUT, &format!("/api/v1/posts/{}/vote", post["id"]), Some(json!({"value": 1})), &token).await;
    let own = app.client.get(&path).bearer_auth(&token).send().await.unwrap();
    let own_etag = own.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(own.json::<Value>().await.unwrap()["my_vote"], 1);
    let shared = app.client.get(&path).send().await.unwrap();
    assert_ne!(shared.headers()["etag"].to_str().unwrap(), own_etag);
    assert_eq!(shared.json::<Value>().await.unwrap()["my_vote"], 0);

    let scrape = app.scrape().await;
    for series in [
        "agora_cache_requests_total{cache=\"posts\",result=\"hit\"}",
        "agora_cache_requests_total{cache=\"posts\",result=\"miss\"}",
        "agora_cache_invalidations_total{cache=\"posts\",source=\"local\"}",
        "agora_cache_weighted_bytes{cache=\"posts\"}",
    ] {
        assert!(metric(&scrape, series) > 0.0, "{series} in\n{scrape}");
    }
    assert_eq!(metric(&scrape, "agora_cache_max_bytes"), 64.0 * 1024.0 * 1024.0);
    assert_eq!(metric(&scrape, "agora_cache_listener_up"), 1.0);
    assert!(scrape.contains("agora_cache_evictions_total{cache=\"listings\",cause=\"size\"} 0"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_on_one_database_see_each_others_writes_and_recover_a_lost_listener() {
    let (a, b, _keys) = crate::harness::two_daemons().await;
    let token = a.token_for("ann").await;
    a.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town"}), Some(&token)).await;
    let listing = "/api/v1/posts?community=town&sort=new";
    // Each daemon publishes once it sees the other listening.
    for app in [&a, &b] {
        eventually(Duration::from_secs(5), "the other daemon's listener", || async {
            (metric(&app.scrape().await, "agora_cache_peer_daemons") == 1.0).then_some(())
        })
        .await;
    }

    // b flushed when it connected and flushes once more when a has surely seen it.
    eventually(Duration::from_secs(5), "b's second flush", || async {
        let scrape = b.scrape().await;
        (metric(&scrape, "agora_cache_invalidations_total{cache=\"listings\",source=\"notify\"}") >= 2.0).then_some(())
    })
    .await;
    assert_eq!(titles(&b.read(listing, None).await), Vec::<String>::new());
    assert_eq!(b.get(listing).await.headers()["x-cache"], "hit");
    a.post_json("/api/v1/communities/town/posts", &json!({"title": "from a"}), Some(&token)).await;
    eventually(Duration::from_secs(1), "a's post on b", || async {
        (titles(&b.read(listing, None).await) == ["from a"]).then_some(())
    })
    .await;
    let post_id = a.read(listing, None).await["items"][0]["id"].as_i64().unwrap();
    let post_path = format!("/api/v1/posts/{post_id}");
    b.read(&post_path, None).await;
    let vote = b.send_as(Method::PUT, &format!("{post_path}/vote"), Some(json!({"value": 1})), &token).await;
    assert_eq!(vote.status(), 200);
    assert_eq!(b.read(&post_path, None).await["score"], 1, "on the daemon that took the vote, at once");
    eventually(Duration::from_secs(1), "b's vote on a", || async {
        (a.read(&post_path, None).await["score"] == 1).then_some(())
    })
    .await;

    // A change nobody announces (straight into the database) stays unseen while b's cache
    // holds the post; losing the listening connection flushes it.
    b.read(&post_path, None).await;
    b.db.execute(&format!("UPDATE posts SET title = 'changed quietly' WHERE id = {post_id}")).await;
    assert_eq!(b.read(&post_path, None).await["title"], "from a", "served from b's cache");
    b.db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'agora cache listener' AND datname = current_database()",
    )
    .await;
    eventually(Duration::from_secs(5), "b flushes and reconnects", || async {
        let scrape = b.scrape().await;
        (metric(&scrape, "agora_cache_listener_reconnects_total") >= 1.0
            && metric(&scrape, "agora_cache_listener_up") == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(b.read(&post_path, None).await["title"], "changed quietly");
    // And it hears a again.
    for app in [&a, &b] {
        eventually(Duration::from_secs(5), "the listeners again", || async {
            (metric(&app.scrape().await, "agora_cache_peer_daemons") == 1.0).then_some(())
        })
        .await;
    }
    b.read(listing, None).await;
    a.post_json("/api/v1/communities/town/posts", &json!({"title": "again"}), Some(&token)).await;
    eventually(Duration::from_secs(1), "a's second post on b", || async {
        (titles(&b.read(listing, None).await) == ["again", "changed quietly"]).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}
