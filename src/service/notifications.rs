//! Who hears about what by email: welcome and reset emails, replies and mentions. Each is a
//! queued job (the request never waits for SMTP); preferences are applied when the job runs.

use crate::db::notifications as db_notifications;
use crate::db::{DbConn, DbError};
use crate::domain::CommentId;
use crate::email::EmailJob;
use crate::service::Context;

/// Most users one comment can notify by mention.
const MAX_MENTIONS: usize = 10;

/// Queues `email`, unless email is off. A failure is logged, never shown to the user: the
/// action that caused the email (a sign-up, a reply) has already happened.
pub async fn queue_email(ctx: &Context, email: EmailJob) {
    if ctx.mailer.is_none() {
        tracing::debug!(?email, "email is off: not queued");
        return;
    }
    let dedup = format!("email:{}", email.delivery_key());
    let job = match crate::jobs::Payload::Email(email).into_job() {
        Ok(job) => job.dedup(dedup),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode an email job");
            return;
        }
    };
    if let Err(err) = ctx.jobs.enqueue(job).await {
        tracing::error!(error = %err, "cannot queue an email");
    }
}

/// The usernames a text mentions as `u/name` (or `/u/name`), lower-cased, first ones first.
pub fn mentions(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(offset) = text[i..].find("u/") {
        let start = i + offset;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let name: String = text[start + 2..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if boundary && (3..=20).contains(&name.len()) {
            let name = name.to_ascii_lowercase();
            if !found.contains(&name) {
                found.push(name);
            }
        }
        i = start + 2;
        if found.len() == MAX_MENTIONS {
            break;
        }
    }
    found
}

/// Queues the reply notification for the author of what `comment_id` answers, and mention
/// notifications for users named in its body; never for the comment's own author.
pub async fn after_comment(
    ctx: &Context,
    conn: &mut DbConn,
    comment_id: i64,
    author_id: i64,
    body: &str,
) -> Result<(), DbError> {
    if ctx.mailer.is_none() {
        return Ok(());
    }
    let replied_to = ctx
        .db
        .observe("notifications.replied_to", conn, async |conn| {
            db_notifications::replied_to(conn, CommentId(comment_id)).await
        })
        .await?;
    if replied_to != author_id {
        queue_email(ctx, EmailJob::Reply { recipient_id: replied_to, comment_id }).await;
    }
    let names = mentions(body);
    if names.is_empty() {
        return Ok(());
    }
    let mentioned = ctx
        .db
        .observe("notifications.mentioned", conn, async |conn| db_notifications::user_ids_by_names(conn, &names).await)
        .await?;
    for recipient_id in mentioned.into_iter().filter(|id| *id != author_id && *id != replied_to) {
        queue_email(ctx, EmailJob::Mention { recipient_id, comment_id }).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_are_found_at_word_boundaries_once_each() {
        assert_eq!(mentions("hi u/Alice and /u/bob_2, u/alice again"), vec!["alice", "bob_2"]);
        assert!(mentions("menu/alice is a path, u/ab is too short").is_empty());
        let many: String = (0..20).map(|i| format!("u/user{i:02} ")).collect();
        assert_eq!(mentions(&many).len(), 10);
    }
}
