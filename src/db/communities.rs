//! SQL over `communities` and their members, moderators and bans.

use crate::domain::{CommunityId, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::lower;
use crate::db::schema::{communities, community_bans, community_members, community_moderators, users};

/// A community as the API shows it, for one reader.
#[derive(Debug, Clone, QueryableByName, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Community)]
pub struct CommunityView {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Name (`[a-z0-9_]`).
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Display title.
    #[diesel(sql_type = Text)]
    pub title: String,
    /// Markdown description.
    #[diesel(sql_type = Text)]
    pub description: String,
    /// Numbered rules, cited by reports and removals.
    #[diesel(sql_type = Array<Text>)]
    pub rules: Vec<String>,
    /// Members.
    #[diesel(sql_type = BigInt)]
    pub member_count: i64,
    /// Posts.
    #[diesel(sql_type = BigInt)]
    pub post_count: i64,
    /// Creation time.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Moderator usernames, longest-serving first.
    #[diesel(sql_type = Array<Text>)]
    pub moderators: Vec<String>,
    /// Whether the reader is a member.
    #[diesel(sql_type = Bool)]
    pub is_member: bool,
    /// Whether AI thread summaries are offered here (moderators can switch them off).
    #[diesel(sql_type = Bool)]
    pub summaries_enabled: bool,
}

const VIEW_SELECT: &str =
    "SELECT c.id, c.name, c.title, c.description, c.rules, c.member_count, c.post_count, c.created_at,
        coalesce((SELECT array_agg(u.username ORDER BY m.added_at, u.id)
                  FROM community_moderators m JOIN users u ON u.id = m.user_id
                  WHERE m.community_id = c.id), '{}') AS moderators,
        EXISTS (SELECT 1 FROM community_members cm WHERE cm.community_id = c.id AND cm.user_id = $1) AS is_member,
        c.summaries_enabled
    FROM communities c";

/// The community with this name (ignoring case), as `reader` (0 for anonymous) sees it.
pub async fn view_by_name(conn: &mut AsyncPgConnection, name: &str, reader: i64) -> QueryResult<Option<CommunityView>> {
    if name.contains('\0') {
        // PostgreSQL text cannot hold NUL, so no community has it in its name.
        return Ok(None);
    }
    diesel::sql_query(format!("{VIEW_SELECT} WHERE lower(c.name) = lower($2)"))
        .bind::<BigInt, _>(reader)
        .bind::<Text, _>(name)
        .get_result(conn)
        .await
        .optional()
}

/// Where a community listing continues.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CommunityCursor {
    /// After this member count and id.
    Popular(i64, i64),
    /// After this creation time (microseconds) and id.
    New(i64, i64),
}

/// One page of communities (`limit + 1` rows are read to know whether more follow).
pub async fn list(
    conn: &mut AsyncPgConnection,
    popular: bool,
    after: Option<CommunityCursor>,
    limit: i64,
    reader: i64,
) -> QueryResult<Vec<CommunityView>> {
    let order = if popular { "c.member_count DESC, c.id DESC" } else { "c.created_at DESC, c.id DESC" };
    let query = match after {
        Some(CommunityCursor::Popular(members, id)) if popular => diesel::sql_query(format!(
            "{VIEW_SELECT} WHERE (c.member_count, c.id) < ($2, $3) ORDER BY {order} LIMIT $4"
        ))
        .into_boxed()
        .bind::<BigInt, _>(reader)
        .bind::<BigInt, _>(members)
        .bind::<BigInt, _>(id),
        Some(CommunityCursor::New(micros, id)) if !popular => {
            diesel::sql_query(format!("{VIEW_SELECT} WHERE (c.created_at, c.id) < ($2, $3) ORDER BY {order} LIMIT $4"))
                .into_boxed()
                .bind::<BigInt, _>(reader)
                .bind::<Timestamptz, _>(DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default())
                .bind::<BigInt, _>(id)
        }
        _ => diesel::sql_query(format!("{VIEW_SELECT} WHERE $2 AND $3 ORDER BY {order} LIMIT $4"))
            .into_boxed()
            .bind::<BigInt, _>(reader)
            .bind::<Bool, _>(true)
            .bind::<Bool, _>(true),
    };
    query.bind::<BigInt, _>(limit + 1).load(conn).await
}

/// Why a community could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateCommunityError {
    /// The name is taken, ignoring case.
    #[error("community exists")]
    Exists,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] DieselError),
}

