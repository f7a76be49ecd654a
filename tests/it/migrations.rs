//! Migrations are reversible: up, down, up again gives the same schema.

use std::process::Command;

use crate::harness::TestDb;

fn schema_dump(url: &str) -> String {
    let bindir = agora::db::cluster::find_bindir().expect("PostgreSQL binaries");
    let output = Command::new(bindir.join("pg_dump"))
        .args(["--schema-only", "--no-owner", "--no-privileges", "--dbname", url])
        .output()
        .expect("run pg_dump");
    assert!(output.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&output.stderr));
    // `\restrict` lines carry a random token per dump.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_same_schema(before: &str, after: &str) {
    let differing: Vec<_> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).take(5).collect();
    assert!(
        differing.is_empty() && before.lines().count() == after.lines().count(),
        "up -> down -> up changed the schema; first differences: {differing:?}"
    );
}

#[tokio::test]
async fn migrations_revert_cleanly_and_reapply_to_the_same_schema() {
    let db = TestDb::new().await;
    let migrated = schema_dump(&db.url);
    assert!(migrated.contains("CREATE TABLE public.posts"));

    let reverted = agora::db::migrations::revert_all(&db.url).await.expect("revert");
    assert_eq!(reverted, agora::db::migrations::count());
    let empty = schema_dump(&db.url);
    assert!(!empty.contains("CREATE TABLE public.posts"), "down migrations leave tables behind:\n{empty}");

    let applied = agora::db::migrations::run_pending(&db.url).await.expect("re-apply");
    assert_eq!(applied.len(), agora::db::migrations::count());
    assert_same_schema(&migrated, &schema_dump(&db.url));
}

#[tokio::test]
async fn names_are_unique_ignoring_case() {
    let db = TestDb::new().await;
    db.execute("INSERT INTO users (username, email, password_hash) VALUES ('Alice', 'a@example.com', 'x')").await;
    let mut conn = db.connect().await;
    let duplicate = diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "INSERT INTO users (username, email, password_hash) VALUES ('aLiCe', 'b@example.com', 'x')",
    )
    .await;
    assert!(duplicate.is_err(), "usernames differing only in case must collide");
    let duplicate_email = diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "INSERT INTO users (username, email, password_hash) VALUES ('bob', 'A@EXAMPLE.COM', 'x')",
    )
    .await;
    assert!(duplicate_email.is_err(), "emails differing only in case must collide");
}

#[tokio::test]
async fn comment_paths_and_depths_follow_their_parents() {
    let db = TestDb::new().await;
    db.execute(
        "INSERT INTO users (username, email, password_hash) VALUES ('alice', 'a@example.com', 'x');
         INSERT INTO communities (name, title, creator_id) VALUES ('rust', 'Rust', 1);
         INSERT INTO posts (community_id, author_id, title) VALUES (1, 1, 'p');
         INSERT INTO comments (post_id, author_id, body) VALUES (1, 1, 'top');
         INSERT INTO comments (post_id, parent_id, author_id, body) VALUES (1, 1, 1, 'reply');
         INSERT INTO comments (post_id, parent_id, author_id, body) VALUES (1, 2, 1, 'reply to reply');",
    )
    .await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        path: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        depth: i32,
    }
    let mut conn = db.connect().await;
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT path::text AS path, depth FROM comments ORDER BY id"),
        &mut conn,
    )
    .await
    .unwrap();
    let got: Vec<(String, i32)> = rows.into_iter().map(|r| (r.path, r.depth)).collect();
    assert_eq!(got, vec![("{1}".into(), 0), ("{1,2}".into(), 1), ("{1,2,3}".into(), 2)]);
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_its_hash_chain_exposes_tampering() {
    let db = TestDb::new().await;
    db.execute(
        "INSERT INTO users (username, email, password_hash) VALUES ('admin', 'a@example.com', 'x');
         INSERT INTO audit_log (actor_id, action, reason) VALUES (1, 'user.login_failed', 'wrong password');
         INSERT INTO audit_log (actor_id, action, reason, details) VALUES (1, 'community.ban', 'spam', '{\"days\": 3}');
         INSERT INTO audit_log (actor_id, action) VALUES (1, 'post.remove');",
    )
    .await;
    let mut conn = db.connect().await;
    assert_eq!(agora::db::audit::first_broken_link(&mut conn).await.unwrap(), None, "a fresh chain is intact");

    let update =
        diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "UPDATE audit_log SET reason = 'x'").await;
    assert!(update.is_err(), "UPDATE is refused");
    let delete = diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "DELETE FROM audit_log").await;
    assert!(delete.is_err(), "DELETE is refused");

    // Someone with superuser rights switches the guard off and rewrites history.
    db.execute(
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
         UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2;
         ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
    )
    .await;
    assert_eq!(agora::db::audit::first_broken_link(&mut conn).await.unwrap(), Some(2));
}
