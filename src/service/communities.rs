//! Community use cases: create, list, read, edit, join/leave, moderators, bans.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::audit::{self, NewAuditEntry};
pub use crate::db::communities::CommunityView;
use crate::db::communities::{self as db_communities, CommunityCursor, CreateCommunityError};
use crate::db::{DbConn, DbError};
use crate::domain::content::{decode_cursor, encode_cursor};
use crate::domain::{CommunityId, UserId};
use crate::domain::{CommunityName, CommunitySort, CommunityTitle, Description, Limit, Rules, Username};
use crate::error::{AppError, ErrorCode, Fields};
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::{Change, Entry, Key, Personal, Served};
use crate::service::cache_sync;

/// One page of a listing, as every list endpoint answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where the next page starts; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Trims the `limit + 1` rows a keyset query fetched to one page, and returns the last row
/// kept when there is a next page (the extra row only says that one exists).
pub fn trim_to_page<T>(rows: &mut Vec<T>, limit: i64) -> Option<&T> {
    if rows.len() as i64 > limit {
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last()
    } else {
        None
    }
}

/// A validated new community.
#[derive(Debug, Clone)]
pub struct NewCommunity {
    /// Name.
    pub name: CommunityName,
    /// Title.
    pub title: CommunityTitle,
    /// Description.
    pub description: Description,
    /// Rules.
    pub rules: Rules,
}

impl NewCommunity {
    /// Validates a new community, naming every invalid field (the API and the page share it).
    pub fn parse(name: &str, title: &str, description: &str, rules: &[String]) -> Result<Self, AppError> {
        let mut fields = Fields::default();
        let name = fields.check("name", CommunityName::parse(name));
        let title = fields.check("title", CommunityTitle::parse(title));
        let description = fields.check("description", Description::parse(description));
        let rules = fields.check("rules", Rules::parse(rules));
        fields.finish(
            name.zip(title).zip(description).zip(rules).map(|(((name, title), description), rules)| NewCommunity {
                name,
                title,
                description,
                rules,
            }),
        )
    }
}

/// A validated community edit.
#[derive(Debug, Clone, Default)]
pub struct CommunityEdit {
    /// New title.
    pub title: Option<CommunityTitle>,
    /// New description.
    pub description: Option<Description>,
    /// New rules.
    pub rules: Option<Rules>,
    /// Switch AI summaries on or off.
    pub summaries_enabled: Option<bool>,
}

/// A validated ban.
#[derive(Debug, Clone)]
pub struct NewBan {
    /// Who.
    pub username: Username,
    /// Why (shown in the modlog).
    pub reason: String,
    /// Until when; `None` is permanent.
    pub expires_at: Option<DateTime<Utc>>,
}

fn reader_id(reader: Option<Authenticated>) -> i64 {
    reader.map_or(0, |r| r.user_id.0)
}

pub(crate) fn forbidden(detail: &str) -> AppError {
    AppError::forbidden(detail)
}

pub(crate) fn banned() -> AppError {
    AppError::new(ErrorCode::Banned, "you are banned from this community")
}

/// The id of the community with this name (any case), or 404.
pub(crate) async fn find_id(ctx: &Context, conn: &mut DbConn, name: &CommunityName) -> Result<i64, AppError> {
    let found = ctx
        .db
        .observe_read("communities.id_and_rules", conn, async |conn| {
            db_communities::id_and_rules(conn, name.as_str()).await
        })
        .await?;
    found.map(|(id, _)| id).ok_or_else(|| AppError::not_found("community"))
}

/// The community's id, rules and whether `user` moderates it (site admins moderate everywhere).
pub(crate) async fn moderation_rights(
    ctx: &Context,
    conn: &mut DbConn,
    community: &CommunityName,
    user_id: i64,
) -> Result<(i64, Vec<String>, bool), AppError> {
    let (id, rules) = ctx
        .db
        .observe("communities.id_and_rules", conn, async |conn| {
            db_communities::id_and_rules(conn, community.as_str()).await
        })
        .await?
        .ok_or_else(|| AppError::not_found("community"))?;
    let may = may_moderate(ctx, conn, CommunityId(id), UserId(user_id)).await?;
    Ok((id, rules, may))
}

