//! Who hears about what by email: welcome and reset emails, replies and mentions. Each is a
//! queued job (the request never waits for SMTP); preferences are applied when the job runs.

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

/// Queues the reply and mention emails of a new comment for the people its inbox items went
/// to (so never its own author, and nobody who blocks them); each email follows its
/// recipient's settings when it is sent.
pub async fn after_comment(ctx: &Context, comment_id: i64, notified: &[(i64, String)]) {
    if ctx.mailer.is_none() {
        return;
    }
    for (recipient_id, kind) in notified {
        let recipient_id = *recipient_id;
        let job = match kind.as_str() {
            "reply" => EmailJob::Reply { recipient_id, comment_id },
            "mention" => EmailJob::Mention { recipient_id, comment_id },
            _ => continue,
        };
        queue_email(ctx, job).await;
    }
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
