//! SQL over `users`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::lower;
use crate::db::schema::users;
use crate::domain::Username;

/// The public columns of a user.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Username as registered.
    pub username: String,
    /// Sum of votes on the user's posts and comments.
    pub karma: i64,
    /// Site administrator.
    pub is_admin: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Profile text (Markdown).
    pub bio: String,
    /// The upload shown as the user's avatar.
    pub avatar_upload_id: Option<i64>,
}

/// The user with this username, ignoring case.
pub async fn by_username(conn: &mut AsyncPgConnection, username: &Username) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(lower(users::username).eq(lower(username.as_str())))
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()
}
