//! SQL over `posts` and `post_votes`: the post view, keyset listings for every sort, search,
//! writes, votes and moderation flags.

use crate::domain::{CommunityId, PostId, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::schema::{communities, posts};

/// A post as the API shows it, for one reader.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct PostView {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Community name.
    #[diesel(sql_type = Text)]
    pub community: String,
    /// Author username.
    #[diesel(sql_type = Text)]
    pub author: String,
    /// Title (blank once deleted).
    #[diesel(sql_type = Text)]
    pub title: String,
    /// Markdown source (blank once deleted or removed).
    #[diesel(sql_type = Text)]
    pub body: String,
    /// Sanitized HTML rendering of `body`.
    #[diesel(sql_type = Text)]
    pub body_html: String,
    /// Link, for link posts.
    #[diesel(sql_type = Nullable<Text>)]
    pub url: Option<String>,
    /// Upvotes minus downvotes.
    #[diesel(sql_type = Integer)]
    pub score: i32,
    /// Upvotes.
    #[diesel(sql_type = Integer)]
    pub upvotes: i32,
    /// Downvotes.
    #[diesel(sql_type = Integer)]
    pub downvotes: i32,
    /// Comments on the post.
    #[diesel(sql_type = Integer)]
    pub comment_count: i32,
    /// The reader's vote.
    #[diesel(sql_type = SmallInt)]
    pub my_vote: i16,
    /// Saved by the reader.
    #[diesel(sql_type = Bool)]
    pub saved: bool,
    /// Hidden by the reader (a hidden post leaves their listings, so this shows only when
    /// they open it).
    #[diesel(sql_type = Bool)]
    pub hidden: bool,
    /// Creation time.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Last edit.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted by its author.
    #[diesel(sql_type = Bool)]
    pub deleted: bool,
    /// Removed by a moderator.
    #[diesel(sql_type = Bool)]
    pub removed: bool,
    /// Closed to new comments.
    #[diesel(sql_type = Bool)]
    pub locked: bool,
    /// Pinned to the top of its community.
    #[diesel(sql_type = Bool)]
    pub pinned: bool,
    /// Not safe for work: pages blur its image unless the reader chose to see such images.
    #[diesel(sql_type = Bool)]
    pub nsfw: bool,
    /// A spoiler: pages hide its image until clicked.
    #[diesel(sql_type = Bool)]
    pub spoiler: bool,
    /// The author's avatar (the URL `db::uploads::avatar_of` gives), when they have one.
    #[diesel(sql_type = Nullable<Text>)]
    pub author_avatar_url: Option<String>,
    /// The image's upload.
    #[diesel(sql_type = Nullable<BigInt>)]
    #[serde(skip)]
    pub image_id: Option<i64>,
    /// The image's width.
    #[diesel(sql_type = Nullable<Integer>)]
    #[serde(skip)]
    pub image_width: Option<i32>,
    /// The image's height.
    #[diesel(sql_type = Nullable<Integer>)]
    #[serde(skip)]
    pub image_height: Option<i32>,
    /// The image's content hash (the name of its files).
    #[diesel(sql_type = Nullable<Text>)]
    #[serde(skip)]
    pub image_hash: Option<String>,
    /// The image's stored thumbnail widths.
    #[diesel(sql_type = Nullable<Array<Integer>>)]
    #[serde(skip)]
    pub image_widths: Option<Vec<i32>>,
    /// Sort key of `hot`.
    #[diesel(sql_type = Double)]
    #[serde(skip)]
    pub hot_rank: f64,
    /// Sort key of `controversial`.
    #[diesel(sql_type = Double)]
    #[serde(skip)]
    pub controversy_rank: f64,
    /// Sort key of `active`.
    #[diesel(sql_type = Timestamptz)]
    #[serde(skip)]
    pub last_activity_at: DateTime<Utc>,
    /// Search rank (0 outside search).
    #[diesel(sql_type = Double)]
    #[serde(skip)]
    pub rank: f64,
}

