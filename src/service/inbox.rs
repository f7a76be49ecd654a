//! Each user's inbox: replies to their posts and comments, `u/name` mentions and moderator
//! actions on their content. Items are written in the transaction of the comment or action
//! that caused them (so neither exists without the other), whether or not email is on; the
//! unread count every page shows is cached per user and invalidated by every change to it.

use crate::db::inbox as db_inbox;
pub use crate::db::inbox::InboxItem;
use crate::domain::{Limit, UserId};
use crate::error::AppError;
use crate::service::Context;
use crate::service::cache::{Change, Entry, Key};
use crate::service::cache_sync;
use crate::service::communities::{Page, trim_to_page};

/// The first words of a text, for an inbox item (at most 300 characters).
pub fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 280 {
        return flat;
    }
    let mut cut: String = flat.chars().take(279).collect();
    cut.push('…');
    cut
}

/// Counts new items by kind (the caller commits them).
pub fn count_added(ctx: &Context, kinds: impl IntoIterator<Item = impl AsRef<str>>) {
    for kind in kinds {
        ctx.metrics.inbox_items.with_label_values(&[kind.as_ref()]).inc();
    }
}

/// What a write that reached other people's inboxes changed for them.
pub fn changes_for(recipients: &[i64]) -> Vec<Change> {
    recipients.iter().map(|user| Change::Viewer(*user)).collect()
}

/// A page of the user's inbox, newest first.
pub async fn page(
    ctx: &Context,
    user: UserId,
    unread_only: bool,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<InboxItem>, AppError> {
    let before = match cursor {
        None => None,
        Some(text) => Some(
            crate::domain::content::decode_cursor::<i64>(text)
                .map_err(|_| AppError::invalid_field("cursor", "is not a cursor from this inbox"))?,
        ),
    };
    let mut conn = ctx.reader_read_conn(user).await?;
    let mut rows = ctx
        .db
        .observe_read("inbox.page", &mut conn, async |conn| {
            db_inbox::page(conn, user, unread_only, before, limit.get() + 1).await
        })
        .await?;
    let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| crate::domain::content::encode_cursor(&last.id));
    Ok(Page { items: rows, next_cursor })
}

/// Marks one of the user's items read (404 when they have no such item).
pub async fn mark_read(ctx: &Context, user: UserId, id: i64) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let found =
        ctx.db.observe("inbox.mark_read", &mut conn, async |conn| db_inbox::mark_read(conn, user, id).await).await?;
    if !found {
        return Err(AppError::not_found("inbox item"));
    }
    cache_sync::committed(ctx, &mut conn, user, &[Change::Viewer(user.0)]).await;
    Ok(())
}

/// Marks every item of the user's read.
pub async fn mark_all_read(ctx: &Context, user: UserId) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    ctx.db.observe("inbox.mark_all_read", &mut conn, async |conn| db_inbox::mark_all_read(conn, user).await).await?;
    cache_sync::committed(ctx, &mut conn, user, &[Change::Viewer(user.0)]).await;
    Ok(())
}

/// The user's unread items, through the cache (every page shows it).
pub async fn unread(ctx: &Context, user: UserId) -> Result<i64, AppError> {
    let cached = ctx
        .caches
        .responses
        .get_or_fill(Key::Unread(user.0), async {
            let mut conn = ctx.reader_read_conn(user).await?;
            let count =
                ctx.db.observe_read("inbox.unread", &mut conn, async |conn| db_inbox::unread(conn, user).await).await?;
            Ok(Entry::value(count, 16))
        })
        .await?;
    Ok(cached.entry.data::<i64>().copied().unwrap_or(0))
}
