//! Moderation use cases: remove/restore, lock/unlock, pin/unpin, reports and their queue,
//! and the modlog. Every action is written to the audit log in the same transaction.

use serde::Serialize;

use crate::db::DbConn;
use crate::db::accounts as db_accounts;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::comments as db_comments;
use crate::db::communities as db_communities;
use crate::db::moderation::{self as db_moderation, ModlogScope, NewReport};
pub use crate::db::moderation::{ModlogEntry, ReportView};
use crate::db::posts::{self as db_posts, PostFlag};
use crate::domain::content::{decode_cursor, encode_cursor};
use crate::domain::{CommentId, CommunityName, Limit, PostId, Reason};
use crate::domain::{CommunityId, UserId};
use crate::error::AppError;
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::Change;
use crate::service::cache_sync;
use crate::service::comments::{self, Comment};
use crate::service::communities::{Page, forbidden, trim_to_page};
use crate::service::posts::{self, Post};

/// What a moderator does to a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostAction {
    /// Hide it from everyone but moderators.
    Remove,
    /// Undo a removal.
    Restore,
    /// Refuse new comments.
    Lock,
    /// Accept comments again.
    Unlock,
    /// Show it first in its community.
    Pin,
    /// Stop showing it first.
    Unpin,
}

impl PostAction {
    /// Parses the last path segment of `/mod/posts/{id}/{action}`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "remove" => Self::Remove,
            "restore" => Self::Restore,
            "lock" => Self::Lock,
            "unlock" => Self::Unlock,
            "pin" => Self::Pin,
            "unpin" => Self::Unpin,
            _ => return None,
        })
    }

    fn flag(self) -> (PostFlag, bool, &'static str) {
        match self {
            Self::Remove => (PostFlag::Removed, true, "post.remove"),
            Self::Restore => (PostFlag::Removed, false, "post.restore"),
            Self::Lock => (PostFlag::Locked, true, "post.lock"),
            Self::Unlock => (PostFlag::Locked, false, "post.unlock"),
            Self::Pin => (PostFlag::Pinned, true, "post.pin"),
            Self::Unpin => (PostFlag::Pinned, false, "post.unpin"),
        }
    }
}

/// Why: one of the community's rules, free text, or both.
#[derive(Debug, Clone, Default)]
pub struct Why {
    /// A rule of the community (0-based).
    pub rule_index: Option<i32>,
    /// Free text.
    pub reason: Reason,
}

/// What a report is about.
#[derive(Debug, Clone, Copy)]
pub enum ReportTarget {
    /// A post.
    Post(PostId),
    /// A comment.
    Comment(CommentId),
}

/// A modlog entry with its details.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModlogItem {
    /// The entry.
    #[serde(flatten)]
    pub entry: ModlogEntry,
    /// Extra facts.
    pub details: serde_json::Value,
}

fn check_rule(rules: &[String], why: &Why) -> Result<(), AppError> {
    match why.rule_index {
        Some(index) if index < 0 || index as usize >= rules.len() => {
            Err(AppError::invalid_field("rule_index", format!("the community has {} rules", rules.len())))
        }
        _ => Ok(()),
    }
}

async fn community_rights(
    ctx: &Context,
    conn: &mut DbConn,
    community_id: i64,
    user_id: i64,
) -> Result<(Vec<String>, bool), AppError> {
    let rules: Vec<String> = ctx
        .db
        .observe("communities.rules_by_id", conn, async |conn| {
            db_communities::rules_by_id(conn, CommunityId(community_id)).await
        })
        .await?
        .unwrap_or_default();
    let may = crate::service::communities::may_moderate(ctx, conn, CommunityId(community_id), UserId(user_id)).await?;
    Ok((rules, may))
}