/// `$1` is the reader (0 for anonymous). Removed posts keep their text for moderators to
/// restore, but nobody reads it through the API.
const VIEW_SELECT: &str = "SELECT p.id, c.name AS community, u.username AS author, p.title,
        CASE WHEN p.removed THEN '' ELSE p.body END AS body,
        CASE WHEN p.removed THEN '' ELSE p.body_html END AS body_html,
        p.url, p.score, p.upvotes, p.downvotes, p.comment_count,
        coalesce((SELECT v.value FROM post_votes v WHERE v.post_id = p.id AND v.user_id = $1), 0)::int2 AS my_vote,
        CASE WHEN $1 = 0 THEN false
             ELSE EXISTS (SELECT 1 FROM saved_posts s WHERE s.user_id = $1 AND s.post_id = p.id) END AS saved,
        CASE WHEN $1 = 0 THEN false
             ELSE EXISTS (SELECT 1 FROM hidden_posts h WHERE h.user_id = $1 AND h.post_id = p.id) END AS hidden,
        p.created_at, p.edited_at, p.deleted, p.removed, p.locked, p.pinned, p.nsfw, p.spoiler,
        i.id AS image_id, i.width AS image_width, i.height AS image_height, i.content_hash AS image_hash,
        i.thumbnail_widths AS image_widths,
        CASE WHEN av.id IS NULL THEN NULL
             WHEN 320 = ANY (av.thumbnail_widths) THEN '/media/' || av.content_hash || '-w320.webp'
             ELSE '/media/' || av.content_hash || '.webp' END AS author_avatar_url,
        p.hot_rank, p.controversy_rank, p.last_activity_at";

/// What a post view joins to `p`. The image shows only once ready, and not on a removed post
/// (which keeps it for a restore).
macro_rules! view_joins {
    () => {
        " JOIN communities c ON c.id = p.community_id JOIN users u ON u.id = p.author_id
        LEFT JOIN uploads i ON i.id = p.image_upload_id AND i.status = 'ready' AND NOT p.removed
        LEFT JOIN uploads av ON av.id = u.avatar_upload_id AND av.status = 'ready'"
    };
}

const VIEW_FROM: &str = concat!(" FROM posts p", view_joins!());

/// Whether a home feed merges the top of each joined community's own index (reading about
/// `joined × limit` rows) rather than read the global index for the joined communities' posts
/// (about `limit × all_posts / joined_posts` rows): the merge wins when
/// `joined × joined_posts < all_posts`, a reader of a few communities holding a small share
/// of the posts.
pub fn merges_feed(joined: i64, joined_posts: i64, all_posts: i64) -> bool {
    joined.saturating_mul(joined_posts) < all_posts
}

/// The post with this id, as `reader` (0 for anonymous) sees it.
pub async fn view_by_id(conn: &mut AsyncPgConnection, id: PostId, reader: i64) -> QueryResult<Option<PostView>> {
    diesel::sql_query(format!("{VIEW_SELECT}, 0::float8 AS rank {VIEW_FROM} WHERE p.id = $2"))
        .bind::<BigInt, _>(reader)
        .bind::<BigInt, _>(id.0)
        .get_result(conn)
        .await
        .optional()
}

/// Where a post listing continues: the last row's sort key and id.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PostCursor {
    /// `hot`.
    Hot(f64, i64),
    /// `new` (microseconds).
    New(i64, i64),
    /// `top`.
    Top(i32, i64),
    /// `controversial`.
    Controversial(f64, i64),
    /// `active` (microseconds).
    Active(i64, i64),
    /// Search rank.
    Rank(f64, i64),
}

impl PostCursor {
    /// The cursor that continues after `post` in a listing of this kind.
    pub fn after(&self, post: &PostView) -> Self {
        match self {
            Self::Hot(..) => Self::Hot(post.hot_rank, post.id),
            Self::New(..) => Self::New(post.created_at.timestamp_micros(), post.id),
            Self::Top(..) => Self::Top(post.score, post.id),
            Self::Controversial(..) => Self::Controversial(post.controversy_rank, post.id),
            Self::Active(..) => Self::Active(post.last_activity_at.timestamp_micros(), post.id),
            Self::Rank(..) => Self::Rank(post.rank, post.id),
        }
    }
}

