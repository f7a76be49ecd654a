//! User use cases.

use chrono::{DateTime, Utc};

use crate::db::posts::AuthorOrder;
use serde::Serialize;

use crate::db;
use crate::domain::{UserId, Username};
use crate::error::AppError;
use crate::service::Context;
use crate::service::communities::trim_to_page;

/// The API's public `user` object.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct PublicUser {
    /// Id.
    pub id: i64,
    /// Username as registered.
    pub username: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Sum of votes on the user's posts and comments.
    pub karma: i64,
    /// Site administrator.
    pub is_admin: bool,
    /// Profile text (Markdown, as the user wrote it).
    pub bio: String,
    /// The avatar (a path on this server), when one is set.
    pub avatar_url: Option<String>,
}

/// A user's public profile.
#[tracing::instrument(name = "service.users.profile", skip_all, fields(username = %username))]
pub async fn profile(ctx: &Context, username: &Username) -> Result<PublicUser, AppError> {
    let mut conn = ctx.shared_read_conn().await?;
    let row = ctx
        .db
        .observe_read("users.by_username", &mut conn, async |conn| db::users::by_username(conn, username).await)
        .await?;
    let row = row.ok_or_else(|| AppError::not_found("user"))?;
    let avatar = row.avatar_upload_id;
    let avatar_url = ctx
        .db
        .observe_read("uploads.avatar_url", &mut conn, async |conn| db::uploads::avatar_url(conn, avatar).await)
        .await?;
    Ok(PublicUser {
        id: row.id,
        username: row.username,
        created_at: row.created_at,
        karma: row.karma,
        is_admin: row.is_admin,
        bio: row.bio,
        avatar_url,
    })
}

/// A public profile through the response cache (karma changes with every vote on the user's
/// content; those votes invalidate it).
pub async fn profile_cached(ctx: &Context, username: &Username) -> Result<crate::service::cache::Served, AppError> {
    use crate::service::cache::{Entry, Key, Served};
    let key = Key::Profile(username.as_str().to_lowercase().into());
    let cached =
        ctx.caches.responses.get_or_fill(key, async { Entry::json(profile(ctx, username).await?, Vec::new()) }).await?;
    Ok(Served::shared(cached))
}

/// A user's profile with one page of their posts or comments.
#[derive(Debug, Clone)]
pub struct Activity {
    /// The profile.
    pub user: PublicUser,
    /// Posts, newest first (when posts were asked for).
    pub posts: Vec<crate::service::posts::Post>,
    /// Comments, newest first, without replies (when comments were asked for).
    pub comments: Vec<crate::service::comments::Comment>,
    /// Where the next page starts: `(created_at, id)` of the last item.
    pub next: Option<(DateTime<Utc>, i64)>,
}

/// A profile and a page of the user's posts or comments: two queries.
#[tracing::instrument(name = "service.users.activity", skip_all, fields(username = %username))]
pub async fn activity(
    ctx: &Context,
    username: &Username,
    comments: bool,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
    reader: Option<crate::service::accounts::Authenticated>,
) -> Result<Activity, AppError> {
    let user = profile_cached(ctx, username)
        .await?
        .data::<PublicUser>()
        .cloned()
        .ok_or_else(|| AppError::not_found("user"))?;
    let mut conn = match reader {
        Some(reader) => ctx.reader_read_conn(reader.user_id).await?,
        None => ctx.shared_read_conn().await?,
    };
    let reader = reader.map_or(0, |r| r.user_id.0);
    let mut activity = Activity { user, posts: Vec::new(), comments: Vec::new(), next: None };
    if comments {
        let mut rows = ctx
            .db
            .observe_read("comments.by_author", &mut conn, async |conn| {
                db::comments::by_author(conn, reader, UserId(activity.user.id), AuthorOrder::New(before), limit + 1)
                    .await
            })
            .await?;
        activity.next = trim_to_page(&mut rows, limit).map(|row| (row.created_at, row.id));
        activity.comments = crate::service::comments::without_replies(rows);
    } else {
        let mut rows = ctx
            .db
            .observe_read("posts.by_author", &mut conn, async |conn| {
                db::posts::by_author(conn, reader, UserId(activity.user.id), AuthorOrder::New(before), limit + 1).await
            })
            .await?;
        activity.next = trim_to_page(&mut rows, limit).map(|row| (row.created_at, row.id));
        activity.posts = rows.into_iter().map(crate::service::posts::Post::from).collect();
    }
    Ok(activity)
}

/// The username of a signed-in user, through the username cache (most pages spend no query
/// on their header).
pub async fn username_of(ctx: &Context, user_id: UserId) -> Result<String, AppError> {
    if let Some(name) = ctx.caches.usernames.get(&user_id.0).await {
        return Ok(name.to_string());
    }
    let mut conn = ctx.db.conn().await?;
    let account = ctx
        .db
        .observe("accounts.account_by_id", &mut conn, async |conn| {
            db::accounts::account_by_id(conn, UserId(user_id.0)).await
        })
        .await?
        .ok_or_else(|| AppError::unauthorized("the account is gone"))?;
    ctx.caches.usernames.insert(user_id.0, std::sync::Arc::from(account.username.as_str())).await;
    Ok(account.username)
}

