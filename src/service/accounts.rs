//! Account use cases: registration, sign-in, token refresh with reuse detection, sign-out,
//! password reset, and the caller's own profile.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::accounts::{self as db_accounts, AccountRow, InsertUserError, SessionState};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::{DbConn, DbError};
use crate::domain::{Bio, EmailAddress, NotificationSettings, Password, SessionId, UserId, Username};
use crate::error::{AppError, ErrorCode};
use crate::security::{self, AccessClaims, PasswordCheck, REFRESH_TOKEN_TTL, RESET_TOKEN_TTL, TokenKeys};
use crate::service::Context;
use crate::service::cache::Change;
use crate::service::cache_sync;

/// How long a session's state may be served from memory. Revocations by this process
/// invalidate the entry at once.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(60);

/// Signing keys and the cache of session states that every authenticated request consults.
#[derive(Clone)]
pub struct AuthState {
    /// Access-token keys.
    pub keys: TokenKeys,
    /// Session id → state, so a request does not query the database to learn it is not revoked.
    pub sessions: moka::future::Cache<i64, SessionState>,
    /// Access tokens whose signature was checked, until they expire: an Ed25519 verification
    /// costs more than the rest of a cached read. Revocation is the sessions' business.
    verified: moka::sync::Cache<Box<str>, AccessClaims>,
    /// Log reset links (development only).
    pub log_reset_links: bool,
}

impl AuthState {
    /// Auth state with the given keys.
    pub fn new(keys: TokenKeys, log_reset_links: bool) -> Self {
        let sessions = moka::future::Cache::builder().max_capacity(100_000).time_to_live(SESSION_CACHE_TTL).build();
        let verified = moka::sync::Cache::builder().max_capacity(50_000).expire_after(UntilExpiry).build();
        Self { keys, sessions, verified, log_reset_links }
    }

    /// The claims of `token` when it is ours and unexpired; the signature of a token is checked
    /// once, then remembered until the token expires.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        if let Some(claims) = self.verified.get(token)
            && claims.exp > crate::security::now_epoch_seconds()
        {
            return Some(claims);
        }
        let claims = self.keys.verify(token)?;
        self.verified.insert(token.into(), claims.clone());
        Some(claims)
    }
}

/// Keeps a verified token until its `exp`.
struct UntilExpiry;

impl moka::Expiry<Box<str>, AccessClaims> for UntilExpiry {
    fn expire_after_create(
        &self,
        _token: &Box<str>,
        claims: &AccessClaims,
        _created_at: std::time::Instant,
    ) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(claims.exp.saturating_sub(crate::security::now_epoch_seconds())))
    }
}

/// A caller whose access token was checked: signed by us, unexpired, its session live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// The user.
    pub user_id: UserId,
    /// Their login session.
    pub session_id: SessionId,
}

/// The caller's own account, as `/me` and sign-in answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnUser {
    /// Id.
    pub id: i64,
    /// Username as registered.
    pub username: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Vote total.
    pub karma: i64,
    /// Site administrator.
    pub is_admin: bool,
    /// Email (only ever shown to its owner).
    pub email: String,
    /// Profile text.
    pub bio: String,
    /// `member`, plus `moderator` and `admin` when they apply.
    pub roles: Vec<&'static str>,
    /// Email preferences.
    pub notification_settings: NotificationSettings,
    /// The avatar (a path on this server), when one is set.
    pub avatar_url: Option<String>,
    /// Whether NSFW images show unblurred in the pages.
    pub show_nsfw: bool,
    /// Posts whose title holds one of these (whole words, ignoring case) leave their listings.
    pub filtered_keywords: Vec<String>,
}

/// The answer to registration and sign-in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// The account.
    pub user: OwnUser,
    /// Bearer token for API calls, valid for `expires_in` seconds.
    pub access_token: String,
    /// Single-use token that buys a new pair.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// The answer to a refresh: a new pair.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Single-use token that buys the next pair.
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Username.
    pub username: Username,
    /// Email.
    pub email: EmailAddress,
    /// Password.
    pub password: Password,
}

