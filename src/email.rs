//! Email: the SMTP transport (lettre), the messages Agora sends, and the queue job that sends
//! them. Jobs carry ids, not addresses or text: the job reads the user's current address and
//! preferences when it runs, and records each delivery so a re-run never sends twice.

use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{EmailConfig, SmtpSecurity};
use crate::db::notifications as db_notifications;
use crate::domain::accounts::NotificationSettings;
use crate::domain::{CommentId, UserId};
use crate::queue::worker::JobError;
use crate::service::Context;

/// What an email job sends. Serialized into the job payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum EmailJob {
    /// Welcome a new account.
    Welcome {
        /// The new user.
        user_id: i64,
    },
    /// A one-time password-reset link.
    PasswordReset {
        /// The account.
        user_id: i64,
        /// The raw reset token (only its hash is in the database).
        token: String,
    },
    /// Someone replied to the recipient's post or comment.
    Reply {
        /// Who is told.
        recipient_id: i64,
        /// The reply.
        comment_id: i64,
    },
    /// Someone mentioned `u/recipient` in a comment.
    Mention {
        /// Who is told.
        recipient_id: i64,
        /// The comment that mentions them.
        comment_id: i64,
    },
    /// Someone sent the recipient a private message.
    Message {
        /// Who is told.
        recipient_id: i64,
        /// The message.
        message_id: i64,
    },
}

impl EmailJob {
    /// The key of this delivery: the same email is never sent twice.
    pub fn delivery_key(&self) -> String {
        match self {
            Self::Welcome { user_id } => format!("welcome:{user_id}"),
            Self::PasswordReset { user_id, token } => {
                let digest = Sha256::digest(token.as_bytes());
                let short: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
                format!("reset:{user_id}:{short}")
            }
            Self::Reply { recipient_id, comment_id } => format!("reply:{recipient_id}:{comment_id}"),
            Self::Mention { recipient_id, comment_id } => format!("mention:{recipient_id}:{comment_id}"),
            Self::Message { recipient_id, message_id } => format!("message:{recipient_id}:{message_id}"),
        }
    }

    fn template(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::PasswordReset { .. } => "password_reset",
            Self::Reply { .. } => "reply",
            Self::Mention { .. } => "mention",
            Self::Message { .. } => "message",
        }
    }

    fn recipient(&self) -> i64 {
        match self {
            Self::Welcome { user_id } | Self::PasswordReset { user_id, .. } => *user_id,
            Self::Reply { recipient_id, .. }
            | Self::Mention { recipient_id, .. }
            | Self::Message { recipient_id, .. } => *recipient_id,
        }
    }
}

/// Why the SMTP transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The configuration names an unusable server or CA.
    #[error("email: {0}")]
    Config(String),
}

/// The configured SMTP transport and sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port (security)`, for logs and health details.
    pub describe: String,
}

impl Mailer {
    /// The transport `config` describes, or `None` when no SMTP host is configured.
    pub fn from_config(config: &EmailConfig) -> Result<Option<Self>, MailerError> {
        if config.smtp_host.is_empty() {
            return Ok(None);
        }
        let bad = |err: &dyn std::fmt::Display| MailerError::Config(err.to_string());
        let from: Mailbox = config.from.parse().map_err(|err| bad(&format!("email.from: {err}")))?;
        let host = config.smtp_host.as_str();
        let tls_parameters = || -> Result<TlsParameters, MailerError> {
            let mut builder = TlsParameters::builder(host.to_owned());
            if !config.ca_file.is_empty() {
                let pem = std::fs::read(&config.ca_file).map_err(|err| bad(&format!("email.ca_file: {err}")))?;
                builder = builder.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| bad(&e))?);
            }
            builder.build_rustls().map_err(|err| bad(&err))
        };
        let tls = match config.smtp_security {
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters()?),
            SmtpSecurity::Starttls => Tls::Required(tls_parameters()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.smtp_port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_seconds)));
        let password = config.password().map_err(|err| bad(&format!("email.smtp_password_file: {err}")))?;
        if !config.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(config.smtp_username.clone(), password.expose().to_owned()));
        }
        let describe = format!("{host}:{} ({})", config.smtp_port, config.smtp_security.as_str());
        Ok(Some(Self { transport: builder.build(), from, describe }))
    }

    /// Whether the server answers (connects and greets); used by readiness details.
    pub async fn reachable(&self) -> bool {
        self.transport.test_connection().await.unwrap_or(false)
    }
}