/// A page of a user's posts or comments for the API, in `sort`.
#[derive(Debug, Clone)]
pub struct AuthorListing {
    /// Whose.
    pub username: Username,
    /// `new` or `top`.
    pub sort: crate::domain::content::ProfileSort,
    /// Page size.
    pub limit: crate::domain::Limit,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl AuthorListing {
    /// The keyset position the cursor names (422 for a cursor of another listing or sort).
    fn order(&self) -> Result<AuthorOrder, AppError> {
        use crate::domain::content::{AuthorCursor, ProfileSort, decode_cursor};
        let bad = || AppError::invalid_field("cursor", "is not a cursor from this listing");
        let after = self.cursor.as_deref().map(decode_cursor::<AuthorCursor>).transpose().map_err(|_| bad())?;
        match (self.sort, after) {
            (ProfileSort::New, None) => Ok(AuthorOrder::New(None)),
            (ProfileSort::Top, None) => Ok(AuthorOrder::Top(None)),
            (ProfileSort::New, Some(AuthorCursor::New(micros, id))) => {
                let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
                Ok(AuthorOrder::New(Some((at, id))))
            }
            (ProfileSort::Top, Some(AuthorCursor::Top(score, id))) => Ok(AuthorOrder::Top(Some((score, id)))),
            _ => Err(bad()),
        }
    }

    fn cursor_after(&self, created_at: DateTime<Utc>, score: i32, id: i64) -> String {
        use crate::domain::content::{AuthorCursor, ProfileSort, encode_cursor};
        match self.sort {
            ProfileSort::New => encode_cursor(&AuthorCursor::New(created_at.timestamp_micros(), id)),
            ProfileSort::Top => encode_cursor(&AuthorCursor::Top(score, id)),
        }
    }
}

async fn author_id(ctx: &Context, username: &Username) -> Result<UserId, AppError> {
    let profile = profile_cached(ctx, username).await?;
    profile.data::<PublicUser>().map(|user| UserId(user.id)).ok_or_else(|| AppError::not_found("user"))
}

/// What a page of a user's posts or comments is read with: the keyset position, the author,
/// a connection (a replica that holds the reader's own writes), the reader and the page size.
struct AuthorRead {
    order: AuthorOrder,
    author: UserId,
    conn: crate::db::DbConn,
    reader: i64,
    limit: i64,
}

async fn author_read(
    ctx: &Context,
    listing: &AuthorListing,
    reader: Option<crate::service::accounts::Authenticated>,
) -> Result<AuthorRead, AppError> {
    let order = listing.order()?;
    let author = author_id(ctx, &listing.username).await?;
    let conn = match reader {
        Some(reader) => ctx.reader_read_conn(reader.user_id).await?,
        None => ctx.shared_read_conn().await?,
    };
    Ok(AuthorRead { order, author, conn, reader: reader.map_or(0, |r| r.user_id.0), limit: listing.limit.get() })
}

/// A page of a user's posts, as `reader` sees them.
#[tracing::instrument(name = "service.users.posts", skip_all, fields(username = %listing.username))]
pub async fn posts_of(
    ctx: &Context,
    listing: &AuthorListing,
    reader: Option<crate::service::accounts::Authenticated>,
) -> Result<crate::service::communities::Page<crate::service::posts::Post>, AppError> {
    let AuthorRead { order, author, mut conn, reader, limit } = author_read(ctx, listing, reader).await?;
    let mut rows = ctx
        .db
        .observe_read("posts.by_author", &mut conn, async |conn| {
            db::posts::by_author(conn, reader, author, order, limit + 1).await
        })
        .await?;
    let next_cursor =
        trim_to_page(&mut rows, limit).map(|last| listing.cursor_after(last.created_at, last.score, last.id));
    Ok(crate::service::communities::Page { items: rows.into_iter().map(Into::into).collect(), next_cursor })
}

/// A page of a user's comments (without replies), as `reader` sees them.
#[tracing::instrument(name = "service.users.comments", skip_all, fields(username = %listing.username))]
pub async fn comments_of(
    ctx: &Context,
    listing: &AuthorListing,
    reader: Option<crate::service::accounts::Authenticated>,
) -> Result<crate::service::communities::Page<crate::service::comments::Comment>, AppError> {
    let AuthorRead { order, author, mut conn, reader, limit } = author_read(ctx, listing, reader).await?;
    let mut rows = ctx
        .db
        .observe_read("comments.by_author", &mut conn, async |conn| {
            db::comments::by_author(conn, reader, author, order, limit + 1).await
        })
        .await?;
    let next_cursor =
        trim_to_page(&mut rows, limit).map(|last| listing.cursor_after(last.created_at, last.score, last.id));
    Ok(crate::service::communities::Page { items: crate::service::comments::without_replies(rows), next_cursor })
}
