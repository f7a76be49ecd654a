//! What a signed-in reader keeps and refuses: saving and hiding posts, saving comments,
//! blocking users and communities, and the saved list. Every change here is the reader's
//! own, so it invalidates only their overlays ([`Change::Viewer`]); the shared cached pages
//! stay, and `posts::for_reader` and `comments::tree_for_reader` apply the reader's choices
//! on top.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::reader as db_reader;
use crate::domain::Limit;
use crate::domain::content::{decode_cursor, encode_cursor};
use crate::domain::reader::Mark;
use crate::error::AppError;
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::{Change, Entry, Key, Served};
use crate::service::cache_sync;
use crate::service::comments::Comment;
use crate::service::communities::{Page, trim_to_page};
use crate::service::posts::Post;

/// Saves or unsaves a post or comment, or hides or unhides a post. Idempotent; 404 when the
/// target does not exist.
#[tracing::instrument(name = "service.reader.mark", skip_all, fields(mark = ?mark, target))]
pub async fn set_mark(ctx: &Context, reader: Authenticated, mark: Mark, target: i64, on: bool) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let outcome = ctx
        .db
        .observe("reader.set_mark", &mut conn, async |conn| {
            db_reader::set_mark(conn, mark, reader.user_id, target, on).await
        })
        .await?;
    let what = match mark {
        Mark::SavedComment => "comment",
        Mark::SavedPost | Mark::HiddenPost => "post",
    };
    let changed = outcome.ok_or_else(|| AppError::not_found(what))?;
    if changed {
        if on {
            let label = match mark {
                Mark::SavedPost => "saved_post",
                Mark::SavedComment => "saved_comment",
                Mark::HiddenPost => "hidden_post",
            };
            ctx.metrics.saves.with_label_values(&[label]).inc();
        }
        cache_sync::committed(ctx, &mut conn, reader.user_id, &[Change::Viewer(reader.user_id.0)]).await;
    }
    Ok(())
}

/// What a reader blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTarget {
    /// A user, by username.
    User,
    /// A community, by name.
    Community,
}

/// Blocks or unblocks a user or community by name. Idempotent; 404 when there is no such
/// user or community, 422 for blocking oneself.
#[tracing::instrument(name = "service.reader.block", skip_all, fields(target = ?target, on))]
pub async fn set_block(
    ctx: &Context,
    reader: Authenticated,
    target: BlockTarget,
    name: &str,
    on: bool,
) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let outcome = match target {
        BlockTarget::User => {
            if on && crate::service::users::username_of(ctx, reader.user_id).await?.eq_ignore_ascii_case(name) {
                return Err(AppError::invalid_field("username", "you cannot block yourself"));
            }
            ctx.db
                .observe("reader.set_user_block", &mut conn, async |conn| {
                    db_reader::set_user_block(conn, reader.user_id, name, on).await
                })
                .await?
                .ok_or_else(|| AppError::not_found("user"))?
        }
        BlockTarget::Community => ctx
            .db
            .observe("reader.set_community_block", &mut conn, async |conn| {
                db_reader::set_community_block(conn, reader.user_id, name, on).await
            })
            .await?
            .ok_or_else(|| AppError::not_found("community"))?,
    };
    let (_, changed) = outcome;
    if changed {
        if on {
            let label = match target {
                BlockTarget::User => "user",
                BlockTarget::Community => "community",
            };
            ctx.metrics.blocks.with_label_values(&[label]).inc();
            tracing::info!(target = label, "blocked");
        }
        cache_sync::committed(ctx, &mut conn, reader.user_id, &[Change::Viewer(reader.user_id.0)]).await;
    }
    Ok(())
}

/// The answer of `GET /api/v1/me/blocks`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BlockList {
    /// Blocked usernames, oldest block first.
    pub users: Vec<String>,
    /// Blocked community names, oldest block first.
    pub communities: Vec<String>,
}

/// The users and communities the reader blocks.
pub async fn blocks(ctx: &Context, reader: Authenticated) -> Result<BlockList, AppError> {
    let mut conn = ctx.reader_read_conn(reader.user_id).await?;
    let blocks = ctx
        .db
        .observe_read("reader.blocks", &mut conn, async |conn| db_reader::blocks(conn, reader.user_id).await)
        .await?;
    Ok(BlockList { users: blocks.users, communities: blocks.communities })
}

/// Which saved items `/me/saved` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SavedKind {
    /// Saved posts.
    #[default]
    Posts,
    /// Saved comments.
    Comments,
}

/// One saved item: a post, or a comment (without replies).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SavedItem {
    /// A saved post.
    Post(Box<Post>),
    /// A saved comment.
    Comment(Box<Comment>),
}

/// A page of what the reader saved: all posts, or all comments.
pub type SavedPage = Page<SavedItem>;

/// The reader's saved posts or comments through the cache (stale with any post, or any
/// thread, and with the reader's own saves), for the API.
pub async fn saved_cached(
    ctx: &Context,
    reader: Authenticated,
    kind: SavedKind,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Served, AppError> {
    let key = Key::Saved {
        viewer: reader.user_id.0,
        comments: kind == SavedKind::Comments,
        limit: limit.get(),
        cursor: cursor.map(Into::into),
    };
    let cached = ctx
        .caches
        .responses
        .get_or_fill(key, async { Entry::json(saved_page(ctx, reader, kind, limit, cursor).await?, Vec::new()) })
        .await?;
    Ok(Served::shared(cached))
}

/// The reader's saved posts or comments, most recently saved first, from the cache (for pages).
pub async fn saved(
    ctx: &Context,
    reader: Authenticated,
    kind: SavedKind,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<SavedPage, AppError> {
    let served = saved_cached(ctx, reader, kind, limit, cursor).await?;
    served.data::<SavedPage>().cloned().ok_or_else(|| AppError::not_found("saved page"))
}

#[tracing::instrument(name = "service.reader.saved", skip_all, fields(kind = ?kind))]
async fn saved_page(
    ctx: &Context,
    reader: Authenticated,
    kind: SavedKind,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<SavedPage, AppError> {
    let before = cursor
        .map(decode_cursor::<(DateTime<Utc>, i64)>)
        .transpose()
        .map_err(|_| AppError::invalid_field("cursor", "is not a cursor from this list"))?;
    let mut conn = ctx.reader_read_conn(reader.user_id).await?;
    let next = |at: DateTime<Utc>, id: i64| encode_cursor(&(at, id));
    match kind {
        SavedKind::Posts => {
            let mut rows = ctx
                .db
                .observe_read("posts.saved_by", &mut conn, async |conn| {
                    crate::db::posts::saved_by(conn, reader.user_id, before, limit.get() + 1).await
                })
                .await?;
            let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| next(last.saved_at, last.post.id));
            let items = rows.into_iter().map(|row| SavedItem::Post(Box::new(Post::from(row.post)))).collect();
            Ok(Page { items, next_cursor })
        }
        SavedKind::Comments => {
            let mut rows = ctx
                .db
                .observe_read("comments.saved_by", &mut conn, async |conn| {
                    crate::db::comments::saved_by(conn, reader.user_id, before, limit.get() + 1).await
                })
                .await?;
            let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| next(last.saved_at, last.comment.id));
            let comments = crate::service::comments::without_replies(rows.into_iter().map(|row| row.comment).collect());
            let items = comments.into_iter().map(|comment| SavedItem::Comment(Box::new(comment))).collect();
            Ok(Page { items, next_cursor })
        }
    }
}