/// `List-Unsubscribe` (RFC 2369) with the one-click link.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(text: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(text.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// One rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The one-click unsubscribe link, for notification emails.
    pub unsubscribe: Option<String>,
}

pub use crate::markdown::escape_html;

fn html_page(title: &str, body: &str, footer: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:auto;color:#1a1a1a\">{body}\
         <hr><p style=\"font-size:small;color:#555\">{footer}</p></body></html>",
        title = escape_html(title)
    )
}

fn button(href: &str, label: &str) -> String {
    format!(
        "<p><a href=\"{href}\" style=\"display:inline-block;padding:.6em 1.2em;background:#1f5fbf;color:#fff;\
         text-decoration:none;border-radius:4px\">{label}</a></p>",
        href = escape_html(href),
        label = escape_html(label)
    )
}

/// What a template needs besides the job.
pub struct Addressee<'a> {
    /// `server.public_url` without a trailing slash.
    pub base_url: &'a str,
    /// The recipient's username.
    pub username: &'a str,
}

/// The welcome email.
pub fn welcome(ctx: &Addressee<'_>) -> Rendered {
    let subject = format!("Welcome to Agora, {}", ctx.username);
    let link = format!("{}/", ctx.base_url);
    let text = format!(
        "Hi {name},\n\nyour Agora account is ready. Find communities to join and start posting:\n{link}\n\n\
         You get this email because someone signed up with this address. If it was not you, ignore it.\n",
        name = ctx.username
    );
    let body = format!(
        "<p>Hi {name},</p><p>your Agora account is ready. Find communities to join and start posting.</p>{button}",
        name = escape_html(ctx.username),
        button = button(&link, "Open Agora")
    );
    let footer = "You get this email because someone signed up with this address. If it was not you, ignore it.";
    Rendered { html: html_page(&subject, &body, footer), subject, text, unsubscribe: None }
}

/// The password-reset email with its one-time link.
pub fn password_reset(ctx: &Addressee<'_>, token: &str) -> Rendered {
    let subject = "Reset your Agora password".to_owned();
    let link = format!("{}/reset-password?token={token}", ctx.base_url);
    let text = format!(
        "Hi {name},\n\nsomeone asked to reset the password of your Agora account. To choose a new one, open\n{link}\n\n\
         The link works once and expires in 1 hour. If you did not ask, ignore this email: your password stays.\n",
        name = ctx.username
    );
    let body = format!(
        "<p>Hi {name},</p><p>someone asked to reset the password of your Agora account.</p>{button}\
         <p>The link works once and expires in 1 hour.</p>",
        name = escape_html(ctx.username),
        button = button(&link, "Choose a new password")
    );
    let footer = "If you did not ask for this, ignore this email: your password stays as it is.";
    Rendered { html: html_page(&subject, &body, footer), subject, text, unsubscribe: None }
}

/// What a notification is about.
pub struct Notice<'a> {
    /// Who wrote the comment.
    pub author: &'a str,
    /// The post's title.
    pub post_title: &'a str,
    /// A link to the comment.
    pub link: String,
    /// The start of the comment's text.
    pub excerpt: &'a str,
    /// The signed one-click unsubscribe link (the API, for `List-Unsubscribe`: mail clients
    /// POST to it).
    pub unsubscribe: String,
    /// The same token on the unsubscribe page, for people: it asks before it acts, so a link
    /// scanner that opens every link unsubscribes nobody.
    pub unsubscribe_page: String,
}

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A reply to the recipient's post or comment.
    Reply,
    /// A `u/name` mention.
    Mention,
    /// A private message (`Notice::post_title` is unused).
    Message,
}