/// Whether `user` moderates the community: one of its moderators, or a site admin (asked only
/// when the user is not a moderator).
pub(crate) async fn may_moderate(
    ctx: &Context,
    conn: &mut DbConn,
    community: CommunityId,
    user: UserId,
) -> Result<bool, AppError> {
    let moderates = ctx
        .db
        .observe("communities.is_moderator", conn, async |conn| {
            db_communities::is_moderator(conn, community, user).await
        })
        .await?;
    if moderates {
        return Ok(true);
    }
    Ok(ctx.db.observe("communities.is_admin", conn, async |conn| db_communities::is_admin(conn, user).await).await?)
}

/// Creates a community; the creator becomes its first moderator and member.
#[tracing::instrument(name = "service.communities.create", skip_all, fields(name = input.name.as_str()))]
pub async fn create(ctx: &Context, creator: Authenticated, input: NewCommunity) -> Result<CommunityView, AppError> {
    let mut conn = ctx.db.conn().await?;
    let name = input.name.clone();
    let created = ctx.db.transaction::<_, AppError>("communities.create", &mut conn, async move |conn| {
        db_communities::create(
            conn,
            creator.user_id,
            input.name.as_str(),
            input.title.as_str(),
            input.description.as_str(),
            input.rules.as_slice(),
        )
        .await
        .map_err(|err| match err {
            CreateCommunityError::Exists => {
                AppError::new(ErrorCode::CommunityExists, "a community with that name exists")
            }
            CreateCommunityError::Other(source) => DbError::Query { query: "communities.create", source }.into(),
        })
    });
    created.await?;
    cache_sync::committed(ctx, &mut conn, creator.user_id, &[Change::Communities, Change::Viewer(creator.user_id.0)])
        .await;
    view(ctx, &mut conn, &name, Some(creator)).await
}

/// A community as `reader` sees it.
pub async fn get(
    ctx: &Context,
    name: &CommunityName,
    reader: Option<Authenticated>,
) -> Result<CommunityView, AppError> {
    let mut conn = ctx.db.conn().await?;
    view(ctx, &mut conn, name, reader).await
}

async fn view(
    ctx: &Context,
    conn: &mut DbConn,
    name: &CommunityName,
    reader: Option<Authenticated>,
) -> Result<CommunityView, AppError> {
    ctx.db
        .observe_read("communities.view_by_name", conn, async |conn| {
            db_communities::view_by_name(conn, name.as_str(), reader_id(reader)).await
        })
        .await?
        .ok_or_else(|| AppError::not_found("community"))
}

/// A community through the response cache: the shared view (filled as an anonymous reader
/// sees it) and, for a signed-in reader, whether they are a member (a cached overlay).
pub async fn get_cached(
    ctx: &Context,
    name: &CommunityName,
    reader: Option<Authenticated>,
) -> Result<Served, AppError> {
    let cached = ctx
        .caches
        .responses
        .get_or_fill(Key::Community(name.as_str().to_lowercase().into()), async {
            let mut conn = ctx.shared_read_conn().await?;
            Entry::json(view(ctx, &mut conn, name, None).await?, Vec::new())
        })
        .await?;
    let Some(reader) = reader else { return Ok(Served::shared(cached)) };
    let Some(community) = cached.entry.data::<CommunityView>().cloned() else { return Ok(Served::shared(cached)) };
    let key = Key::Membership { viewer: reader.user_id.0, community: community.id };
    let overlay = ctx
        .caches
        .responses
        .get_or_fill(key, async {
            let mut conn = ctx.reader_read_conn(reader.user_id).await?;
            let member = ctx
                .db
                .observe_read("communities.is_member", &mut conn, async |conn| {
                    db_communities::is_member(conn, CommunityId(community.id), reader.user_id).await
                })
                .await?;
            Ok(Entry::value(member, 1))
        })
        .await?;
    let member = overlay.entry.data::<bool>().copied().unwrap_or(false);
    let personal = if member {
        let view = CommunityView { is_member: true, ..community };
        Some(Personal::of(&view)?)
    } else {
        None
    };
    Ok(Served::with_overlay(cached, overlay).with_personal(personal))
}