/// Creates a community with its creator as first moderator and member; returns its id.
pub async fn create(
    conn: &mut AsyncPgConnection,
    creator_id: UserId,
    name: &str,
    title: &str,
    description: &str,
    rules: &[String],
) -> Result<i64, CreateCommunityError> {
    let creator_id = creator_id.0;
    let id: i64 = diesel::insert_into(communities::table)
        .values((
            communities::name.eq(name),
            communities::title.eq(title),
            communities::description.eq(description),
            communities::rules.eq(rules),
            communities::creator_id.eq(creator_id),
            communities::member_count.eq(1),
        ))
        .returning(communities::id)
        .get_result(conn)
        .await
        .map_err(|err| match &err {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => CreateCommunityError::Exists,
            _ => CreateCommunityError::Other(err),
        })?;
    diesel::insert_into(community_moderators::table)
        .values((
            community_moderators::community_id.eq(id),
            community_moderators::user_id.eq(creator_id),
            community_moderators::added_by.eq(creator_id),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(community_members::table)
        .values((community_members::community_id.eq(id), community_members::user_id.eq(creator_id)))
        .execute(conn)
        .await?;
    Ok(id)
}

/// The id and rules of the community with this name, ignoring case.
pub async fn id_and_rules(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<(i64, Vec<String>)>> {
    if name.contains('\0') {
        // PostgreSQL text cannot hold NUL, so no community has it in its name.
        return Ok(None);
    }
    communities::table
        .filter(lower(communities::name).eq(lower(name)))
        .select((communities::id, communities::rules))
        .first(conn)
        .await
        .optional()
}

/// Changes a community's title, description and/or rules.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: CommunityId,
    title: Option<&str>,
    description: Option<&str>,
    rules: Option<&[String]>,
    summaries_enabled: Option<bool>,
) -> QueryResult<()> {
    let id = id.0;
    if let Some(title) = title {
        diesel::update(communities::table.find(id)).set(communities::title.eq(title)).execute(conn).await?;
    }
    if let Some(description) = description {
        diesel::update(communities::table.find(id)).set(communities::description.eq(description)).execute(conn).await?;
    }
    if let Some(rules) = rules {
        diesel::update(communities::table.find(id)).set(communities::rules.eq(rules)).execute(conn).await?;
    }
    if let Some(enabled) = summaries_enabled {
        diesel::update(communities::table.find(id))
            .set(communities::summaries_enabled.eq(enabled))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Whether the user moderates the community.
pub async fn is_moderator(
    conn: &mut AsyncPgConnection,
    community_id: CommunityId,
    user_id: UserId,
) -> QueryResult<bool> {
    let community_id = community_id.0;
    let user_id = user_id.0;
    diesel::select(diesel::dsl::exists(
        community_moderators::table
            .filter(community_moderators::community_id.eq(community_id))
            .filter(community_moderators::user_id.eq(user_id)),
    ))
    .get_result(conn)
    .await
}

/// Whether the user is a site administrator.
pub async fn is_admin(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<bool> {
    let user_id = user_id.0;
    users::table.find(user_id).select(users::is_admin).first(conn).await.optional().map(|a| a.unwrap_or(false))
}

/// Whether the user is banned from the community right now.
pub async fn is_banned(conn: &mut AsyncPgConnection, community_id: CommunityId, user_id: UserId) -> QueryResult<bool> {
    let community_id = community_id.0;
    let user_id = user_id.0;
    diesel::select(diesel::dsl::exists(
        community_bans::table
            .filter(community_bans::community_id.eq(community_id))
            .filter(community_bans::user_id.eq(user_id))
            .filter(community_bans::expires_at.is_null().or(community_bans::expires_at.gt(diesel::dsl::now))),
    ))
    .get_result(conn)
    .await
}

/// Adds a member; returns whether they were not one already. Keeps `member_count` exact.
pub async fn join(conn: &mut AsyncPgConnection, community_id: CommunityId, user_id: UserId) -> QueryResult<bool> {
    let community_id = community_id.0;
    let user_id = user_id.0;
    let inserted = diesel::insert_into(community_members::table)
        .values((community_members::community_id.eq(community_id), community_members::user_id.eq(user_id)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted > 0 {
        diesel::update(communities::table.find(community_id))
            .set(communities::member_count.eq(communities::member_count + 1))
            .execute(conn)
            .await?;
    }
    Ok(inserted > 0)
}

/// Removes a member; returns whether they were one. Keeps `member_count` exact.
pub async fn leave(conn: &mut AsyncPgConnection, community_id: CommunityId, user_id: UserId) -> QueryResult<bool> {
    let community_id = community_id.0;
    let user_id = user_id.0;
    let deleted = diesel::delete(
        community_members::table
            .filter(community_members::community_id.eq(community_id))
            .filter(community_members::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    if deleted > 0 {
        diesel::update(communities::table.find(community_id))
            .set(communities::member_count.eq(communities::member_count - 1))
            .execute(conn)
            .await?;
    }
    Ok(deleted > 0)
}

/// Makes a user a moderator (idempotent); returns whether they were not one already.
pub async fn add_moderator(
    conn: &mut AsyncPgConnection,
    community_id: CommunityId,
    user_id: UserId,
    by: UserId,
) -> QueryResult<bool> {
    let by = by.0;
    let community_id = community_id.0;
    let user_id = user_id.0;
    diesel::insert_into(community_moderators::table)
        .values((
            community_moderators::community_id.eq(community_id),
            community_moderators::user_id.eq(user_id),
            community_moderators::added_by.eq(by),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Removes a moderator; returns whether they were one.
pub async fn remove_moderator(
    conn: &mut AsyncPgConnection,
    community_id: CommunityId,
    user_id: UserId,
) -> QueryResult<bool> {
    let community_id = community_id.0;
    let user_id = user_id.0;
    diesel::delete(
        community_moderators::table
            .filter(community_moderators::community_id.eq(community_id))
            .filter(community_moderators::user_id.eq(user_id)),
    )
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Bans (or re-bans with new terms) a user from a community.
pub async fn ban(
    conn: &mut AsyncPgConnection,
    community_id: CommunityId,
    user_id: UserId,
    by: UserId,
    reason: &str,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    let by = by.0;
    let community_id = community_id.0;
    let user_id = user_id.0;
    diesel::insert_into(community_bans::table)
        .values((
            community_bans::community_id.eq(community_id),
            community_bans::user_id.eq(user_id),
            community_bans::banned_by.eq(by),
            community_bans::reason.eq(reason),
            community_bans::expires_at.eq(expires_at),
        ))
        .on_conflict((community_bans::community_id, community_bans::user_id))
        .do_update()
        .set((
            community_bans::banned_by.eq(by),
            community_bans::reason.eq(reason),
            community_bans::expires_at.eq(expires_at),
            community_bans::created_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The id of the user with this username, ignoring case.
pub async fn user_id_by_name(conn: &mut AsyncPgConnection, username: &str) -> QueryResult<Option<i64>> {
    users::table.filter(lower(users::username).eq(lower(username))).select(users::id).first(conn).await.optional()
}

/// The rules of a community.
pub async fn rules_by_id(conn: &mut AsyncPgConnection, id: CommunityId) -> QueryResult<Option<Vec<String>>> {
    let id = id.0;
    communities::table.find(id).select(communities::rules).first(conn).await.optional()
}

/// Whether `user_id` is a member of the community.
pub async fn is_member(conn: &mut AsyncPgConnection, community_id: CommunityId, user_id: UserId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        community_members::table
            .filter(community_members::community_id.eq(community_id.0))
            .filter(community_members::user_id.eq(user_id.0)),
    ))
    .get_result(conn)
    .await
}

/// Whether `user_id` joined any community.
pub async fn joined_any(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<bool> {
    use crate::db::schema::community_members;
    diesel::select(diesel::dsl::exists(community_members::table.filter(community_members::user_id.eq(user_id.0))))
        .get_result(conn)
        .await
}

/// The size of a reader's home feed: the communities they joined, the posts those hold, and
/// all posts (the planner's estimate, or the exact sum on a table never analyzed).
pub async fn feed_shape(conn: &mut AsyncPgConnection, user_id: UserId) -> QueryResult<(i64, i64, i64)> {
    #[derive(QueryableByName)]
    struct Shape {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        joined: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        joined_posts: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        all_posts: i64,
    }
    let shape: Shape = diesel::sql_query(
        "SELECT count(*)::int8 AS joined, coalesce(sum(c.post_count), 0)::int8 AS joined_posts,
                (SELECT CASE WHEN reltuples > 0 THEN reltuples::int8
                             ELSE (SELECT coalesce(sum(post_count), 0)::int8 FROM communities) END
                 FROM pg_class WHERE oid = 'posts'::regclass) AS all_posts
         FROM community_members m JOIN communities c ON c.id = m.community_id WHERE m.user_id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(user_id.0)
    .get_result(conn)
    .await?;
    Ok((shape.joined, shape.joined_posts, shape.all_posts))
}
