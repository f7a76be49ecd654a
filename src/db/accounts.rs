//! SQL over `users`, `login_sessions`, `refresh_tokens` and `password_reset_tokens`.

use crate::domain::{SessionId, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::lower;
use crate::db::schema::{community_moderators, login_sessions, password_reset_tokens, refresh_tokens, users};

/// Everything about a user that the user themselves may see.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct AccountRow {
    /// Id.
    pub id: i64,
    /// Username as registered.
    pub username: String,
    /// Email as registered.
    pub email: String,
    /// Profile text.
    pub bio: String,
    /// Site administrator.
    pub is_admin: bool,
    /// Vote total.
    pub karma: i64,
    /// Email preferences (JSON object).
    pub notification_settings: serde_json::Value,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// The upload shown as the user's avatar.
    pub avatar_upload_id: Option<i64>,
    /// Whether the user sees NSFW images unblurred.
    pub show_nsfw: bool,
    /// Keywords whose posts leave the user's listings.
    pub filtered_keywords: Vec<String>,
}

/// Why a new user could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// Another user has this name, ignoring case.
    #[error("username taken")]
    UsernameTaken,
    /// Another user has this email, ignoring case.
    #[error("email taken")]
    EmailTaken,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] DieselError),
}

/// Inserts a user and returns it.
pub async fn insert_user(
    conn: &mut AsyncPgConnection,
    username: &str,
    email: &str,
    password_hash: &str,
) -> Result<AccountRow, InsertUserError> {
    diesel::insert_into(users::table)
        .values((users::username.eq(username), users::email.eq(email), users::password_hash.eq(password_hash)))
        .returning(AccountRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|err| match &err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => match info.constraint_name() {
                Some("users_username_lower_key") => InsertUserError::UsernameTaken,
                Some("users_email_lower_key") => InsertUserError::EmailTaken,
                _ => InsertUserError::Other(err),
            },
            _ => InsertUserError::Other(err),
        })
}

/// The id and password hash of the user whose username or email is `login`, ignoring case.
pub async fn credentials_by_login(conn: &mut AsyncPgConnection, login: &str) -> QueryResult<Option<(i64, String)>> {
    users::table
        .filter(lower(users::username).eq(lower(login)).or(lower(users::email).eq(lower(login))))
        .select((users::id, users::password_hash))
        .first(conn)
        .await
        .optional()
}

/// The id of the user with this email, ignoring case.
pub async fn id_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<i64>> {
    users::table.filter(lower(users::email).eq(lower(email))).select(users::id).first(conn).await.optional()
}

/// A user's own view of their account.
pub async fn account_by_id(conn: &mut AsyncPgConnection, id: UserId) -> QueryResult<Option<AccountRow>> {
    let id = id.0;
    users::table.find(id).select(AccountRow::as_select()).first(conn).await.optional()
}

