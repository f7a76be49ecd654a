//! SQL over `users`.

use crate::domain::UserId;
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

/// Adds `delta` to a user's karma (a vote on their post or comment changed), in the
/// caller's transaction.
pub async fn add_karma(conn: &mut AsyncPgConnection, user: UserId, delta: i32) -> QueryResult<()> {
    let user = user.0;
    if delta != 0 {
        diesel::update(users::table.find(user))
            .set(users::karma.eq(users::karma + i64::from(delta)))
            .execute(conn)
            .await?;
    }
    Ok(())
}