/// A validated profile change.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// New bio.
    pub bio: Option<Bio>,
    /// New email preferences.
    pub notification_settings: Option<NotificationSettings>,
    /// New avatar: a ready upload of the user's (`Some(None)` removes it).
    pub avatar_id: Option<Option<i64>>,
    /// New NSFW preference.
    pub show_nsfw: Option<bool>,
    /// New filtered keywords (replacing the old list).
    pub filtered_keywords: Option<crate::domain::reader::FilteredKeywords>,
}

fn invalid_token() -> AppError {
    AppError::new(ErrorCode::InvalidToken, "the token is invalid, expired or already used")
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::internal(err)
}

/// Argon2 is deliberately slow: keep it off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work).await.map_err(internal)
}

fn query_error(query: &'static str) -> impl FnOnce(crate::db::QueryError) -> AppError {
    move |source| AppError::from(DbError::Query { query, source })
}

/// Creates an account and signs it in.
#[tracing::instrument(name = "service.accounts.register", skip_all, fields(username = %input.username))]
pub async fn register(ctx: &Context, input: NewAccount, user_agent: &str) -> Result<SignedIn, AppError> {
    let password = input.password.clone();
    let hash = blocking(move || security::hash_password(password.expose())).await?.map_err(internal)?;
    let mut conn = ctx.db.conn().await?;
    let user_agent = user_agent.to_owned();
    let work = ctx.db.transaction::<_, AppError>("accounts.register", &mut conn, async move |conn| {
        let account = db_accounts::insert_user(conn, input.username.as_str(), input.email.as_str(), &hash)
            .await
            .map_err(|err| match err {
                InsertUserError::UsernameTaken => AppError::new(ErrorCode::UsernameTaken, "that username is taken"),
                InsertUserError::EmailTaken => {
                    AppError::new(ErrorCode::EmailTaken, "an account with that email exists")
                }
                InsertUserError::Other(source) => query_error("accounts.insert_user")(source),
            })?;
        let pair = open_session(conn, &ctx.auth.keys, account.id, &user_agent).await?;
        Ok((account, pair))
    });
    let (account, pair) = work.await?;
    ctx.metrics.registrations.inc();
    tracing::info!(user_id = account.id, "account registered");
    crate::service::notifications::queue_email(ctx, crate::email::EmailJob::Welcome { user_id: account.id }).await;
    Ok(SignedIn {
        user: own_user(account, false, None),
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
    })
}

