//! Post use cases.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::AppState;
use crate::db;
use crate::domain::PostId;
use crate::error::AppError;

/// The API's `post` object.
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    /// Id.
    pub id: i64,
    /// Community name.
    pub community: String,
    /// Author username.
    pub author: String,
    /// Title.
    pub title: String,
    /// Markdown source.
    pub body: String,
    /// Sanitized HTML rendering of `body`.
    pub body_html: String,
    /// Link of a link post.
    pub url: Option<String>,
    /// Uploaded image (arrives with media uploads).
    pub image: Option<serde_json::Value>,
    /// Upvotes minus downvotes.
    pub score: i32,
    /// Upvotes.
    pub upvotes: i32,
    /// Downvotes.
    pub downvotes: i32,
    /// Comments on the post.
    pub comment_count: i32,
    /// The caller's vote: -1, 0 or 1.
    pub my_vote: i16,
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
    /// Pinned in its community.
    pub pinned: bool,
}

impl Post {
    fn from_view(view: db::posts::PostView, my_vote: i16) -> Self {
        Self {
            id: view.id,
            community: view.community,
            author: view.author,
            title: view.title,
            body: view.body,
            body_html: view.body_html,
            url: view.url,
            image: None,
            score: view.score,
            upvotes: view.upvotes,
            downvotes: view.downvotes,
            comment_count: view.comment_count,
            my_vote,
            created_at: view.created_at,
            edited_at: view.edited_at,
            deleted: view.deleted,
            removed: view.removed,
            locked: view.locked,
            pinned: view.pinned,
        }
    }
}

/// One post as an anonymous reader sees it.
#[tracing::instrument(name = "service.posts.get", skip_all, fields(post_id = id.0))]
pub async fn get(state: &AppState, id: PostId) -> Result<Post, AppError> {
    let mut conn = state.db.conn().await?;
    let view = state.db.observe("posts.view_by_id", db::posts::view_by_id(&mut conn, id)).await?;
    view.map(|v| Post::from_view(v, 0)).ok_or_else(|| AppError::not_found("post"))
}