/// What a listing shows.
#[derive(Debug, Clone)]
pub struct ListingQuery {
    /// The reader (0 for anonymous).
    pub reader: i64,
    /// Only this community.
    pub community_id: Option<i64>,
    /// Only the communities this user joined (their home feed), and whether to merge the
    /// communities' own indexes ([`merges_feed`]).
    pub member_of: Option<(i64, bool)>,
    /// Only posts created after this time.
    pub since: Option<DateTime<Utc>>,
    /// The sort, as the kind of cursor (its values are ignored when `after` is `None`).
    pub sort: PostCursor,
    /// Continue after this position.
    pub after: Option<PostCursor>,
    /// Leave out pinned posts (they are listed separately at the top of a community).
    pub exclude_pinned: bool,
    /// Rows to read.
    pub limit: i64,
}

/// One page of posts ordered by the listing's sort, newest-id first among equal keys.
///
/// A home feed of few communities reads the top of each community's index and merges them
/// (`community_members` × `LATERAL`): a reader of three small communities then reads about
/// 3 × limit index rows instead of the global index until enough of theirs turn up.
pub async fn list(conn: &mut AsyncPgConnection, listing: &ListingQuery) -> QueryResult<Vec<PostView>> {
    let key = match listing.sort {
        PostCursor::Hot(..) => "p.hot_rank",
        PostCursor::New(..) => "p.created_at",
        PostCursor::Top(..) => "p.score",
        PostCursor::Controversial(..) => "p.controversy_rank",
        PostCursor::Active(..) => "p.last_activity_at",
        PostCursor::Rank(..) => "p.id",
    };
    // Conditions on `p`; parameters are numbered in the order they are bound ($1: the reader).
    let mut next = 1;
    let mut param = || {
        next += 1;
        next
    };
    let mut conditions = vec!["NOT p.deleted".to_owned(), "NOT p.removed".to_owned()];
    let merged = matches!(listing.member_of, Some((_, true)));
    if listing.community_id.is_some() {
        conditions.push(format!("p.community_id = ${}", param()));
    }
    match listing.member_of {
        Some((_, true)) => conditions.push("p.community_id = m.community_id".into()),
        Some((_, false)) => conditions.push(format!(
            "p.community_id IN (SELECT m.community_id FROM community_members m WHERE m.user_id = ${})",
            param()
        )),
        None => {}
    }
    if listing.since.is_some() {
        conditions.push(format!("p.created_at >= ${}", param()));
    }
    if listing.exclude_pinned {
        conditions.push("NOT p.pinned".into());
    }
    if listing.after.is_some() {
        let (a, b) = (param(), param());
        conditions.push(format!("({key}, p.id) < (${a}, ${b})"));
    }
    let member_param = if merged { param() } else { 0 };
    let limit_param = param();
    let order = format!("ORDER BY {key} DESC, p.id DESC LIMIT ${limit_param}");
    let filter = conditions.join(" AND ");
    let sql = if merged {
        format!(
            "{VIEW_SELECT}, 0::float8 AS rank FROM (SELECT p.* FROM community_members m CROSS JOIN LATERAL
               (SELECT * FROM posts p WHERE {filter} {order}) p WHERE m.user_id = ${member_param}) p{joins} {order}",
            joins = view_joins!()
        )
    } else {
        format!("{VIEW_SELECT}, 0::float8 AS rank {VIEW_FROM} WHERE {filter} {order}")
    };
    let mut query = diesel::sql_query(sql).into_boxed().bind::<BigInt, _>(listing.reader);
    if let Some(community_id) = listing.community_id {
        query = query.bind::<BigInt, _>(community_id);
    }
    if let Some((member, false)) = listing.member_of {
        query = query.bind::<BigInt, _>(member);
    }
    if let Some(since) = listing.since {
        query = query.bind::<Timestamptz, _>(since);
    }
    if let Some(after) = listing.after {
        query = match after {
            PostCursor::Hot(v, id) | PostCursor::Controversial(v, id) | PostCursor::Rank(v, id) => {
                query.bind::<Double, _>(v).bind::<BigInt, _>(id)
            }
            PostCursor::New(micros, id) | PostCursor::Active(micros, id) => query
                .bind::<Timestamptz, _>(DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default())
                .bind::<BigInt, _>(id),
            PostCursor::Top(score, id) => query.bind::<Integer, _>(score).bind::<BigInt, _>(id),
        };
    }
    if let Some((member, true)) = listing.member_of {
        query = query.bind::<BigInt, _>(member);
    }
    query.bind::<BigInt, _>(listing.limit).load(conn).await
}