/// Signs in with a username or email and a password. Unknown accounts and wrong passwords get
/// the same answer after the same amount of work.
#[tracing::instrument(name = "service.accounts.login", skip_all)]
pub async fn login(ctx: &Context, login: &str, password: &str, user_agent: &str) -> Result<SignedIn, AppError> {
    let mut conn = ctx.db.conn().await?;
    // A NUL byte cannot be stored in PostgreSQL text, so no account can have it in its name.
    let found = if login.contains('\0') {
        None
    } else {
        ctx.db
            .observe("accounts.credentials_by_login", &mut conn, async |conn| {
                db_accounts::credentials_by_login(conn, login).await
            })
            .await?
    };
    let (user_id, stored_hash) = match &found {
        Some((id, hash)) => (Some(*id), hash.clone()),
        None => (None, security::dummy_password_hash().to_owned()),
    };
    let candidate = password.to_owned();
    let check = blocking(move || security::verify_password(&candidate, &stored_hash)).await?;
    let user_id = match (user_id, check) {
        (Some(id), PasswordCheck::Valid | PasswordCheck::ValidNeedsRehash) => id,
        (target, _) => {
            ctx.metrics.logins.with_label_values(&["failure"]).inc();
            let mut entry = NewAuditEntry::new("auth.login_failed");
            entry.target_user_id = target;
            entry.details = serde_json::json!({"known_account": target.is_some()});
            ctx.db.observe("audit.append", &mut conn, async |conn| audit::append(conn, &entry).await).await?;
            return Err(AppError::new(ErrorCode::InvalidCredentials, "wrong username, email or password"));
        }
    };
    if check == PasswordCheck::ValidNeedsRehash {
        let candidate = password.to_owned();
        let new_hash = blocking(move || security::hash_password(&candidate)).await?.map_err(internal)?;
        ctx.db
            .observe("accounts.set_password_hash", &mut conn, async |conn| {
                db_accounts::set_password_hash(conn, UserId(user_id), &new_hash).await
            })
            .await?;
        tracing::info!(user_id, "password rehashed with current parameters");
    }
    let user_agent = user_agent.to_owned();
    let keys = ctx.auth.keys.clone();
    let work = ctx.db.transaction::<_, AppError>("accounts.login", &mut conn, async move |conn| {
        let pair = open_session(conn, &keys, user_id, &user_agent).await?;
        let account =
            db_accounts::account_by_id(conn, UserId(user_id)).await.map_err(query_error("accounts.account_by_id"))?;
        let moderator = db_accounts::is_moderator_anywhere(conn, UserId(user_id))
            .await
            .map_err(query_error("accounts.is_moderator"))?;
        let avatar = account.as_ref().and_then(|a| a.avatar_upload_id);
        let avatar_url =
            crate::db::uploads::avatar_url(conn, avatar).await.map_err(query_error("uploads.avatar_url"))?;
        Ok((pair, account, moderator, avatar_url))
    });
    let (pair, account, moderator, avatar_url) = work.await?;
    let account =
        account.ok_or_else(|| AppError::new(ErrorCode::InvalidCredentials, "wrong username, email or password"))?;
    ctx.metrics.logins.with_label_values(&["success"]).inc();
    Ok(SignedIn {
        user: own_user(account, moderator, avatar_url),
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
    })
}

/// Exchanges a refresh token for a new pair. A token that was already spent proves it leaked:
/// the whole login (every token of the family) is revoked.
#[tracing::instrument(name = "service.accounts.refresh", skip_all)]
pub async fn refresh(ctx: &Context, refresh_token: &str) -> Result<TokenPair, AppError> {
    let token_hash = security::hash_secret_token(refresh_token);
    let mut conn = ctx.db.conn().await?;
    let keys = ctx.auth.keys.clone();
    let work = ctx.db.transaction::<_, AppError>("accounts.refresh", &mut conn, async move |conn| {
        let Some(row) = db_accounts::refresh_token_for_update(conn, &token_hash)
            .await
            .map_err(query_error("accounts.refresh_token_for_update"))?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        if row.spent {
            db_accounts::revoke_session(conn, SessionId(row.session_id), "refresh token reuse")
                .await
                .map_err(query_error("accounts.revoke_session"))?;
            let mut entry = NewAuditEntry::new("auth.refresh_token_reuse");
            entry.target_user_id = Some(row.user_id);
            entry.details = serde_json::json!({"session_id": row.session_id});
            audit::append(conn, &entry).await.map_err(query_error("audit.append"))?;
            return Ok(RefreshOutcome::Reused(row.session_id));
        }
        if row.session_revoked || row.expires_at <= Utc::now() {
            return Ok(RefreshOutcome::Invalid);
        }
        db_accounts::spend_refresh_token(conn, &token_hash)
            .await
            .map_err(query_error("accounts.spend_refresh_token"))?;
        let pair = rotate(conn, &keys, row.user_id, row.session_id).await?;
        Ok(RefreshOutcome::Refreshed(pair))
    });
    match work.await? {
        RefreshOutcome::Refreshed(pair) => {
            ctx.metrics.token_refreshes.with_label_values(&["success"]).inc();
            Ok(pair)
        }
        RefreshOutcome::Reused(session_id) => {
            ctx.metrics.token_refreshes.with_label_values(&["reuse"]).inc();
            ctx.auth.sessions.invalidate(&session_id).await;
            tracing::warn!(session_id, "a spent refresh token was reused: the login is revoked");
            Err(invalid_token())
        }
        RefreshOutcome::Invalid => {
            ctx.metrics.token_refreshes.with_label_values(&["invalid"]).inc();
            Err(invalid_token())
        }
    }
}

