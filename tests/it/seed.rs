//! `agora seed` fills an empty database with a consistent data set and refuses a used one.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::{TestDb, spawn_app_on};

fn seed(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .arg("seed")
        .args(args)
        .env("AGORA_CONFIG", "/dev/null")
        .env("AGORA_DATABASE__URL", &db.url)
        .env("AGORA_LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.connect().await;
    let row: Count = diesel_async::RunQueryDsl::get_result(diesel::sql_query(sql), &mut conn).await.unwrap();
    row.n
}

#[tokio::test]
async fn seeding_builds_a_consistent_data_set_that_the_api_serves() {
    let db = TestDb::new().await;
    let args = ["--users", "60", "--communities", "5", "--posts", "120", "--comments", "6000", "--votes", "3000"];
    let (code, out, err) = seed(&db, &args);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("seeded 60 users"), "{out}");
    assert_eq!(count(&db, "SELECT count(*) AS n FROM users").await, 60);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM posts").await, 120);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM comments").await, 6000);
    assert!(count(&db, "SELECT count(*) AS n FROM comments WHERE depth >= 3").await > 0, "threads go deep");
    assert!(
        count(&db, "SELECT count(*) AS n FROM comments WHERE post_id = 1").await >= 500,
        "post 1 is the big thread"
    );
    // Every denormalized counter agrees with the rows it counts.
    let mismatches = [
        "SELECT count(*) AS n FROM posts p WHERE comment_count <> (SELECT count(*) FROM comments c WHERE c.post_id = p.id)",
        "SELECT count(*) AS n FROM posts p WHERE score <> coalesce((SELECT sum(value) FROM post_votes v WHERE v.post_id = p.id), 0)",
        "SELECT count(*) AS n FROM comments c WHERE reply_count <> (SELECT count(*) FROM comments r WHERE r.parent_id = c.id)",
        "SELECT count(*) AS n FROM communities c WHERE member_count <> (SELECT count(*) FROM community_members m WHERE m.community_id = c.id)",
        "SELECT count(*) AS n FROM comments c WHERE depth <> cardinality(path) - 1",
    ];
    for sql in mismatches {
        assert_eq!(count(&db, sql).await, 0, "{sql}");
    }
    let (code, _, err) = seed(&db, &args);
    assert_eq!(code, Some(1), "a used database is refused");
    assert!(err.contains("already has users"), "{err}");

    let app = spawn_app_on(db, |_| {}).await;
    let login =
        app.post_json("/api/v1/auth/login", &json!({"login": "user_7", "password": "seed-password"}), None).await;
    assert_eq!(login.status(), 200);
    let page: Value = app.get("/api/v1/posts?sort=hot&limit=10").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    let tree: Value = app.get("/api/v1/posts/1/comments?limit=500").await.json().await.unwrap();
    assert!(tree["items"].as_array().unwrap().len() >= 500);
    app.stop().await;
}

#[tokio::test]
async fn the_small_community_shape_has_a_300_comment_thread_five_levels_deep() {
    let db = TestDb::new().await;
    let (code, out, err) = seed(&db, &["--shape", "small-community"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("seeded 64 users, 1 communities, 1000 posts, 2000 comments"), "{out}");
    assert_eq!(count(&db, "SELECT count(*) AS n FROM comments WHERE post_id = 1").await, 300);
    assert_eq!(count(&db, "SELECT max(depth)::int8 AS n FROM comments WHERE post_id = 1").await, 5);
    assert!(count(&db, "SELECT max(depth)::int8 AS n FROM comments").await <= 5);
    assert!(count(&db, "SELECT count(*) AS n FROM post_votes").await > 4_000, "most of the votes are kept");
    let (code, _, err) = seed(&TestDb::new().await, &["--shape", "huge"]);
    assert_eq!(code, Some(2), "an unknown shape is a usage error: {err}");
}