/// The pinned posts of a community, newest first.
pub async fn pinned(
    conn: &mut AsyncPgConnection,
    community_id: CommunityId,
    reader: i64,
) -> QueryResult<Vec<PostView>> {
    let community_id = community_id.0;
    diesel::sql_query(format!(
        "{VIEW_SELECT}, 0::float8 AS rank {VIEW_FROM}
         WHERE p.community_id = $2 AND p.pinned AND NOT p.deleted AND NOT p.removed
         ORDER BY p.created_at DESC, p.id DESC LIMIT 25"
    ))
    .bind::<BigInt, _>(reader)
    .bind::<BigInt, _>(community_id)
    .load(conn)
    .await
}

/// Full-text search over titles and bodies, best match first.
pub async fn search(
    conn: &mut AsyncPgConnection,
    reader: i64,
    terms: &str,
    community_id: Option<i64>,
    after: Option<(f64, i64)>,
    limit: i64,
) -> QueryResult<Vec<PostView>> {
    let rank = "ts_rank_cd(p.search_vector, websearch_to_tsquery('english', $2))::float8";
    let mut query = diesel::sql_query(format!(
        "{VIEW_SELECT}, {rank} AS rank {VIEW_FROM}
         WHERE p.search_vector @@ websearch_to_tsquery('english', $2) AND NOT p.deleted AND NOT p.removed"
    ))
    .into_boxed()
    .bind::<BigInt, _>(reader)
    .bind::<Text, _>(terms);
    let mut next = 3;
    if let Some(community_id) = community_id {
        query = query.sql(format!(" AND p.community_id = ${next}")).bind::<BigInt, _>(community_id);
        next += 1;
    }
    if let Some((value, id)) = after {
        query = query
            .sql(format!(" AND ({rank}, p.id) < (${}, ${})", next, next + 1))
            .bind::<Double, _>(value)
            .bind::<BigInt, _>(id);
        next += 2;
    }
    query.sql(format!(" ORDER BY rank DESC, p.id DESC LIMIT ${next}")).bind::<BigInt, _>(limit).load(conn).await
}

/// A new post.
#[derive(Debug, Clone)]
pub struct NewPost<'a> {
    /// Community.
    pub community_id: i64,
    /// Author.
    pub author_id: i64,
    /// Title.
    pub title: &'a str,
    /// Markdown body.
    pub body: &'a str,
    /// Rendered body.
    pub body_html: &'a str,
    /// Link.
    pub url: Option<&'a str>,
    /// Creation time (also the start of its hot rank).
    pub created_at: DateTime<Utc>,
    /// Initial hot rank.
    pub hot_rank: f64,
    /// The image's upload (a ready upload of the author's).
    pub image_upload_id: Option<i64>,
    /// Not safe for work.
    pub nsfw: bool,
    /// A spoiler.
    pub spoiler: bool,
}