/// A reply, mention or private message notification.
pub fn notification(ctx: &Addressee<'_>, notice: &Notice<'_>, kind: NoticeKind) -> Rendered {
    let (subject, what, setting) = match kind {
        NoticeKind::Mention => (
            format!("{} mentioned you in “{}”", notice.author, notice.post_title),
            format!("mentioned you in “{}”", notice.post_title),
            "mentions",
        ),
        NoticeKind::Reply => (
            format!("{} replied to you in “{}”", notice.author, notice.post_title),
            format!("replied to you in “{}”", notice.post_title),
            "replies",
        ),
        NoticeKind::Message => {
            (format!("{} sent you a message", notice.author), "sent you a private message".to_owned(), "messages")
        }
    };
    let text = format!(
        "Hi {name},\n\n{author} {what}:\n\n> {excerpt}\n\nRead and answer: {link}\n\n\
         Stop emails about {setting}: {unsubscribe}\n",
        name = ctx.username,
        author = notice.author,
        excerpt = notice.excerpt.replace('\n', "\n> "),
        link = notice.link,
        unsubscribe = notice.unsubscribe_page,
    );
    let body = format!(
        "<p>Hi {name},</p><p><strong>{author}</strong> {what}:</p>\
         <blockquote style=\"border-left:3px solid #ccc;margin:0;padding-left:1em\">{excerpt}</blockquote>{button}",
        name = escape_html(ctx.username),
        author = escape_html(notice.author),
        what = escape_html(&what),
        excerpt = escape_html(notice.excerpt),
        button = button(&notice.link, "Read and answer"),
    );
    let footer = format!(
        "You get this email because you asked to hear about {setting}. \
         <a href=\"{href}\">Stop emails about {setting}</a> (no sign-in needed).",
        href = escape_html(&notice.unsubscribe_page)
    );
    Rendered { html: html_page(&subject, &body, &footer), subject, text, unsubscribe: Some(notice.unsubscribe.clone()) }
}

/// A stable Message-ID for a delivery key: should a crash make a job send again, mail clients
/// see the same message, not a second one.
fn message_id(key: &str, base_url: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let id: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let host = base_url.split("://").nth(1).and_then(|rest| rest.split(['/', ':']).next()).unwrap_or("agora.invalid");
    format!("<{id}@{host}>")
}