/// Whether `user` (named `username`) may moderate `community`, already read: its moderator
/// list answers without a query; only others cost the site-admin check.
pub async fn may_moderate_view(
    ctx: &Context,
    user: Authenticated,
    username: &str,
    community: &crate::db::communities::CommunityView,
) -> Result<bool, AppError> {
    if community.moderators.iter().any(|m| m.eq_ignore_ascii_case(username)) {
        return Ok(true);
    }
    // Site admins moderate everywhere; the cached profile says who they are.
    let Ok(name) = crate::domain::Username::parse(username) else { return Ok(false) };
    let profile = crate::service::users::profile_cached(ctx, &name).await?;
    Ok(profile.data::<crate::service::users::PublicUser>().is_some_and(|p| p.is_admin && p.id == user.user_id.0))
}

/// Removes, restores, locks, unlocks, pins or unpins a post (its moderators and admins).
#[tracing::instrument(name = "service.moderation.post", skip_all, fields(post_id = post.0, action = ?action))]
pub async fn moderate_post(
    ctx: &Context,
    actor: Authenticated,
    post: PostId,
    action: PostAction,
    why: Why,
) -> Result<Post, AppError> {
    let mut conn = ctx.db.conn().await?;
    let facts = ctx.db.observe("posts.facts", &mut conn, async |conn| db_posts::facts(conn, post, false).await).await?;
    let facts = facts.ok_or_else(|| AppError::not_found("post"))?;
    let (rules, may) = community_rights(ctx, &mut conn, facts.community_id, actor.user_id.0).await?;
    if !may {
        return Err(forbidden("only moderators of this community can do that"));
    }
    check_rule(&rules, &why)?;
    let (flag, value, action_name) = action.flag();
    let work = ctx.db.transaction::<_, AppError>("moderation.post", &mut conn, async move |conn| {
        if db_posts::set_flag(conn, post, flag, value).await? {
            let mut entry = NewAuditEntry::new(action_name);
            entry.actor_id = Some(actor.user_id.0);
            entry.community_id = Some(facts.community_id);
            entry.target_user_id = Some(facts.author_id);
            entry.post_id = Some(post.0);
            entry.rule_index = why.rule_index;
            entry.reason = why.reason.into_string();
            let notify = action_name == "post.remove" && facts.author_id != actor.user_id.0;
            if notify {
                let text = removal_note("post", &rules, &entry);
                crate::db::inbox::add_mod_action(conn, UserId(facts.author_id), post.0, None, &text).await?;
            }
            audit::append(conn, &entry).await?;
            return Ok(notify);
        }
        Ok(false)
    });
    let mut changes = vec![Change::Post(post.0), Change::Thread(post.0)];
    if work.await? {
        crate::service::inbox::count_added(ctx, ["mod_action"]);
        changes.push(Change::Viewer(facts.author_id));
    }
    cache_sync::committed(ctx, &mut conn, actor.user_id, &changes).await;
    posts::get(ctx, post, Some(actor)).await
}

/// Removes or restores a comment (its community's moderators and admins).
#[tracing::instrument(name = "service.moderation.comment", skip_all, fields(comment_id = comment.0, remove))]
pub async fn moderate_comment(
    ctx: &Context,
    actor: Authenticated,
    comment: CommentId,
    remove: bool,
    why: Why,
) -> Result<Comment, AppError> {
    let mut conn = ctx.db.conn().await?;
    let facts = ctx
        .db
        .observe("comments.facts", &mut conn, async |conn| db_comments::facts(conn, comment, false).await)
        .await?;
    let facts = facts.ok_or_else(|| AppError::not_found("comment"))?;
    let (rules, may) = community_rights(ctx, &mut conn, facts.community_id, actor.user_id.0).await?;
    if !may {
        return Err(forbidden("only moderators of this community can do that"));
    }
    check_rule(&rules, &why)?;
    let work = ctx.db.transaction::<_, AppError>("moderation.comment", &mut conn, async move |conn| {
        if db_comments::set_removed(conn, comment, remove).await? {
            let mut entry = NewAuditEntry::new(if remove { "comment.remove" } else { "comment.restore" });
            entry.actor_id = Some(actor.user_id.0);
            entry.community_id = Some(facts.community_id);
            entry.target_user_id = Some(facts.author_id);
            entry.post_id = Some(facts.post_id);
            entry.comment_id = Some(comment.0);
            entry.rule_index = why.rule_index;
            entry.reason = why.reason.into_string();
            let notify = remove && facts.author_id != actor.user_id.0;
            if notify {
                let text = removal_note("comment", &rules, &entry);
                crate::db::inbox::add_mod_action(conn, UserId(facts.author_id), facts.post_id, Some(comment.0), &text)
                    .await?;
            }
            audit::append(conn, &entry).await?;
            return Ok(notify);
        }
        Ok(false)
    });
    let mut changes = vec![Change::Thread(facts.post_id)];
    if work.await? {
        crate::service::inbox::count_added(ctx, ["mod_action"]);
        changes.push(Change::Viewer(facts.author_id));
    }
    cache_sync::committed(ctx, &mut conn, actor.user_id, &changes).await;
    comments::one(ctx, comment, Some(actor)).await
}