/// Inserts a post and counts it in its community; returns its id.
pub async fn insert(conn: &mut AsyncPgConnection, post: &NewPost<'_>) -> QueryResult<i64> {
    let id = diesel::insert_into(posts::table)
        .values((
            posts::community_id.eq(post.community_id),
            posts::author_id.eq(post.author_id),
            posts::title.eq(post.title),
            posts::body.eq(post.body),
            posts::body_html.eq(post.body_html),
            posts::url.eq(post.url),
            posts::created_at.eq(post.created_at),
            posts::last_activity_at.eq(post.created_at),
            posts::hot_rank.eq(post.hot_rank),
            posts::image_upload_id.eq(post.image_upload_id),
            posts::nsfw.eq(post.nsfw),
            posts::spoiler.eq(post.spoiler),
        ))
        .returning(posts::id)
        .get_result(conn)
        .await?;
    diesel::update(communities::table.find(post.community_id))
        .set(communities::post_count.eq(communities::post_count + 1))
        .execute(conn)
        .await?;
    Ok(id)
}

/// What permission checks need to know about a post.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct PostFacts {
    /// Author.
    pub author_id: i64,
    /// Community.
    pub community_id: i64,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
    /// Closed to comments.
    pub locked: bool,
}

/// The facts of a post; with `lock`, the row stays locked until the transaction ends, which
/// serializes concurrent votes on it.
pub async fn facts(conn: &mut AsyncPgConnection, id: PostId, lock: bool) -> QueryResult<Option<PostFacts>> {
    let id = id.0;
    let query = posts::table.find(id).select((
        posts::author_id,
        posts::community_id,
        posts::deleted,
        posts::removed,
        posts::locked,
    ));
    if lock { query.for_update().first(conn).await.optional() } else { query.first(conn).await.optional() }
}

/// Changes the title and/or body and marks the post edited.
pub async fn edit(
    conn: &mut AsyncPgConnection,
    id: PostId,
    title: Option<&str>,
    body: Option<(&str, &str)>,
    flags: PostFlags,
) -> QueryResult<()> {
    let id = id.0;
    if let Some(nsfw) = flags.nsfw {
        diesel::update(posts::table.find(id)).set(posts::nsfw.eq(nsfw)).execute(conn).await?;
    }
    if let Some(spoiler) = flags.spoiler {
        diesel::update(posts::table.find(id)).set(posts::spoiler.eq(spoiler)).execute(conn).await?;
    }
    if let Some(title) = title {
        diesel::update(posts::table.find(id)).set(posts::title.eq(title)).execute(conn).await?;
    }
    if let Some((body, body_html)) = body {
        diesel::update(posts::table.find(id))
            .set((posts::body.eq(body), posts::body_html.eq(body_html)))
            .execute(conn)
            .await?;
    }
    diesel::update(posts::table.find(id)).set(posts::edited_at.eq(diesel::dsl::now)).execute(conn).await.map(drop)
}

/// The reader-facing flags an edit may change (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct PostFlags {
    /// Not safe for work.
    pub nsfw: Option<bool>,
    /// A spoiler.
    pub spoiler: Option<bool>,
}

/// Marks a post deleted, blanks its text and uncounts it from its community.
pub async fn delete(conn: &mut AsyncPgConnection, id: PostId, community_id: CommunityId) -> QueryResult<()> {
    let id = id.0;
    let community_id = community_id.0;
    diesel::update(posts::table.find(id))
        .set((
            posts::deleted.eq(true),
            posts::title.eq(""),
            posts::body.eq(""),
            posts::body_html.eq(""),
            posts::url.eq(None::<String>),
            // Its image becomes an orphan, deleted after media.orphan_grace_hours.
            posts::image_upload_id.eq(None::<i64>),
        ))
        .execute(conn)
        .await?;
    diesel::update(communities::table.find(community_id))
        .set(communities::post_count.eq(communities::post_count - 1))
        .execute(conn)
        .await
        .map(drop)
}

/// A moderation flag of a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostFlag {
    /// Removed by a moderator.
    Removed,
    /// Closed to new comments.
    Locked,
    /// Pinned to the top of its community.
    Pinned,
}

