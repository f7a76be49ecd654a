//! User use cases.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::AppState;
use crate::db;
use crate::domain::Username;
use crate::error::AppError;

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
}

/// A user's public profile.
#[tracing::instrument(name = "service.users.profile", skip_all, fields(username = %username))]
pub async fn profile(state: &AppState, username: &Username) -> Result<PublicUser, AppError> {
    let mut conn = state.db.conn().await?;
    let row = state.db.observe("users.by_username", db::users::by_username(&mut conn, username)).await?;
    let row = row.ok_or_else(|| AppError::not_found("user"))?;
    Ok(PublicUser {
        id: row.id,
        username: row.username,
        created_at: row.created_at,
        karma: row.karma,
        is_admin: row.is_admin,
    })
}
