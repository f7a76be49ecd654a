//! Who hears about what: the people a comment notifies, the recipient of an email, and the
//! record of each email delivered (so a retried job never sends twice).

use crate::domain::{CommentId, UserId};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{comments, email_deliveries, posts, users};

/// Whether the email with this delivery key was already sent.
pub async fn delivered(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<bool> {
    let found: Option<String> =
        email_deliveries::table.find(key).select(email_deliveries::delivery_key).first(conn).await.optional()?;
    Ok(found.is_some())
}

/// Who an email goes to, as they are now.
#[derive(Debug, Clone, Queryable)]
pub struct Recipient {
    /// Their username.
    pub username: String,
    /// Their address.
    pub email: String,
    /// Their notification settings (JSON).
    pub notification_settings: serde_json::Value,
}

/// The recipient `user_id`, or `None` when the account is gone.
pub async fn recipient(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<Option<Recipient>> {
    let user_id = user_id.0;
    users::table
        .find(user_id)
        .select((users::username, users::email, users::notification_settings))
        .first(conn)
        .await
        .optional()
}

/// What a reply or mention email says about its comment.
#[derive(Debug, Clone, Queryable)]
pub struct CommentNotice {
    /// The comment's author.
    pub author: String,
    /// The post's title.
    pub post_title: String,
    /// The comment's text.
    pub body: String,
    /// The post.
    pub post_id: i64,
    /// Whether the comment was removed or deleted since.
    pub gone: bool,
}

/// The notice of a comment, or `None` when it no longer exists.
pub async fn comment_notice(conn: &mut AsyncPgConnection, comment_id: CommentId) -> QueryResult<Option<CommentNotice>> {
    let comment_id = comment_id.0;
    comments::table
        .inner_join(posts::table)
        .inner_join(users::table.on(users::id.eq(comments::author_id)))
        .filter(comments::id.eq(comment_id))
        .select((users::username, posts::title, comments::body, posts::id, comments::removed.or(comments::deleted)))
        .first(conn)
        .await
        .optional()
}

/// Records that the email with this key was sent.
pub async fn record_delivery(
    conn: &mut AsyncPgConnection,
    key: &str,
    user_id: UserId,
    template: &str,
) -> QueryResult<()> {
    let user_id = user_id.0;
    diesel::insert_into(email_deliveries::table)
        .values((
            email_deliveries::delivery_key.eq(key),
            email_deliveries::user_id.eq(user_id),
            email_deliveries::template.eq(template),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// The sender's username and the body of a private message, or `None` when it is gone.
pub async fn message_notice(conn: &mut AsyncPgConnection, message_id: i64) -> QueryResult<Option<(String, String)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        sender: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        body: String,
    }
    let row: Option<Row> = diesel::sql_query(
        "SELECT u.username AS sender, m.body FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(message_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| (row.sender, row.body)))
}