/// Sets a moderation flag; returns whether it changed.
pub async fn set_flag(conn: &mut AsyncPgConnection, id: PostId, flag: PostFlag, value: bool) -> QueryResult<bool> {
    let id = id.0;
    let target = posts::table.find(id);
    let changed = match flag {
        PostFlag::Removed => {
            diesel::update(target.filter(posts::removed.ne(value))).set(posts::removed.eq(value)).execute(conn).await?
        }
        PostFlag::Locked => {
            diesel::update(target.filter(posts::locked.ne(value))).set(posts::locked.eq(value)).execute(conn).await?
        }
        PostFlag::Pinned => {
            diesel::update(target.filter(posts::pinned.ne(value))).set(posts::pinned.eq(value)).execute(conn).await?
        }
    };
    Ok(changed > 0)
}

/// A post's tallies after a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Serialize)]
pub struct Tally {
    /// Upvotes minus downvotes.
    pub score: i32,
    /// Upvotes.
    pub upvotes: i32,
    /// Downvotes.
    pub downvotes: i32,
}

/// How a vote ended, as the `agora_vote_*` functions report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Counted; `changed` is false for a repeat of the voter's current vote.
    Counted {
        /// The new tally.
        tally: Tally,
        /// Whether anything changed (and the notification was sent).
        changed: bool,
    },
    /// No such post or comment.
    NotFound,
    /// Deleted or removed: no more votes.
    Closed,
    /// The voter is banned from the community.
    Banned,
}

#[derive(QueryableByName)]
struct VoteRow {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Integer)]
    score: i32,
    #[diesel(sql_type = Integer)]
    upvotes: i32,
    #[diesel(sql_type = Integer)]
    downvotes: i32,
}

impl VoteRow {
    fn outcome(self) -> VoteOutcome {
        let tally = Tally { score: self.score, upvotes: self.upvotes, downvotes: self.downvotes };
        match self.outcome.as_str() {
            "ok" => VoteOutcome::Counted { tally, changed: true },
            "unchanged" => VoteOutcome::Counted { tally, changed: false },
            "closed" => VoteOutcome::Closed,
            "banned" => VoteOutcome::Banned,
            _ => VoteOutcome::NotFound,
        }
    }
}

/// Records `user`'s vote on a post in one statement (`agora_vote_post`): locks the post,
/// checks it is open and the voter not banned, upserts the vote, updates the counters, the
/// hot rank and the author's karma, and publishes `notify` on the cache channel when
/// something changed. Concurrent voters on one post are serialized by the row lock.
pub async fn vote(
    conn: &mut AsyncPgConnection,
    post: PostId,
    user: UserId,
    value: i16,
    notify: Option<&str>,
) -> QueryResult<VoteOutcome> {
    diesel::sql_query("SELECT outcome, score, upvotes, downvotes FROM agora_vote_post($1, $2, $3, $4)")
        .bind::<BigInt, _>(post.0)
        .bind::<BigInt, _>(user.0)
        .bind::<SmallInt, _>(value)
        .bind::<Nullable<Text>, _>(notify)
        .get_result::<VoteRow>(conn)
        .await
        .map(VoteRow::outcome)
}

/// Records `user`'s vote on a comment in one statement (`agora_vote_comment`, as [`vote`]);
/// `{post}` in `notify` stands for the comment's post id. Returns the post id with the outcome.
pub async fn vote_comment(
    conn: &mut AsyncPgConnection,
    comment: crate::domain::CommentId,
    user: UserId,
    value: i16,
    notify: Option<&str>,
) -> QueryResult<(i64, VoteOutcome)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        post_id: i64,
        #[diesel(embed)]
        vote: VoteRow,
    }
    diesel::sql_query("SELECT outcome, post_id, score, upvotes, downvotes FROM agora_vote_comment($1, $2, $3, $4)")
        .bind::<BigInt, _>(comment.0)
        .bind::<BigInt, _>(user.0)
        .bind::<SmallInt, _>(value)
        .bind::<Nullable<Text>, _>(notify)
        .get_result::<Row>(conn)
        .await
        .map(|row| (row.post_id, row.vote.outcome()))
}

/// Where a user's posts or comments continue, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorOrder {
    /// Newest first, before `(created_at, id)`.
    New(Option<(DateTime<Utc>, i64)>),
    /// Highest score first, below `(score, id)`.
    Top(Option<(i32, i64)>),
}