enum RefreshOutcome {
    Refreshed(TokenPair),
    Reused(i64),
    Invalid,
}

/// Ends the caller's login: its access and refresh tokens stop working at once.
#[tracing::instrument(name = "service.accounts.logout", skip_all, fields(session_id = auth.session_id.0))]
pub async fn logout(ctx: &Context, auth: Authenticated) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    ctx.db
        .observe("accounts.revoke_session", &mut conn, async |conn| {
            db_accounts::revoke_session(conn, auth.session_id, "logout").await
        })
        .await?;
    ctx.auth.sessions.invalidate(&auth.session_id.0).await;
    Ok(())
}

/// Starts a password reset. Answers the same whether or not the address has an account.
#[tracing::instrument(name = "service.accounts.request_password_reset", skip_all)]
pub async fn request_password_reset(ctx: &Context, email: &EmailAddress) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let Some(user_id) = ctx
        .db
        .observe("accounts.id_by_email", &mut conn, async |conn| db_accounts::id_by_email(conn, email.as_str()).await)
        .await?
    else {
        tracing::info!("password reset requested for an address without an account");
        return Ok(());
    };
    let (token, token_hash) = security::new_secret_token().map_err(internal)?;
    let expires_at = Utc::now() + RESET_TOKEN_TTL;
    ctx.db
        .observe("accounts.insert_reset_token", &mut conn, async |conn| {
            db_accounts::insert_reset_token(conn, &token_hash, UserId(user_id), expires_at).await
        })
        .await?;
    let mut entry = NewAuditEntry::new("auth.password_reset_requested");
    entry.target_user_id = Some(user_id);
    ctx.db.observe("audit.append", &mut conn, async |conn| audit::append(conn, &entry).await).await?;
    if ctx.auth.log_reset_links {
        let link = format!("{}/reset-password?token={token}", ctx.config.server.public_url.trim_end_matches('/'));
        tracing::info!(user_id, %link, "password reset link (auth.log_reset_links is on)");
    } else {
        tracing::info!(user_id, "password reset token issued");
    }
    if ctx.mailer.is_none() && !ctx.auth.log_reset_links {
        tracing::warn!(user_id, "a password reset was requested but email is off: no link can reach the user");
    }
    crate::service::notifications::queue_email(ctx, crate::email::EmailJob::PasswordReset { user_id, token }).await;
    Ok(())
}

/// Completes a password reset: sets the new password and revokes every login of the user.
#[tracing::instrument(name = "service.accounts.confirm_password_reset", skip_all)]
pub async fn confirm_password_reset(ctx: &Context, token: &str, new_password: &Password) -> Result<(), AppError> {
    let password = new_password.clone();
    let hash = blocking(move || security::hash_password(password.expose())).await?.map_err(internal)?;
    let token_hash = security::hash_secret_token(token);
    let mut conn = ctx.db.conn().await?;
    let work = ctx.db.transaction::<_, AppError>("accounts.confirm_password_reset", &mut conn, async move |conn| {
        let Some(user_id) =
            db_accounts::use_reset_token(conn, &token_hash).await.map_err(query_error("accounts.use_reset_token"))?
        else {
            return Err(AppError::new(
                ErrorCode::InvalidLinkToken,
                "the reset link is invalid, expired or already used",
            ));
        };
        db_accounts::set_password_hash(conn, UserId(user_id), &hash)
            .await
            .map_err(query_error("accounts.set_password_hash"))?;
        let revoked = db_accounts::revoke_user_sessions(conn, UserId(user_id), "password reset")
            .await
            .map_err(query_error("accounts.revoke_user_sessions"))?;
        let mut entry = NewAuditEntry::new("auth.password_reset");
        entry.target_user_id = Some(user_id);
        entry.details = serde_json::json!({"sessions_revoked": revoked.len()});
        audit::append(conn, &entry).await.map_err(query_error("audit.append"))?;
        Ok(revoked)
    });
    let revoked = work.await?;
    for session_id in revoked {
        ctx.auth.sessions.invalidate(&session_id).await;
    }
    Ok(())
}

