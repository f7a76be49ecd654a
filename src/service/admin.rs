//! Operator use cases run from the command line: create users, grant and revoke roles, and
//! verify the audit log's hash chain. Each takes a direct connection (a running daemon owns
//! the job queue, so the command line cannot build the whole service context), writes its
//! audit entry, and fails with the same `AppError` as every other use case.

use crate::db::accounts::{self as db_accounts, InsertUserError};
use crate::db::audit::{self, NewAuditEntry};
use crate::db::communities as db_communities;
use crate::db::ops::DirectConn;
use crate::domain::{CommunityId, UserId};
use crate::domain::{CommunityName, EmailAddress, Password, Username};
use crate::error::{AppError, ErrorCode};
use crate::security;

/// A role an operator can grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Site administrator.
    Admin,
    /// Moderator of one community.
    Moderator(CommunityName),
}

/// Creates a user (optionally a site admin); returns its id.
pub async fn create_user(
    conn: &mut DirectConn,
    username: &str,
    email: &str,
    password: &str,
    admin: bool,
) -> Result<i64, AppError> {
    let username = Username::parse(username).map_err(|e| AppError::invalid_field("username", e.to_string()))?;
    let email = EmailAddress::parse(email).map_err(|e| AppError::invalid_field("email", e.to_string()))?;
    let password = Password::parse(password).map_err(|e| AppError::invalid_field("password", e.to_string()))?;
    let hash = security::hash_password(password.expose()).map_err(AppError::internal)?;
    conn.transaction::<_, AppError>(async move |conn| {
        let account = db_accounts::insert_user(conn, username.as_str(), email.as_str(), &hash).await.map_err(
            |err| match err {
                InsertUserError::UsernameTaken => AppError::new(ErrorCode::UsernameTaken, "that username is taken"),
                InsertUserError::EmailTaken => {
                    AppError::new(ErrorCode::EmailTaken, "an account with that email exists")
                }
                InsertUserError::Other(err) => AppError::from(err),
            },
        )?;
        if admin {
            db_accounts::set_admin(conn, UserId(account.id), true).await?;
        }
        let mut entry = NewAuditEntry::new("admin.create_user");
        entry.target_user_id = Some(account.id);
        entry.details = serde_json::json!({"admin": admin, "via": "cli"});
        audit::append(conn, &entry).await?;
        Ok(account.id)
    })
    .await
}

/// Grants (`grant = true`) or revokes a role.
pub async fn set_role(conn: &mut DirectConn, username: &str, role: &Role, grant: bool) -> Result<(), AppError> {
    let user_id = conn
        .run(async |conn| db_communities::user_id_by_name(conn, username).await)
        .await?
        .ok_or_else(|| AppError::not_found(&format!("user {username}")))?;
    conn.transaction::<_, AppError>(async move |conn| {
        let mut entry = NewAuditEntry::new(if grant { "admin.grant" } else { "admin.revoke" });
        entry.target_user_id = Some(user_id);
        match role {
            Role::Admin => {
                db_accounts::set_admin(conn, UserId(user_id), grant).await?;
                entry.details = serde_json::json!({"role": "admin", "via": "cli"});
            }
            Role::Moderator(community) => {
                let (community_id, _) = db_communities::id_and_rules(conn, community.as_str())
                    .await?
                    .ok_or_else(|| AppError::not_found(&format!("community {}", community.as_str())))?;
                if grant {
                    db_communities::add_moderator(conn, CommunityId(community_id), UserId(user_id), UserId(user_id))
                        .await?;
                    db_communities::join(conn, CommunityId(community_id), UserId(user_id)).await?;
                } else {
                    db_communities::remove_moderator(conn, CommunityId(community_id), UserId(user_id)).await?;
                }
                entry.community_id = Some(community_id);
                entry.details = serde_json::json!({"role": "moderator", "via": "cli"});
            }
        }
        audit::append(conn, &entry).await?;
        Ok(())
    })
    .await?;
    // Profiles show admins and communities their moderators: running daemons must forget them.
    crate::service::cache_sync::flush_everywhere(conn).await?;
    Ok(())
}

/// The id of the first audit entry that breaks the hash chain, `None` when intact.
pub async fn verify_audit_log(conn: &mut DirectConn) -> Result<Option<i64>, AppError> {
    Ok(conn.run(async |conn| audit::first_broken_link(conn).await).await?)
}