impl AuthorOrder {
    /// The `ORDER BY` key, and the keyset condition on `$3`, `$4` of `alias`'s table.
    pub(crate) fn sql(self, alias: &str) -> (String, String) {
        match self {
            Self::New(_) => (
                format!("{alias}.created_at DESC, {alias}.id DESC"),
                format!("({alias}.created_at, {alias}.id) < ($3::timestamptz, $4)"),
            ),
            Self::Top(_) => (
                format!("{alias}.score DESC, {alias}.id DESC"),
                format!("({alias}.score, {alias}.id) < ($3::int4, $4)"),
            ),
        }
    }
}

/// `query` with the reader as `$1`, the author as `$2`, the keyset of `order` as `$3`, `$4`
/// and `limit` as `$5`.
pub(crate) fn author_page(
    query: diesel::query_builder::SqlQuery,
    reader: i64,
    author: i64,
    order: AuthorOrder,
    limit: i64,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let query = query.into_boxed().bind::<BigInt, _>(reader).bind::<BigInt, _>(author);
    let query = match order {
        AuthorOrder::New(before) => {
            let (at, id) = before.unwrap_or((DateTime::<Utc>::MAX_UTC, i64::MAX));
            query.bind::<Timestamptz, _>(at).bind::<BigInt, _>(id)
        }
        AuthorOrder::Top(below) => {
            let (score, id) = below.unwrap_or((i32::MAX, i64::MAX));
            query.bind::<Integer, _>(score).bind::<BigInt, _>(id)
        }
    };
    query.bind::<BigInt, _>(limit)
}

/// A user's posts in `order`, as `reader` sees them.
pub async fn by_author(
    conn: &mut AsyncPgConnection,
    reader: i64,
    author_id: UserId,
    order: AuthorOrder,
    limit: i64,
) -> QueryResult<Vec<PostView>> {
    let (order_by, keyset) = order.sql("p");
    let query = diesel::sql_query(format!(
        "{VIEW_SELECT}, 0::float8 AS rank {VIEW_FROM}
         WHERE p.author_id = $2 AND NOT p.deleted AND NOT p.removed AND {keyset}
           AND NOT EXISTS (SELECT 1 FROM hidden_posts h WHERE h.user_id = $1 AND h.post_id = p.id)
         ORDER BY {order_by} LIMIT $5"
    ));
    author_page(query, reader, author_id.0, order, limit).load(conn).await
}

/// A saved post with when it was saved.
#[derive(Debug, Clone, QueryableByName)]
pub struct SavedPost {
    /// The post, as its saver sees it.
    #[diesel(embed)]
    pub post: PostView,
    /// When it was saved.
    #[diesel(sql_type = Timestamptz)]
    pub saved_at: DateTime<Utc>,
}

/// The posts `reader` saved, most recently saved first, after `before` (save time, post id).
pub async fn saved_by(
    conn: &mut AsyncPgConnection,
    reader: UserId,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> QueryResult<Vec<SavedPost>> {
    let query = diesel::sql_query(format!(
        "{VIEW_SELECT}, 0::float8 AS rank, sp.saved_at FROM saved_posts sp JOIN posts p ON p.id = sp.post_id {}
         WHERE sp.user_id = $1 AND (sp.saved_at, sp.post_id) < ($2, $3)
         ORDER BY sp.saved_at DESC, sp.post_id DESC LIMIT $4",
        view_joins!()
    ));
    saved_page(query, reader, before, limit).load(conn).await
}

/// `query` with the saver as `$1`, the keyset (save time, id) as `$2`, `$3` and `limit` as `$4`.
pub(crate) fn saved_page(
    query: diesel::query_builder::SqlQuery,
    reader: UserId,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let (at, id) = before.unwrap_or((DateTime::<Utc>::MAX_UTC, i64::MAX));
    query
        .into_boxed()
        .bind::<BigInt, _>(reader.0)
        .bind::<Timestamptz, _>(at)
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(limit)
}