/// Runs an email job: skips what was already sent or is no longer wanted, renders, sends,
/// records the delivery.
pub async fn run(ctx: &Context, job: EmailJob) -> Result<(), JobError> {
    let Some(mailer) = &ctx.mailer else {
        return Err(JobError::Retry("email is off (no email.smtp_host); the job waits for it".into()));
    };
    let key = job.delivery_key();
    let template = job.template();
    let mut conn = ctx.db.conn().await.map_err(|err| JobError::Retry(err.to_string()))?;
    let delivered =
        ctx.db.observe("email.delivered", &mut conn, async |conn| db_notifications::delivered(conn, &key).await);
    if delivered.await.map_err(retry)? {
        tracing::info!(template, "email already sent: nothing to do");
        return Ok(());
    }
    let found = ctx.db.observe("email.recipient", &mut conn, async |conn| {
        db_notifications::recipient(conn, UserId(job.recipient())).await
    });
    let Some(recipient) = found.await.map_err(retry)? else {
        tracing::info!(template, "the recipient's account is gone: email dropped");
        return Ok(());
    };
    let settings: NotificationSettings = serde_json::from_value(recipient.notification_settings).unwrap_or_default();
    let base_url = ctx.config.server.public_url.trim_end_matches('/');
    let addressee = Addressee { base_url, username: &recipient.username };
    let rendered = match &job {
        EmailJob::Welcome { .. } => welcome(&addressee),
        EmailJob::PasswordReset { token, .. } => password_reset(&addressee, token),
        EmailJob::Reply { recipient_id, comment_id } | EmailJob::Mention { recipient_id, comment_id } => {
            let mention = matches!(job, EmailJob::Mention { .. });
            let wanted = if mention { settings.email_on_mention } else { settings.email_on_reply };
            if !wanted {
                tracing::info!(template, "the recipient turned these emails off: not sent");
                return Ok(());
            }
            let notice = ctx.db.observe("email.comment_notice", &mut conn, async |conn| {
                db_notifications::comment_notice(conn, CommentId(*comment_id)).await
            });
            let Some(comment) = notice.await.map_err(retry)?.filter(|comment| !comment.gone) else {
                tracing::info!(template, "the comment is gone or removed: not sent");
                return Ok(());
            };
            let topic = if mention { "mentions" } else { "replies" };
            let token = ctx
                .auth
                .keys
                .issue_unsubscribe(*recipient_id, topic)
                .map_err(|err| JobError::Retry(err.to_string()))?;
            let excerpt: String = comment.body.chars().take(500).collect();
            let notice = Notice {
                author: &comment.author,
                post_title: &comment.post_title,
                link: format!("{base_url}/p/{}#c{comment_id}", comment.post_id),
                excerpt: &excerpt,
                unsubscribe: format!("{base_url}/api/v1/unsubscribe?token={token}"),
                unsubscribe_page: format!("{base_url}/unsubscribe?token={token}"),
            };
            notification(&addressee, &notice, if mention { NoticeKind::Mention } else { NoticeKind::Reply })
        }
        EmailJob::Message { recipient_id, message_id } => {
            if !settings.email_on_message {
                tracing::info!(template, "the recipient turned these emails off: not sent");
                return Ok(());
            }
            let found = ctx.db.observe("email.message_notice", &mut conn, async |conn| {
                db_notifications::message_notice(conn, *message_id).await
            });
            let Some((sender, body)) = found.await.map_err(retry)? else {
                tracing::info!(template, "the message is gone: not sent");
                return Ok(());
            };
            let token = ctx
                .auth
                .keys
                .issue_unsubscribe(*recipient_id, "messages")
                .map_err(|err| JobError::Retry(err.to_string()))?;
            let excerpt: String = body.chars().take(500).collect();
            let notice = Notice {
                author: &sender,
                post_title: "",
                link: format!("{base_url}/messages/{sender}"),
                excerpt: &excerpt,
                unsubscribe: format!("{base_url}/api/v1/unsubscribe?token={token}"),
                unsubscribe_page: format!("{base_url}/unsubscribe?token={token}"),
            };
            notification(&addressee, &notice, NoticeKind::Message)
        }
    };
    let to: Mailbox = format!("{} <{}>", recipient.username, recipient.email)
        .parse()
        .or_else(|_| recipient.email.parse())
        .map_err(|err| JobError::Permanent(format!("the recipient address does not parse: {err}")))?;
    let mut builder = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(rendered.subject.clone())
        .message_id(Some(message_id(&key, base_url)));
    if let Some(link) = &rendered.unsubscribe {
        builder = builder.header(ListUnsubscribe(format!("<{link}>"))).header(ListUnsubscribePost);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(rendered.text.clone(), rendered.html.clone()))
        .map_err(|err| JobError::Permanent(format!("cannot build the email: {err}")))?;
    let started = std::time::Instant::now();
    let sent = mailer.transport.send(message).await;
    let elapsed = started.elapsed().as_secs_f64();
    let metrics = &ctx.metrics;
    match sent {
        Ok(_) => {
            metrics.emails.with_label_values(&[template, "sent"]).inc();
            metrics.email_send_duration.with_label_values(&["sent"]).observe(elapsed);
        }
        Err(err) => {
            let outcome = if err.is_permanent() { "rejected" } else { "failed" };
            metrics.emails.with_label_values(&[template, outcome]).inc();
            metrics.email_send_duration.with_label_values(&[outcome]).observe(elapsed);
            // A refusal by the server is retried too: a misconfigured relay is fixed by an
            // operator, and the dead letters keep what still failed after every attempt.
            return Err(JobError::Retry(format!("SMTP {}: {err}", mailer.describe)));
        }
    }
    let recipient_id = job.recipient();
    ctx.db
        .observe("email.record_delivery", &mut conn, async |conn| {
            db_notifications::record_delivery(conn, &key, UserId(recipient_id), template).await
        })
        .await
        .map_err(retry)?;
    tracing::info!(template, "email sent");
    Ok(())
}

fn retry(err: crate::db::DbError) -> JobError {
    JobError::Retry(err.to_string())
}

/// The settings an unsubscribe topic turns off.
pub fn unsubscribe(settings: &mut NotificationSettings, topic: &str) -> bool {
    match topic {
        "replies" => settings.email_on_reply = false,
        "mentions" => settings.email_on_mention = false,
        "messages" => settings.email_on_message = false,
        "all" => {
            settings.email_on_reply = false;
            settings.email_on_mention = false;
            settings.email_on_message = false;
        }
        _ => return false,
    }
    true
}