/// Changes a signed-in user's password after checking the current one. Every login of the
/// account ends (a stolen session dies with the old password) and a new one is opened for
/// the caller.
#[tracing::instrument(name = "service.accounts.change_password", skip_all)]
pub async fn change_password(
    ctx: &Context,
    auth: Authenticated,
    current: &str,
    new_password: &Password,
    user_agent: &str,
) -> Result<SignedIn, AppError> {
    let mut conn = ctx.db.conn().await?;
    let account = ctx
        .db
        .observe("accounts.account_by_id", &mut conn, async |conn| db_accounts::account_by_id(conn, auth.user_id).await)
        .await?;
    let account = account.ok_or_else(|| AppError::unauthorized("the account is gone"))?;
    let found = ctx
        .db
        .observe("accounts.credentials_by_login", &mut conn, async |conn| {
            db_accounts::credentials_by_login(conn, &account.username).await
        })
        .await?;
    let stored_hash = found.map(|(_, hash)| hash).unwrap_or_else(|| security::dummy_password_hash().to_owned());
    let candidate = current.to_owned();
    let check = blocking(move || security::verify_password(&candidate, &stored_hash)).await?;
    if !matches!(check, PasswordCheck::Valid | PasswordCheck::ValidNeedsRehash) {
        return Err(AppError::invalid_field("current_password", "is not your current password"));
    }
    let password = new_password.clone();
    let hash = blocking(move || security::hash_password(password.expose())).await?.map_err(internal)?;
    let user_id = auth.user_id.0;
    let work = ctx.db.transaction::<_, AppError>("accounts.change_password", &mut conn, async move |conn| {
        db_accounts::set_password_hash(conn, UserId(user_id), &hash)
            .await
            .map_err(query_error("accounts.set_password_hash"))?;
        let revoked = db_accounts::revoke_user_sessions(conn, UserId(user_id), "password change")
            .await
            .map_err(query_error("accounts.revoke_user_sessions"))?;
        let mut entry = NewAuditEntry::new("auth.password_change");
        entry.actor_id = Some(user_id);
        entry.target_user_id = Some(user_id);
        entry.details = serde_json::json!({"sessions_revoked": revoked.len()});
        audit::append(conn, &entry).await.map_err(query_error("audit.append"))?;
        Ok(revoked)
    });
    let revoked = work.await?;
    for session_id in revoked {
        ctx.auth.sessions.invalidate(&session_id).await;
    }
    drop(conn);
    login(ctx, &account.username, new_password.expose(), user_agent).await
}

/// The caller's own account.
#[tracing::instrument(name = "service.accounts.me", skip_all)]
pub async fn me(ctx: &Context, auth: Authenticated) -> Result<OwnUser, AppError> {
    let mut conn = ctx.db.conn().await?;
    load_own_user(ctx, &mut conn, auth.user_id.0).await
}

