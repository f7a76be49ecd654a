//! Posts: create, read, list by every sort, edit, delete, vote (also concurrently), search.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, spawn_app};

async fn community_with_owner(app: &TestApp, name: &str) -> String {
    let token = app.token_for(&format!("{name}_owner")).await;
    let response = app.post_json("/api/v1/communities", &json!({"name": name, "title": name}), Some(&token)).await;
    assert_eq!(response.status(), 201);
    token
}

async fn create_post(app: &TestApp, community: &str, token: &str, body: Value) -> Value {
    let response = app.post_json(&format!("/api/v1/communities/{community}/posts"), &body, Some(token)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.unwrap()
}

async fn list(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/api/v1/posts?{query}")).await.json().await.unwrap()
}

fn titles(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|p| p["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn posts_are_created_rendered_and_read_back_intact() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    let text = "Hello **world** <script>alert(1)</script> 🦀 مرحبا ' OR 1=1 --";
    let post = create_post(&app, "general", &token, json!({"title": "First 🦀 עברית", "body": text})).await;
    assert_eq!(post["title"], "First 🦀 עברית");
    assert_eq!(post["body"], text, "the Markdown source is stored intact");
    let html = post["body_html"].as_str().unwrap();
    assert!(html.contains("<strong>world</strong>") && !html.contains("<script"), "{html}");
    assert_eq!(post["community"], "general");
    assert_eq!(post["author"], "general_owner");
    assert_eq!(
        (post["score"].as_i64(), post["comment_count"].as_i64(), post["my_vote"].as_i64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(post["image"], Value::Null);
    let link = create_post(&app, "general", &token, json!({"title": "A link", "url": "https://example.com/x"})).await;
    assert_eq!(link["url"], "https://example.com/x");
    let community: Value = app.get("/api/v1/communities/general").await.json().await.unwrap();
    assert_eq!(community["post_count"], 2);
    for bad in [
        json!({"title": ""}),
        json!({"title": "x".repeat(301)}),
        json!({"title": "ok", "url": "javascript:alert(1)"}),
        json!({"title": "ok", "body": "b".repeat(40_001)}),
        json!({"title": "nul\u{0}"}),
    ] {
        let response = app.post_json("/api/v1/communities/general/posts", &bad, Some(&token)).await;
        assert_eq!(problem_code(response).await, (422, "validation_failed".into()), "{bad:.60}");
    }
    let missing = app.post_json("/api/v1/communities/nowhere/posts", &json!({"title": "x"}), Some(&token)).await;
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn only_authors_edit_and_delete_and_deletion_blanks_the_post() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    let other = app.token_for("mallory").await;
    let post = create_post(&app, "general", &token, json!({"title": "Draft", "body": "v1"})).await;
    let path = format!("/api/v1/posts/{}", post["id"]);
    let refused = app.send_as(Method::PATCH, &path, Some(json!({"title": "Pwned"})), &other).await;
    assert_eq!(problem_code(refused).await, (403, "forbidden".into()));
    let edited: Value =
        app.send_as(Method::PATCH, &path, Some(json!({"body": "v2 *new*"})), &token).await.json().await.unwrap();
    assert_eq!(edited["title"], "Draft");
    assert_eq!(edited["body_html"], "<p>v2 <em>new</em></p>\n");
    assert!(edited["edited_at"].is_string());
    assert_eq!(app.send_as(Method::DELETE, &path, None, &other).await.status(), 403);
    assert_eq!(app.send_as(Method::DELETE, &path, None, &token).await.status(), 204);
    let deleted: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        (deleted["deleted"].as_bool(), deleted["title"].as_str(), deleted["body"].as_str()),
        (Some(true), Some(""), Some(""))
    );
    let listed: Value = app.get("/api/v1/posts?sort=new").await.json().await.unwrap();
    assert!(titles(&listed).is_empty(), "deleted posts leave listings");
    assert_eq!(app.send_as(Method::PATCH, &path, Some(json!({"title": "x"})), &token).await.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn votes_count_once_change_and_clear_and_feed_karma() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    let post = create_post(&app, "general", &token, json!({"title": "Vote me"})).await;
    let voter = app.token_for("voter").await;
    let path = format!("/api/v1/posts/{}/vote", post["id"]);
    let vote = |value: i64| app.send_as(Method::PUT, &path, Some(json!({"value": value})), &voter);
    let up: Value = vote(1).await.json().await.unwrap();
    assert_eq!(up, json!({"score": 1, "upvotes": 1, "downvotes": 0, "my_vote": 1}));
    let again: Value = vote(1).await.json().await.unwrap();
    assert_eq!(again, up, "PUT is idempotent");
    let down: Value = vote(-1).await.json().await.unwrap();
    assert_eq!(down, json!({"score": -1, "upvotes": 0, "downvotes": 1, "my_vote": -1}));
    let cleared: Value = vote(0).await.json().await.unwrap();
    assert_eq!(cleared, json!({"score": 0, "upvotes": 0, "downvotes": 0, "my_vote": 0}));
    vote(1).await;
    let seen: Value = app.get_as(&format!("/api/v1/posts/{}", post["id"]), &voter).await.json().await.unwrap();
    assert_eq!(seen["my_vote"], 1);
    let author: Value = app.get("/api/v1/users/general_owner").await.json().await.unwrap();
    assert_eq!(author["karma"], 1);
    for bad in [json!({"value": 2}), json!({"value": "up"}), json!({})] {
        assert_eq!(app.send_as(Method::PUT, &path, Some(bad.clone()), &voter).await.status(), 422, "{bad}");
    }
    assert_eq!(
        app.send_as(Method::PUT, "/api/v1/posts/999999/vote", Some(json!({"value": 1})), &voter).await.status(),
        404
    );
    let anonymous = app.client.put(format!("{}{path}", app.base)).json(&json!({"value": 1})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn fifty_users_voting_at_once_give_exactly_fifty_and_one_user_twenty_times_counts_once() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    let post = create_post(&app, "general", &token, json!({"title": "Popular"})).await;
    let path = format!("/api/v1/posts/{}/vote", post["id"]);
    let mut voters = Vec::new();
    for i in 0..50 {
        voters.push(app.token_for(&format!("voter_{i}")).await);
    }
    let votes = voters.iter().map(|token| app.send_as(Method::PUT, &path, Some(json!({"value": 1})), token));
    let statuses: Vec<u16> = futures_util::future::join_all(votes).await.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let same = (0..20).map(|_| app.send_as(Method::PUT, &path, Some(json!({"value": -1})), &voters[0]));
    futures_util::future::join_all(same).await;
    let post: Value = app.get(&format!("/api/v1/posts/{}", post["id"])).await.json().await.unwrap();
    assert_eq!(
        (post["upvotes"].as_i64(), post["downvotes"].as_i64(), post["score"].as_i64()),
        (Some(49), Some(1), Some(48))
    );
    let author: Value = app.get("/api/v1/users/general_owner").await.json().await.unwrap();
    assert_eq!(author["karma"], 48, "karma follows the score exactly");
    app.stop().await;
}

#[tokio::test]
async fn every_sort_orders_as_promised_and_pinned_posts_lead_their_community() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    let mut ids = Vec::new();
    for title in ["old", "middle", "new"] {
        ids.push(create_post(&app, "general", &token, json!({"title": title})).await["id"].as_i64().unwrap());
    }
    let voters: Vec<String> = futures_util::future::join_all((0..4).map(|i| app.token_for(format!("voter{i}")))).await;
    // "old": +3 -1 (controversial-ish, top), "middle": +1, "new": 0.
    for (i, token) in voters.iter().enumerate() {
        let value = if i < 3 { 1 } else { -1 };
        app.send_as(Method::PUT, &format!("/api/v1/posts/{}/vote", ids[0]), Some(json!({"value": value})), token).await;
    }
    app.send_as(Method::PUT, &format!("/api/v1/posts/{}/vote", ids[1]), Some(json!({"value": 1})), &voters[0]).await;
    assert_eq!(titles(&list(&app, "sort=new").await), ["new", "middle", "old"]);
    assert_eq!(titles(&list(&app, "sort=top&t=all").await), ["old", "middle", "new"]);
    assert_eq!(titles(&list(&app, "sort=top&t=hour").await), ["old", "middle", "new"]);
    assert_eq!(titles(&list(&app, "sort=controversial").await)[0], "old");
    assert_eq!(titles(&list(&app, "sort=hot").await)[0], "old", "two net upvotes outweigh seconds of age");
    assert_eq!(titles(&list(&app, "sort=active").await), ["new", "middle", "old"]);
    let pinned = app.send_as(Method::POST, &format!("/api/v1/mod/posts/{}/pin", ids[1]), Some(json!({})), &token).await;
    assert_eq!(pinned.status(), 200);
    assert_eq!(titles(&list(&app, "community=general&sort=new").await), ["middle", "new", "old"], "pinned first");
    assert_eq!(titles(&list(&app, "sort=new").await), ["new", "middle", "old"], "pins only apply within a community");
    for bad in ["sort=best", "t=decade", "limit=0", "cursor=%00", "community=nope"] {
        let response = app.get(&format!("/api/v1/posts?{bad}")).await;
        assert!(response.status() == 422 || response.status() == 404, "{bad}: {}", response.status());
    }
    let hot_page: Value = list(&app, "sort=hot&limit=1").await;
    let cursor = hot_page["next_cursor"].as_str().unwrap();
    let mismatched = app.get(&format!("/api/v1/posts?sort=new&cursor={cursor}")).await;
    assert_eq!(
        problem_code(mismatched).await,
        (422, "validation_failed".into()),
        "a cursor only continues its own sort"
    );
    app.stop().await;
}

#[tokio::test]
async fn paging_through_a_listing_sees_every_post_once() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    for i in 0..23 {
        create_post(&app, "general", &token, json!({"title": format!("post {i:02}")})).await;
    }
    for sort in ["hot", "new", "top", "controversial", "active"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("/api/v1/posts?sort={sort}&limit=5");
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = app.get(&url).await.json().await.unwrap();
            seen.extend(titles(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (23, 23), "{sort}");
    }
    app.stop().await;
}

#[tokio::test]
async fn search_finds_by_words_best_match_first() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "general").await;
    create_post(&app, "general", &token, json!({"title": "Cooking pasta", "body": "Boil water, add pasta."})).await;
    create_post(
        &app,
        "general",
        &token,
        json!({"title": "Rust ownership explained", "body": "Borrowing and ownership in Rust"}),
    )
    .await;
    create_post(&app, "general", &token, json!({"title": "Gardening", "body": "Rust on leaves is a fungus"})).await;
    let page: Value = app.get("/api/v1/search?q=rust%20ownership").await.json().await.unwrap();
    assert_eq!(titles(&page), ["Rust ownership explained"]);
    let page: Value = app.get("/api/v1/search?q=rust").await.json().await.unwrap();
    assert_eq!(titles(&page)[0], "Rust ownership explained", "title matches rank above body matches");
    assert_eq!(titles(&page).len(), 2);
    let page: Value = app.get("/api/v1/search?q=rust&community=general&limit=1").await.json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app.get(&format!("/api/v1/search?q=rust&limit=1&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!(titles(&next), ["Gardening"]);
    for hostile in ["' OR 1=1 --", "\"unclosed", "a & | ! (", "🦀", "-rust"] {
        let response = app.get(&format!("/api/v1/search?q={}", percent_encode(hostile))).await;
        assert_eq!(response.status(), 200, "{hostile}");
    }
    for bad in ["q=", "q=%20", "", "q=x&limit=500"] {
        assert_eq!(app.get(&format!("/api/v1/search?{bad}")).await.status(), 422, "{bad}");
    }
    app.stop().await;
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn a_link_with_an_upper_case_scheme_is_stored_in_lower_case_not_a_500() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "links").await;
    let post =
        create_post(&app, "links", &token, json!({"title": "Shouted", "url": " HTTPS://Example.org/A?b=C "})).await;
    assert_eq!(post["url"], "https://Example.org/A?b=C", "the scheme is normalized, the rest kept");
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let token = community_with_owner(&app, "shapes").await;
    let post = create_post(&app, "shapes", &token, json!({"title": "Kept"})).await;
    let path = format!("/api/v1/posts/{}", post["id"]);
    for body in [json!([null, null]), json!(["Replaced", "text"]), json!("Replaced"), json!(3)] {
        let refused = app.send_as(Method::PATCH, &path, Some(body.clone()), &token).await;
        assert_eq!(problem_code(refused).await, (422, "validation_failed".into()), "{body}");
    }
    let vote = app.send_as(Method::PUT, &format!("{path}/vote"), Some(json!({"value": 1.0})), &token).await;
    assert_eq!(vote.status(), 200, "JSON Schema's integer 1.0 is a vote of 1");
    let fraction = app.send_as(Method::PUT, &format!("{path}/vote"), Some(json!({"value": 0.5})), &token).await;
    assert_eq!(problem_code(fraction).await, (422, "validation_failed".into()));
    let read: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!((read["title"].as_str(), read["score"].as_i64()), (Some("Kept"), Some(1)));
    app.stop().await;
}

#[tokio::test]
async fn a_create_says_where_the_new_resource_is_and_the_document_links_to_it() {
    let app = spawn_app().await;
    let token = app.token_for("placer").await;
    let created =
        app.post_json("/api/v1/communities", &json!({"name": "places", "title": "Places"}), Some(&token)).await;
    assert_eq!(created.headers()["location"], "/api/v1/communities/places");
    let post = app.post_json("/api/v1/communities/places/posts", &json!({"title": "Here"}), Some(&token)).await;
    let location = post.headers()["location"].to_str().unwrap().to_owned();
    let post: Value = post.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/posts/{}", post["id"]));
    assert_eq!(app.get(&location).await.status(), 200);
    let comment = app.post_json(&format!("{location}/comments"), &json!({"body": "there"}), Some(&token)).await;
    let comment_location = comment.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(app.get(&comment_location).await.status(), 200);
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let link = &doc["paths"]["/api/v1/communities/{name}/posts"]["post"]["responses"]["201"]["links"]["GetPost"];
    assert_eq!(link["operationRef"], "#/paths/~1api~1v1~1posts~1{id}/get");
    assert_eq!(link["parameters"]["id"], "$response.body#/id");
    app.stop().await;
}

/// The vote statement (`agora_vote_post`) keeps the counters the domain's rule says and the
/// hot rank of the shared formula, for every transition between -1, 0 and 1.
#[tokio::test]
async fn the_vote_statement_follows_the_vote_rule_and_the_hot_rank_formula() {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        same_rank: bool,
    }
    let app = spawn_app().await;
    let owner = community_with_owner(&app, "rules").await;
    let voter = app.token_for("voter").await;
    let post = create_post(&app, "rules", &owner, json!({"title": "counted"})).await;
    let path = format!("/api/v1/posts/{}/vote", post["id"]);
    let (mut previous, mut up, mut down) = (0i16, 0i32, 0i32);
    for value in [1i16, 1, -1, 0, -1, 1, 0, 0, 1] {
        let tally: Value =
            app.send_as(Method::PUT, &path, Some(json!({"value": value})), &voter).await.json().await.unwrap();
        let (delta_up, delta_down) = agora::domain::content::vote_delta(previous, value);
        (up, down, previous) = (up + delta_up, down + delta_down, value);
        assert_eq!(
            (tally["upvotes"].as_i64(), tally["downvotes"].as_i64()),
            (Some(i64::from(up)), Some(i64::from(down)))
        );
        assert_eq!(tally["score"].as_i64(), Some(i64::from(up - down)));
        let author: Value = app.get("/api/v1/users/rules_owner").await.json().await.unwrap();
        assert_eq!(author["karma"].as_i64(), Some(i64::from(up - down)), "karma follows");
    }
    let mut conn = app.db.connect().await;
    let row: Row = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(concat!(
            "SELECT abs(hot_rank - (",
            "sign(score) * log(greatest(abs(score), 1)) + extract(epoch FROM created_at) / 45000",
            ")) < 1e-9 AS same_rank FROM posts"
        )),
        &mut conn,
    )
    .await
    .unwrap();
    assert!(row.same_rank, "hot_rank is the formula of db::hot_rank_sql! on the new score");
    app.stop().await;
}

/// Search reads `post_search`, which follows every change of a post's text.
#[tokio::test]
async fn search_follows_edits_and_deletions() {
    let app = spawn_app().await;
    let owner = community_with_owner(&app, "words").await;
    let post = create_post(&app, "words", &owner, json!({"title": "aardvark sightings"})).await;
    let found = |q: &'static str| {
        let app = &app;
        async move {
            let page: Value = app.get(&format!("/api/v1/search?q={q}")).await.json().await.unwrap();
            titles(&page)
        }
    };
    assert_eq!(found("aardvark").await, ["aardvark sightings"]);
    let path = format!("/api/v1/posts/{}", post["id"]);
    let edit = app.send_as(Method::PATCH, &path, Some(json!({"title": "zebra sightings"})), &owner).await;
    assert_eq!(edit.status(), 200);
    assert_eq!(found("zebra").await, ["zebra sightings"]);
    assert!(found("aardvark").await.is_empty());
    let edit = app.send_as(Method::PATCH, &path, Some(json!({"body": "mostly at dawn"})), &owner).await;
    assert_eq!(edit.status(), 200);
    assert_eq!(found("dawn").await, ["zebra sightings"]);
    assert_eq!(app.send_as(Method::DELETE, &path, None, &owner).await.status(), 204);
    assert!(found("zebra").await.is_empty());
    app.stop().await;
}
