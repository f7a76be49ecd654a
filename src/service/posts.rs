//! Post use cases.

use serde::Serialize;

use crate::app::AppState;
use crate::db;
use crate::domain::PostId;
use crate::error::AppError;

/// The API's `post` object: the stored view plus what depends on the reader.
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    /// Everything stored about the post.
    #[serde(flatten)]
    pub view: db::posts::PostView,
    /// Uploaded image (arrives with media uploads).
    pub image: Option<serde_json::Value>,
    /// The caller's vote: -1, 0 or 1.
    pub my_vote: i16,
}

/// One post as an anonymous reader sees it.
#[tracing::instrument(name = "service.posts.get", skip_all, fields(post_id = id.0))]
pub async fn get(state: &AppState, id: PostId) -> Result<Post, AppError> {
    let mut conn = state.db.conn().await?;
    let view = state.db.observe("posts.view_by_id", db::posts::view_by_id(&mut conn, id)).await?;
    view.map(|view| Post { view, image: None, my_vote: 0 }).ok_or_else(|| AppError::not_found("post"))
}