/// Changes the caller's bio and/or email preferences.
#[tracing::instrument(name = "service.accounts.update_me", skip_all)]
pub async fn update_me(ctx: &Context, auth: Authenticated, update: ProfileUpdate) -> Result<OwnUser, AppError> {
    if let Some(Some(avatar)) = update.avatar_id {
        crate::service::media::ready_of(ctx, auth.user_id, avatar, "avatar_id").await?;
    }
    let mut conn = ctx.db.conn().await?;
    let settings =
        update.notification_settings.map(|s| serde_json::to_value(s).unwrap_or_else(|_| serde_json::json!({})));
    let bio = update.bio.as_ref().map(Bio::as_str);
    let media = db_accounts::ProfileMedia { show_nsfw: update.show_nsfw };
    ctx.db
        .observe("accounts.update_profile", &mut conn, async |conn| {
            db_accounts::update_profile(conn, auth.user_id, bio, settings, media).await
        })
        .await?;
    let avatar_changed = match update.avatar_id {
        Some(avatar) => {
            ctx.db
                .observe("accounts.set_avatar", &mut conn, async |conn| {
                    db_accounts::set_avatar(conn, auth.user_id, avatar).await
                })
                .await?
        }
        None => false,
    };
    if let Some(keywords) = &update.filtered_keywords {
        ctx.db
            .observe("reader.set_filtered_keywords", &mut conn, async |conn| {
                crate::db::reader::set_filtered_keywords(conn, auth.user_id, keywords.as_slice()).await
            })
            .await?;
    }
    let mut changes = Vec::new();
    if bio.is_some() {
        changes.push(Change::Profiles);
    }
    if avatar_changed {
        // The avatar shows beside the user's posts and comments everywhere, so only a real
        // change (not the same avatar sent again) drops the caches.
        changes.push(Change::Everything);
    }
    if avatar_changed || update.show_nsfw.is_some() || update.filtered_keywords.is_some() {
        changes.push(Change::Viewer(auth.user_id.0));
    }
    if !changes.is_empty() {
        cache_sync::committed(ctx, &mut conn, auth.user_id, &changes).await;
    }
    load_own_user(ctx, &mut conn, auth.user_id.0).await
}

/// What an unsubscribe link turned off.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Unsubscribed {
    /// `replies`, `mentions`, `messages` or `all`.
    pub topic: String,
    /// The preferences now in force.
    pub notification_settings: NotificationSettings,
}

/// Follows a signed unsubscribe link from an email: no sign-in needed, and following it again
/// changes nothing.
#[tracing::instrument(name = "service.accounts.unsubscribe", skip_all)]
pub async fn unsubscribe(ctx: &Context, token: &str) -> Result<Unsubscribed, AppError> {
    let invalid = || AppError::new(ErrorCode::InvalidLinkToken, "the unsubscribe link is invalid or expired");
    let (user_id, topic) = ctx.auth.keys.verify_unsubscribe(token).ok_or_else(invalid)?;
    let mut conn = ctx.db.conn().await?;
    let account = ctx
        .db
        .observe("accounts.account_by_id", &mut conn, async |conn| {
            db_accounts::account_by_id(conn, UserId(user_id)).await
        })
        .await?
        .ok_or_else(invalid)?;
    let mut settings: NotificationSettings = serde_json::from_value(account.notification_settings).unwrap_or_default();
    if !crate::email::unsubscribe(&mut settings, &topic) {
        return Err(invalid());
    }
    let value = serde_json::to_value(settings).map_err(internal)?;
    ctx.db
        .observe("accounts.update_profile", &mut conn, async |conn| {
            db_accounts::update_profile(conn, UserId(user_id), None, Some(value), Default::default()).await
        })
        .await?;
    tracing::info!(user_id, topic, "unsubscribed by email link");
    Ok(Unsubscribed { topic, notification_settings: settings })
}

/// Checks the claims of an access token whose signature and expiry were verified: its session
/// must be neither revoked nor expired (from the session cache, else the database).
pub async fn authenticate(ctx: &Context, claims: &AccessClaims) -> Result<Authenticated, AppError> {
    let user_id: i64 = claims.sub.parse().map_err(|_| AppError::unauthorized("the access token is invalid"))?;
    let session = match ctx.auth.sessions.get(&claims.sid).await {
        Some(session) => session,
        None => {
            let mut conn = ctx.db.conn().await?;
            let found = ctx
                .db
                .observe("accounts.session_state", &mut conn, async |conn| {
                    db_accounts::session_state(conn, SessionId(claims.sid)).await
                })
                .await?;
            let session = found.ok_or_else(|| AppError::unauthorized("the session no longer exists"))?;
            ctx.auth.sessions.insert(claims.sid, session).await;
            session
        }
    };
    if session.revoked || session.user_id != user_id || session.expires_at <= Utc::now() {
        return Err(AppError::unauthorized("this login was signed out or revoked"));
    }
    Ok(Authenticated { user_id: UserId(user_id), session_id: SessionId(claims.sid) })
}

