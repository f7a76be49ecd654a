//! SQL over `posts`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{communities, posts, users};
use crate::domain::PostId;

/// A post with the names of its community and author, as listings and pages show it.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct PostView {
    /// Id.
    pub id: i64,
    /// Community name.
    pub community: String,
    /// Author username.
    pub author: String,
    /// Title (blank once deleted).
    pub title: String,
    /// Markdown source (blank once deleted).
    pub body: String,
    /// Sanitized HTML rendering of `body`.
    pub body_html: String,
    /// Link, for link posts.
    pub url: Option<String>,
    /// Upvotes minus downvotes.
    pub score: i32,
    /// Upvotes.
    pub upvotes: i32,
    /// Downvotes.
    pub downvotes: i32,
    /// Comments on the post.
    pub comment_count: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
    /// Closed to new comments.
    pub locked: bool,
    /// Pinned to the top of its community.
    pub pinned: bool,
}

/// The post with this id, with its community and author names, in one query.
pub async fn view_by_id(conn: &mut AsyncPgConnection, id: PostId) -> QueryResult<Option<PostView>> {
    posts::table
        .inner_join(communities::table)
        .inner_join(users::table)
        .filter(posts::id.eq(id.0))
        .select((
            posts::id,
            communities::name,
            users::username,
            posts::title,
            posts::body,
            posts::body_html,
            posts::url,
            posts::score,
            posts::upvotes,
            posts::downvotes,
            posts::comment_count,
            posts::created_at,
            posts::edited_at,
            posts::deleted,
            posts::removed,
            posts::locked,
            posts::pinned,
        ))
        .first(conn)
        .await
        .optional()
}