/// What the author's inbox says about a removal: the rule cited, or the reason.
fn removal_note(what: &str, rules: &[String], entry: &NewAuditEntry) -> String {
    let rule = entry.rule_index.and_then(|i| usize::try_from(i).ok()).and_then(|i| rules.get(i).map(|r| (i, r)));
    let why = match (rule, entry.reason.is_empty()) {
        (Some((i, rule)), true) => format!("rule {}: {rule}", i + 1),
        (Some((i, rule)), false) => format!("rule {}: {rule} ({})", i + 1, entry.reason),
        (None, false) => entry.reason.clone(),
        (None, true) => "no reason given".into(),
    };
    crate::service::inbox::excerpt(&format!("A moderator removed your {what}: {why}"))
}

/// Files a report citing a rule or giving a reason (any signed-in user).
#[tracing::instrument(name = "service.moderation.report", skip_all)]
pub async fn report(ctx: &Context, reporter: Authenticated, target: ReportTarget, why: Why) -> Result<i64, AppError> {
    if why.rule_index.is_none() && why.reason.as_str().is_empty() {
        return Err(AppError::invalid_field("reason", "cite a rule (rule_index) or give a reason"));
    }
    let mut conn = ctx.db.conn().await?;
    let (community_id, post_id, comment_id) = match target {
        ReportTarget::Post(post) => {
            let facts =
                ctx.db.observe("posts.facts", &mut conn, async |conn| db_posts::facts(conn, post, false).await).await?;
            (facts.ok_or_else(|| AppError::not_found("post"))?.community_id, Some(post.0), None)
        }
        ReportTarget::Comment(comment) => {
            let facts = ctx
                .db
                .observe("comments.facts", &mut conn, async |conn| db_comments::facts(conn, comment, false).await)
                .await?;
            (facts.ok_or_else(|| AppError::not_found("comment"))?.community_id, None, Some(comment.0))
        }
    };
    let rules = ctx
        .db
        .observe("communities.rules_by_id", &mut conn, async |conn| {
            db_communities::rules_by_id(conn, CommunityId(community_id)).await
        })
        .await?
        .unwrap_or_default();
    check_rule(&rules, &why)?;
    let report = NewReport {
        reporter_id: reporter.user_id.0,
        community_id: Some(community_id),
        post_id,
        comment_id,
        message_id: None,
        rule_index: why.rule_index,
        reason: why.reason.into_string(),
    };
    Ok(ctx
        .db
        .observe("moderation.insert_report", &mut conn, async |conn| db_moderation::insert_report(conn, &report).await)
        .await?)
}

/// Which entries `user` may read: one community they moderate, or all they moderate (all for admins).
async fn scope(
    ctx: &Context,
    conn: &mut DbConn,
    user: Authenticated,
    community: Option<&CommunityName>,
) -> Result<ModlogScope, AppError> {
    let is_admin = ctx
        .db
        .observe("communities.is_admin", conn, async |conn| db_communities::is_admin(conn, user.user_id).await)
        .await?;
    match community {
        Some(name) => {
            let (id, _) = ctx
                .db
                .observe("communities.id_and_rules", conn, async |conn| {
                    db_communities::id_and_rules(conn, name.as_str()).await
                })
                .await?
                .ok_or_else(|| AppError::not_found("community"))?;
            let moderates = ctx
                .db
                .observe("communities.is_moderator", conn, async |conn| {
                    db_communities::is_moderator(conn, CommunityId(id), user.user_id).await
                })
                .await?;
            if is_admin || moderates {
                Ok(ModlogScope::Community(id))
            } else {
                Err(forbidden("only moderators read this"))
            }
        }
        None if is_admin => Ok(ModlogScope::All),
        None => {
            let moderates = ctx
                .db
                .observe("accounts.is_moderator", conn, async |conn| {
                    db_accounts::is_moderator_anywhere(conn, user.user_id).await
                })
                .await?;
            if moderates {
                Ok(ModlogScope::ModeratedBy(user.user_id.0))
            } else {
                Err(forbidden("only moderators read this"))
            }
        }
    }
}