/// Refreshes the active-sessions gauge (at scrape time; failures leave the last value).
pub async fn export_session_gauge(ctx: &Context) {
    let Ok(mut conn) = ctx.db.conn().await else { return };
    if let Ok(count) = ctx
        .db
        .observe("accounts.count_active_sessions", &mut conn, async |conn| {
            db_accounts::count_active_sessions(conn).await
        })
        .await
    {
        ctx.metrics.active_sessions.set(count);
    }
}

async fn load_own_user(ctx: &Context, conn: &mut DbConn, user_id: i64) -> Result<OwnUser, AppError> {
    let account = ctx
        .db
        .observe("accounts.account_by_id", conn, async |conn| db_accounts::account_by_id(conn, UserId(user_id)).await)
        .await?;
    let account = account.ok_or_else(|| AppError::unauthorized("the account no longer exists"))?;
    let moderator = ctx
        .db
        .observe("accounts.is_moderator", conn, async |conn| {
            db_accounts::is_moderator_anywhere(conn, UserId(user_id)).await
        })
        .await?;
    let avatar = account.avatar_upload_id;
    let avatar_url = ctx
        .db
        .observe("uploads.avatar_url", conn, async |conn| crate::db::uploads::avatar_url(conn, avatar).await)
        .await?;
    Ok(own_user(account, moderator, avatar_url))
}

fn own_user(account: AccountRow, moderator: bool, avatar_url: Option<String>) -> OwnUser {
    let mut roles = vec!["member"];
    if moderator {
        roles.push("moderator");
    }
    if account.is_admin {
        roles.push("admin");
    }
    let notification_settings = serde_json::from_value(account.notification_settings).unwrap_or_default();
    OwnUser {
        id: account.id,
        username: account.username,
        created_at: account.created_at,
        karma: account.karma,
        is_admin: account.is_admin,
        email: account.email,
        bio: account.bio,
        roles,
        notification_settings,
        avatar_url,
        show_nsfw: account.show_nsfw,
        filtered_keywords: account.filtered_keywords,
    }
}

/// Opens a login session with its first refresh token and access token.
async fn open_session(
    conn: &mut crate::db::Lent,
    keys: &TokenKeys,
    user_id: i64,
    user_agent: &str,
) -> Result<TokenPair, AppError> {
    let expires_at = Utc::now() + REFRESH_TOKEN_TTL;
    let user_agent: String = user_agent.chars().take(300).collect();
    let session_id = db_accounts::create_session(conn, UserId(user_id), &user_agent, expires_at)
        .await
        .map_err(query_error("accounts.create_session"))?;
    rotate(conn, keys, user_id, session_id).await
}

/// Issues the next refresh token of a session and a fresh access token.
async fn rotate(
    conn: &mut crate::db::Lent,
    keys: &TokenKeys,
    user_id: i64,
    session_id: i64,
) -> Result<TokenPair, AppError> {
    let (refresh_token, refresh_hash) = security::new_secret_token().map_err(internal)?;
    let expires_at = Utc::now() + REFRESH_TOKEN_TTL;
    db_accounts::insert_refresh_token(conn, &refresh_hash, SessionId(session_id), expires_at)
        .await
        .map_err(query_error("accounts.insert_refresh_token"))?;
    let access_token = keys.issue(user_id, session_id).map_err(internal)?;
    Ok(TokenPair { access_token, refresh_token, expires_in: security::ACCESS_TOKEN_TTL.as_secs() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_remembered_token_is_only_ever_the_exact_token_that_was_verified() {
        let auth = AuthState::new(TokenKeys::from_secret(&[7u8; 32]).unwrap(), false);
        let token = auth.keys.issue(42, 9).unwrap();
        assert_eq!(auth.verify(&token).unwrap().sid, 9);
        assert_eq!(auth.verify(&token).unwrap().sid, 9, "from memory the second time");
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert!(auth.verify(&tampered).is_none());
        let other = AuthState::new(TokenKeys::from_secret(&[8u8; 32]).unwrap(), false);
        assert!(other.verify(&token).is_none(), "another key's daemon never saw it");
    }
}
