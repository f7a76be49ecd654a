//! SQL over `messages`: private messages between two users, a conversation page (either
//! direction, newest first) and each user's list of conversations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::domain::UserId;

/// A private message as the API shows it.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Sender's username.
    #[diesel(sql_type = Text)]
    pub from: String,
    /// Recipient's username.
    #[diesel(sql_type = Text)]
    pub to: String,
    /// Markdown.
    #[diesel(sql_type = Text)]
    pub body: String,
    /// Sanitized HTML.
    #[diesel(sql_type = Text)]
    pub body_html: String,
    /// When it was sent.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

const VIEW: &str = "SELECT m.id, s.username AS from, r.username AS to, m.body, m.body_html, m.created_at
    FROM messages m JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.recipient_id";

/// Stores a message; returns its id.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    sender: UserId,
    recipient: UserId,
    body: &str,
    body_html: &str,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO messages (sender_id, recipient_id, body, body_html) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind::<BigInt, _>(sender.0)
    .bind::<BigInt, _>(recipient.0)
    .bind::<Text, _>(body)
    .bind::<Text, _>(body_html)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// One message.
pub async fn by_id(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<MessageView>> {
    diesel::sql_query(format!("{VIEW} WHERE m.id = $1")).bind::<BigInt, _>(id).get_result(conn).await.optional()
}

/// The sender and recipient of a message.
pub async fn parties(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<(i64, i64)>> {
    #[derive(QueryableByName)]
    struct Parties {
        #[diesel(sql_type = BigInt)]
        sender_id: i64,
        #[diesel(sql_type = BigInt)]
        recipient_id: i64,
    }
    let row: Option<Parties> = diesel::sql_query("SELECT sender_id, recipient_id FROM messages WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.map(|p| (p.sender_id, p.recipient_id)))
}

/// A page of the conversation between `a` and `b`, newest first, before message `before`
/// (one range of `messages_pair_idx`).
pub async fn conversation(
    conn: &mut AsyncPgConnection,
    a: UserId,
    b: UserId,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MessageView>> {
    diesel::sql_query(format!(
        "{VIEW} WHERE least(m.sender_id, m.recipient_id) = least($1::int8, $2::int8)
           AND greatest(m.sender_id, m.recipient_id) = greatest($1::int8, $2::int8) AND m.id < $3
         ORDER BY least(m.sender_id, m.recipient_id), greatest(m.sender_id, m.recipient_id), m.id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(a.0)
    .bind::<BigInt, _>(b.0)
    .bind::<BigInt, _>(before.unwrap_or(i64::MAX))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// One conversation in a user's list: the other person and the latest message.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ConversationRow {
    /// The other person's username.
    #[diesel(sql_type = Text)]
    pub with: String,
    /// The latest message.
    #[diesel(embed)]
    pub latest: MessageView,
}

/// A user's conversations, the most recently active first (the latest message of each of
/// their last `limit` correspondents).
pub async fn conversations(
    conn: &mut AsyncPgConnection,
    user: UserId,
    limit: i64,
) -> QueryResult<Vec<ConversationRow>> {
    diesel::sql_query(
        "WITH latest AS (
             SELECT other, max(id) AS id FROM (
                 (SELECT recipient_id AS other, id FROM messages WHERE sender_id = $1 ORDER BY id DESC LIMIT 1000)
                 UNION ALL
                 (SELECT sender_id AS other, id FROM messages WHERE recipient_id = $1 ORDER BY id DESC LIMIT 1000)
             ) mine GROUP BY other ORDER BY max(id) DESC LIMIT $2)
         SELECT o.username AS with, m.id, s.username AS from, r.username AS to, m.body, m.body_html, m.created_at
         FROM latest l JOIN messages m ON m.id = l.id JOIN users o ON o.id = l.other
         JOIN users s ON s.id = m.sender_id JOIN users r ON r.id = m.recipient_id
         ORDER BY m.id DESC",
    )
    .bind::<BigInt, _>(user.0)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}