fn before(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    cursor.map(decode_cursor::<i64>).transpose().map_err(|err| AppError::invalid_field("cursor", err.to_string()))
}

fn page<T>(mut rows: Vec<T>, limit: Limit, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| encode_cursor(&id(last)));
    Page { items: rows, next_cursor }
}

/// The modlog: moderators read their communities', admins everything.
#[tracing::instrument(name = "service.moderation.modlog", skip_all)]
pub async fn modlog(
    ctx: &Context,
    reader: Authenticated,
    community: Option<&CommunityName>,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<ModlogItem>, AppError> {
    let before_id = before(cursor)?;
    let mut conn = ctx.db.conn().await?;
    let scope = scope(ctx, &mut conn, reader, community).await?;
    let rows = ctx
        .db
        .observe("moderation.modlog", &mut conn, async |conn| {
            db_moderation::modlog(conn, scope, before_id, limit.get() + 1).await
        })
        .await?;
    let items = rows
        .into_iter()
        .map(|entry| {
            let details = serde_json::from_str(&entry.details_json).unwrap_or_else(|_| serde_json::json!({}));
            ModlogItem { entry, details }
        })
        .collect();
    Ok(page(items, limit, |item: &ModlogItem| item.entry.id))
}

/// The queue of open reports.
#[tracing::instrument(name = "service.moderation.reports", skip_all)]
pub async fn open_reports(
    ctx: &Context,
    reader: Authenticated,
    community: Option<&CommunityName>,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<ReportView>, AppError> {
    let before_id = before(cursor)?;
    let mut conn = ctx.db.conn().await?;
    let scope = scope(ctx, &mut conn, reader, community).await?;
    let rows = ctx
        .db
        .observe("moderation.open_reports", &mut conn, async |conn| {
            db_moderation::open_reports(conn, scope, before_id, limit.get() + 1).await
        })
        .await?;
    Ok(page(rows, limit, |report: &ReportView| report.id))
}

/// Closes a report (its community's moderators and admins).
pub async fn resolve_report(ctx: &Context, actor: Authenticated, id: i64) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let community_id = ctx
        .db
        .observe("moderation.open_report_community", &mut conn, async |conn| {
            db_moderation::open_report_community(conn, id).await
        })
        .await?
        .ok_or_else(|| AppError::not_found("open report"))?;
    let may = match community_id {
        Some(community_id) => community_rights(ctx, &mut conn, community_id, actor.user_id.0).await?.1,
        // A private message's report is the site admins' alone.
        None => {
            ctx.db
                .observe("communities.is_admin", &mut conn, async |conn| {
                    db_communities::is_admin(conn, actor.user_id).await
                })
                .await?
        }
    };
    if !may {
        return Err(forbidden(if community_id.is_some() {
            "only moderators of this community can do that"
        } else {
            "only site admins can resolve a report of a private message"
        }));
    }
    let work = ctx.db.transaction::<_, AppError>("moderation.resolve_report", &mut conn, async move |conn| {
        db_moderation::resolve_report(conn, id, actor.user_id).await?;
        let mut entry = NewAuditEntry::new("report.resolve");
        entry.actor_id = Some(actor.user_id.0);
        entry.community_id = community_id;
        entry.details = serde_json::json!({"report_id": id});
        audit::append(conn, &entry).await?;
        Ok(())
    });
    work.await
}