/// Whether the user moderates at least one community.
pub async fn is_moderator_anywhere(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<bool> {
    let user_id = user_id.0;
    diesel::select(diesel::dsl::exists(community_moderators::table.filter(community_moderators::user_id.eq(user_id))))
        .get_result(conn)
        .await
}

/// Stores a new password hash.
pub async fn set_password_hash(conn: &mut AsyncPgConnection, user_id: UserId, hash: &str) -> QueryResult<()> {
    let user_id = user_id.0;
    diesel::update(users::table.find(user_id))
        .set((users::password_hash.eq(hash), users::password_changed_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await
        .map(drop)
}

/// Updates the bio and/or notification settings, returning the account.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    bio: Option<&str>,
    notification_settings: Option<serde_json::Value>,
    media: ProfileMedia,
) -> QueryResult<Option<AccountRow>> {
    let user_id = user_id.0;
    if let Some(show_nsfw) = media.show_nsfw {
        diesel::update(users::table.find(user_id)).set(users::show_nsfw.eq(show_nsfw)).execute(conn).await?;
    }
    if let Some(bio) = bio {
        diesel::update(users::table.find(user_id)).set(users::bio.eq(bio)).execute(conn).await?;
    }
    if let Some(settings) = notification_settings {
        diesel::update(users::table.find(user_id)).set(users::notification_settings.eq(settings)).execute(conn).await?;
    }
    account_by_id(conn, UserId(user_id)).await
}

/// Sets (or, with `None`, clears) a user's avatar; whether it changed.
pub async fn set_avatar(conn: &mut AsyncPgConnection, user_id: UserId, avatar: Option<i64>) -> QueryResult<bool> {
    use diesel::PgExpressionMethods;
    let changed = diesel::update(users::table.find(user_id.0).filter(users::avatar_upload_id.is_distinct_from(avatar)))
        .set(users::avatar_upload_id.eq(avatar))
        .execute(conn)
        .await?;
    Ok(changed == 1)
}

/// The image-related profile changes besides the avatar (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProfileMedia {
    /// New NSFW preference.
    pub show_nsfw: Option<bool>,
}

/// Opens a login session and returns its id.
pub async fn create_session(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    user_agent: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<i64> {
    let user_id = user_id.0;
    diesel::insert_into(login_sessions::table)
        .values((
            login_sessions::user_id.eq(user_id),
            login_sessions::user_agent.eq(user_agent),
            login_sessions::expires_at.eq(expires_at),
        ))
        .returning(login_sessions::id)
        .get_result(conn)
        .await
}

/// Whether a session is usable, and whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct SessionState {
    /// The user.
    pub user_id: i64,
    /// When it was revoked, if it was.
    pub revoked: bool,
    /// When it expires unless refreshed.
    pub expires_at: DateTime<Utc>,
}

/// The state of a session.
pub async fn session_state(conn: &mut AsyncPgConnection, session_id: SessionId) -> QueryResult<Option<SessionState>> {
    let session_id = session_id.0;
    login_sessions::table
        .find(session_id)
        .select((login_sessions::user_id, login_sessions::revoked_at.is_not_null(), login_sessions::expires_at))
        .first(conn)
        .await
        .optional()
}

/// Revokes one session (idempotent).
pub async fn revoke_session(conn: &mut AsyncPgConnection, session_id: SessionId, reason: &str) -> QueryResult<()> {
    let session_id = session_id.0;
    diesel::update(login_sessions::table.find(session_id).filter(login_sessions::revoked_at.is_null()))
        .set((login_sessions::revoked_at.eq(diesel::dsl::now), login_sessions::revoked_reason.eq(reason)))
        .execute(conn)
        .await
        .map(drop)
}

/// Revokes every live session of a user; returns their ids.
pub async fn revoke_user_sessions(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    reason: &str,
) -> QueryResult<Vec<i64>> {
    let user_id = user_id.0;
    diesel::update(
        login_sessions::table.filter(login_sessions::user_id.eq(user_id)).filter(login_sessions::revoked_at.is_null()),
    )
    .set((login_sessions::revoked_at.eq(diesel::dsl::now), login_sessions::revoked_reason.eq(reason)))
    .returning(login_sessions::id)
    .get_results(conn)
    .await
}

/// Stores a refresh token's hash for a session and extends the session to `expires_at`.
pub async fn insert_refresh_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    session_id: SessionId,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    let session_id = session_id.0;
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    diesel::update(login_sessions::table.find(session_id))
        .set((login_sessions::last_used_at.eq(diesel::dsl::now), login_sessions::expires_at.eq(expires_at)))
        .execute(conn)
        .await
        .map(drop)
}

/// A stored refresh token with its session.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct RefreshTokenRow {
    /// The session (login family).
    pub session_id: i64,
    /// The session's user.
    pub user_id: i64,
    /// Already exchanged once.
    pub spent: bool,
    /// Expiry of this token.
    pub expires_at: DateTime<Utc>,
    /// The session was revoked.
    pub session_revoked: bool,
}

/// Looks a refresh token up by its hash, locking it for the rest of the transaction so two
/// concurrent refreshes with the same token are serialized.
pub async fn refresh_token_for_update(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .inner_join(login_sessions::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            refresh_tokens::session_id,
            login_sessions::user_id,
            refresh_tokens::spent_at.is_not_null(),
            refresh_tokens::expires_at,
            login_sessions::revoked_at.is_not_null(),
        ))
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Marks a refresh token spent.
pub async fn spend_refresh_token(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<()> {
    diesel::update(refresh_tokens::table.find(token_hash))
        .set(refresh_tokens::spent_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
        .map(drop)
}

/// Stores a password-reset token's hash.
pub async fn insert_reset_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    user_id: UserId,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    let user_id = user_id.0;
    diesel::insert_into(password_reset_tokens::table)
        .values((
            password_reset_tokens::token_hash.eq(token_hash),
            password_reset_tokens::user_id.eq(user_id),
            password_reset_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Uses a reset token once: returns its user when it was unused and unexpired.
pub async fn use_reset_token(conn: &mut AsyncPgConnection, token_hash: &[u8]) -> QueryResult<Option<i64>> {
    diesel::update(
        password_reset_tokens::table
            .find(token_hash)
            .filter(password_reset_tokens::used_at.is_null())
            .filter(password_reset_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(password_reset_tokens::used_at.eq(diesel::dsl::now))
    .returning(password_reset_tokens::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Sessions that are neither revoked nor expired.
pub async fn count_active_sessions(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    login_sessions::table
        .filter(login_sessions::revoked_at.is_null())
        .filter(login_sessions::expires_at.gt(diesel::dsl::now))
        .count()
        .get_result(conn)
        .await
}

/// Makes a user a site admin (`true`) or takes the role away.
pub async fn set_admin(conn: &mut AsyncPgConnection, user_id: UserId, admin: bool) -> QueryResult<()> {
    let user_id = user_id.0;
    diesel::update(users::table.find(user_id)).set(users::is_admin.eq(admin)).execute(conn).await.map(drop)
}