/// A community as `reader` sees it, from the cache (for pages).
pub async fn get_for(
    ctx: &Context,
    name: &CommunityName,
    reader: Option<Authenticated>,
) -> Result<CommunityView, AppError> {
    let served = get_cached(ctx, name, reader).await?;
    let community = served.data::<CommunityView>().cloned().ok_or_else(|| AppError::not_found("community"))?;
    Ok(CommunityView { is_member: served.overlay::<bool>().copied().unwrap_or(false), ..community })
}

/// A page of communities, most popular or newest first.
pub async fn list(
    ctx: &Context,
    sort: CommunitySort,
    limit: Limit,
    cursor: Option<&str>,
    reader: Option<Authenticated>,
) -> Result<Page<CommunityView>, AppError> {
    let after: Option<CommunityCursor> =
        cursor.map(decode_cursor).transpose().map_err(|err| AppError::invalid_field("cursor", err.to_string()))?;
    let popular = sort == CommunitySort::Popular;
    let mut conn = ctx.db.conn().await?;
    let mut rows = ctx
        .db
        .observe("communities.list", &mut conn, async |conn| {
            db_communities::list(conn, popular, after, limit.get(), reader_id(reader)).await
        })
        .await?;
    let next_cursor = trim_to_page(&mut rows, limit.get()).map(|last| {
        encode_cursor(&if popular {
            CommunityCursor::Popular(last.member_count, last.id)
        } else {
            CommunityCursor::New(last.created_at.timestamp_micros(), last.id)
        })
    });
    Ok(Page { items: rows, next_cursor })
}

/// Edits a community (moderators and admins).
#[tracing::instrument(name = "service.communities.edit", skip_all, fields(community = name.as_str()))]
pub async fn edit(
    ctx: &Context,
    editor: Authenticated,
    name: &CommunityName,
    edit: CommunityEdit,
) -> Result<CommunityView, AppError> {
    let mut conn = ctx.db.conn().await?;
    let (id, _, may) = moderation_rights(ctx, &mut conn, name, editor.user_id.0).await?;
    if !may {
        return Err(forbidden("only moderators can edit a community"));
    }
    let changes = serde_json::json!({
        "title": edit.title.as_ref().map(|t| t.as_str()),
        "description": edit.description.is_some(),
        "rules": edit.rules.as_ref().map(|r| r.as_slice()),
        "summaries_enabled": edit.summaries_enabled,
    });
    let work = ctx.db.transaction::<_, AppError>("communities.edit", &mut conn, async move |conn| {
        db_communities::update(
            conn,
            CommunityId(id),
            edit.title.as_ref().map(|t| t.as_str()),
            edit.description.as_ref().map(|d| d.as_str()),
            edit.rules.as_ref().map(|r| r.as_slice()),
            edit.summaries_enabled,
        )
        .await?;
        let mut entry = NewAuditEntry::new("community.edit");
        entry.actor_id = Some(editor.user_id.0);
        entry.community_id = Some(id);
        entry.details = changes;
        audit::append(conn, &entry).await?;
        Ok(())
    });
    work.await?;
    cache_sync::committed(ctx, &mut conn, editor.user_id, &[Change::Communities]).await;
    view(ctx, &mut conn, name, Some(editor)).await
}

