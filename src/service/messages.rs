//! Private messages between users: Markdown rendered and sanitized like comments, refused
//! when the recipient blocks the sender, put in the recipient's inbox in the same
//! transaction, emailed when their settings allow, and reportable to the site admins.

use serde::Serialize;

use crate::db::messages::{self as db_messages, MessageView};
use crate::db::moderation::{NewReport, ReportView};
use crate::domain::content::{decode_cursor, encode_cursor};
use crate::domain::{Body, Limit, UserId, Username};
use crate::email::EmailJob;
use crate::error::{AppError, ErrorCode};
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::Change;
use crate::service::cache_sync;
use crate::service::communities::{Page, trim_to_page};
use crate::service::moderation::Why;

/// The API's `message` object.
pub type Message = MessageView;

/// One conversation in the reader's list.
#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    /// The other person.
    pub with: String,
    /// The latest message, either way.
    pub latest: Message,
}

/// The id of the user named `name`.
async fn user_id(ctx: &Context, conn: &mut crate::db::DbConn, name: &Username) -> Result<UserId, AppError> {
    ctx.db
        .observe_read("communities.user_id_by_name", conn, async |conn| {
            crate::db::communities::user_id_by_name(conn, name.as_str()).await
        })
        .await?
        .map(UserId)
        .ok_or_else(|| AppError::not_found("user"))
}

/// Sends `body` from `sender` to the user named `to`.
#[tracing::instrument(name = "service.messages.send", skip_all)]
pub async fn send(ctx: &Context, sender: Authenticated, to: &Username, body: Body) -> Result<Message, AppError> {
    if body.as_str().trim().is_empty() {
        return Err(AppError::invalid_field("body", "a message needs some text"));
    }
    let mut conn = ctx.db.conn().await?;
    let recipient = user_id(ctx, &mut conn, to).await?;
    if recipient == sender.user_id {
        return Err(AppError::invalid_field("to", "you cannot message yourself"));
    }
    let blocked = ctx
        .db
        .observe("reader.blocks_user", &mut conn, async |conn| {
            crate::db::reader::blocks_user(conn, recipient, sender.user_id).await
        })
        .await?;
    if blocked {
        return Err(AppError::new(ErrorCode::Blocked, "this user does not accept your messages"));
    }
    let body_html = crate::markdown::render(body.as_str());
    let excerpt = crate::service::inbox::excerpt(body.as_str());
    let work = ctx.db.transaction::<_, AppError>("messages.send", &mut conn, async move |conn| {
        let id = db_messages::insert(conn, sender.user_id, recipient, body.as_str(), &body_html).await?;
        crate::db::inbox::add_message(conn, recipient, sender.user_id, id, &excerpt).await?;
        Ok(id)
    });
    let id = work.await?;
    ctx.metrics.messages_sent.inc();
    crate::service::inbox::count_added(ctx, ["message"]);
    cache_sync::committed(ctx, &mut conn, sender.user_id, &[Change::Viewer(recipient.0)]).await;
    if ctx.mailer.is_some() {
        crate::service::notifications::queue_email(
            ctx,
            EmailJob::Message { recipient_id: recipient.0, message_id: id },
        )
        .await;
    }
    tracing::info!(message_id = id, "message sent");
    ctx.db
        .observe("messages.by_id", &mut conn, async |conn| db_messages::by_id(conn, id).await)
        .await?
        .ok_or_else(|| AppError::not_found("message"))
}

/// A page of the conversation between the reader and the user named `with`, newest first.
#[tracing::instrument(name = "service.messages.conversation", skip_all)]
pub async fn conversation(
    ctx: &Context,
    reader: Authenticated,
    with: &Username,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<Message>, AppError> {
    let before = cursor
        .map(decode_cursor::<i64>)
        .transpose()
        .map_err(|_| AppError::invalid_field("cursor", "is not a cursor from this conversation"))?;
    let mut conn = ctx.reader_read_conn(reader.user_id).await?;
    let other = user_id(ctx, &mut conn, with).await?;
    let mut rows = ctx
        .db
        .observe_read("messages.conversation", &mut conn, async |conn| {
            db_messages::conversation(conn, reader.user_id, other, before, limit.get() + 1).await
        })
        .await?;
    let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| encode_cursor(&last.id));
    Ok(Page { items: rows, next_cursor })
}

/// The reader's most recent conversations (at most `limit`).
pub async fn conversations(ctx: &Context, reader: Authenticated, limit: Limit) -> Result<Vec<Conversation>, AppError> {
    let mut conn = ctx.reader_read_conn(reader.user_id).await?;
    let rows = ctx
        .db
        .observe_read("messages.conversations", &mut conn, async |conn| {
            db_messages::conversations(conn, reader.user_id, limit.get()).await
        })
        .await?;
    Ok(rows.into_iter().map(|row| Conversation { with: row.with, latest: row.latest }).collect())
}

/// Reports a message the reader received to the site admins.
#[tracing::instrument(name = "service.messages.report", skip_all, fields(message_id = id))]
pub async fn report(ctx: &Context, reporter: Authenticated, id: i64, why: Why) -> Result<i64, AppError> {
    if why.reason.as_str().is_empty() {
        return Err(AppError::invalid_field("reason", "say what is wrong with this message"));
    }
    if why.rule_index.is_some() {
        return Err(AppError::invalid_field("rule_index", "a private message has no community rules: give a reason"));
    }
    let mut conn = ctx.db.conn().await?;
    let parties =
        ctx.db.observe("messages.parties", &mut conn, async |conn| db_messages::parties(conn, id).await).await?;
    match parties {
        Some((_, recipient)) if recipient == reporter.user_id.0 => {}
        // Only its recipient reports a message; to anyone else it does not exist.
        _ => return Err(AppError::not_found("message")),
    }
    let report = NewReport {
        reporter_id: reporter.user_id.0,
        community_id: None,
        post_id: None,
        comment_id: None,
        message_id: Some(id),
        rule_index: None,
        reason: why.reason.into_string(),
    };
    let report_id = ctx
        .db
        .observe("moderation.insert_report", &mut conn, async |conn| {
            crate::db::moderation::insert_report(conn, &report).await
        })
        .await?;
    tracing::info!(message_id = id, report_id, "message reported");
    Ok(report_id)
}

/// Whether `user` is a site admin (who reads the reported messages).
async fn is_admin(ctx: &Context, user: UserId) -> Result<bool, AppError> {
    let mut conn = ctx.db.conn().await?;
    Ok(ctx
        .db
        .observe("communities.is_admin", &mut conn, async |conn| crate::db::communities::is_admin(conn, user).await)
        .await?)
}

/// The open reports of private messages, newest first (site admins only).
pub async fn open_reports(ctx: &Context, admin: Authenticated, limit: Limit) -> Result<Vec<ReportView>, AppError> {
    if !is_admin(ctx, admin.user_id).await? {
        return Err(AppError::forbidden("only site admins read reported messages"));
    }
    let mut conn = ctx.db.conn().await?;
    Ok(ctx
        .db
        .observe("moderation.open_message_reports", &mut conn, async |conn| {
            crate::db::moderation::open_message_reports(conn, limit.get()).await
        })
        .await?)
}