/// Joins a community (idempotent); banned users cannot.
pub async fn join(ctx: &Context, user: Authenticated, name: &CommunityName) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let id = find_id(ctx, &mut conn, name).await?;
    if ctx
        .db
        .observe("communities.is_banned", &mut conn, async |conn| {
            db_communities::is_banned(conn, CommunityId(id), user.user_id).await
        })
        .await?
    {
        return Err(banned());
    }
    let work = ctx.db.transaction::<_, AppError>("communities.join", &mut conn, async move |conn| {
        Ok(db_communities::join(conn, CommunityId(id), user.user_id).await?)
    });
    if work.await? {
        cache_sync::committed(ctx, &mut conn, user.user_id, &[Change::Communities, Change::Viewer(user.user_id.0)])
            .await;
    }
    Ok(())
}

/// Leaves a community (idempotent).
pub async fn leave(ctx: &Context, user: Authenticated, name: &CommunityName) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let id = find_id(ctx, &mut conn, name).await?;
    let work = ctx.db.transaction::<_, AppError>("communities.leave", &mut conn, async move |conn| {
        Ok(db_communities::leave(conn, CommunityId(id), user.user_id).await?)
    });
    if work.await? {
        cache_sync::committed(ctx, &mut conn, user.user_id, &[Change::Communities, Change::Viewer(user.user_id.0)])
            .await;
    }
    Ok(())
}

/// Adds (`add = true`) or removes a moderator (moderators and admins only).
pub async fn set_moderator(
    ctx: &Context,
    actor: Authenticated,
    name: &CommunityName,
    username: &Username,
    add: bool,
) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let (id, _, may) = moderation_rights(ctx, &mut conn, name, actor.user_id.0).await?;
    if !may {
        return Err(forbidden("only moderators can change moderators"));
    }
    let target = ctx
        .db
        .observe("communities.user_id_by_name", &mut conn, async |conn| {
            db_communities::user_id_by_name(conn, username.as_str()).await
        })
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let work = ctx.db.transaction::<_, AppError>("communities.set_moderator", &mut conn, async move |conn| {
        let changed = if add {
            let added = db_communities::add_moderator(conn, CommunityId(id), UserId(target), actor.user_id).await?;
            db_communities::join(conn, CommunityId(id), UserId(target)).await?;
            added
        } else {
            db_communities::remove_moderator(conn, CommunityId(id), UserId(target)).await?
        };
        if !add && !changed {
            return Err(AppError::not_found("moderator"));
        }
        if changed {
            let mut entry =
                NewAuditEntry::new(if add { "community.moderator_add" } else { "community.moderator_remove" });
            entry.actor_id = Some(actor.user_id.0);
            entry.community_id = Some(id);
            entry.target_user_id = Some(target);
            audit::append(conn, &entry).await?;
        }
        Ok(())
    });
    work.await?;
    cache_sync::committed(ctx, &mut conn, actor.user_id, &[Change::Communities, Change::Viewer(target)]).await;
    Ok(())
}

/// Bans a user from a community (moderators and admins only).
pub async fn ban(ctx: &Context, actor: Authenticated, name: &CommunityName, ban: NewBan) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let (id, _, may) = moderation_rights(ctx, &mut conn, name, actor.user_id.0).await?;
    if !may {
        return Err(forbidden("only moderators can ban"));
    }
    let target = ctx
        .db
        .observe("communities.user_id_by_name", &mut conn, async |conn| {
            db_communities::user_id_by_name(conn, ban.username.as_str()).await
        })
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let work = ctx.db.transaction::<_, AppError>("communities.ban", &mut conn, async move |conn| {
        db_communities::ban(conn, CommunityId(id), UserId(target), actor.user_id, &ban.reason, ban.expires_at).await?;
        let mut entry = NewAuditEntry::new("community.ban");
        entry.actor_id = Some(actor.user_id.0);
        entry.community_id = Some(id);
        entry.target_user_id = Some(target);
        entry.reason = ban.reason.clone();
        entry.details = serde_json::json!({"expires_at": ban.expires_at});
        audit::append(conn, &entry).await?;
        Ok(())
    });
    work.await
}
