//! SQL over `comments` and `comment_votes`. A tree (or subtree) loads in two queries: the
//! listed comments, then every descendant down to the depth asked for, by materialized path.

use crate::domain::{CommentId, PostId, UserId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::schema::{comments, posts};
use crate::domain::CommentSort;

/// One comment as the API shows it, for one reader, without its children.
#[derive(Debug, Clone, QueryableByName)]
pub struct CommentRow {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Post.
    #[diesel(sql_type = BigInt)]
    pub post_id: i64,
    /// Parent comment.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_id: Option<i64>,
    /// Depth below the post (0 for top level).
    #[diesel(sql_type = Integer)]
    pub depth: i32,
    /// Author username.
    #[diesel(sql_type = Text)]
    pub author: String,
    /// Markdown (blank once deleted or removed).
    #[diesel(sql_type = Text)]
    pub body: String,
    /// Sanitized HTML.
    #[diesel(sql_type = Text)]
    pub body_html: String,
    /// Upvotes minus downvotes.
    #[diesel(sql_type = Integer)]
    pub score: i32,
    /// Upvotes.
    #[diesel(sql_type = Integer)]
    pub upvotes: i32,
    /// Downvotes.
    #[diesel(sql_type = Integer)]
    pub downvotes: i32,
    /// The reader's vote.
    #[diesel(sql_type = SmallInt)]
    pub my_vote: i16,
    /// Saved by the reader.
    #[diesel(sql_type = Bool)]
    pub saved: bool,
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
    /// Direct replies.
    #[diesel(sql_type = Integer)]
    pub reply_count: i32,
    /// Sort key of `best`.
    #[diesel(sql_type = Double)]
    pub wilson_score: f64,
    /// The author's avatar, when they have one.
    #[diesel(sql_type = Nullable<Text>)]
    pub author_avatar_url: Option<String>,
}

/// The columns of a comment row (`$1` is the reader).
macro_rules! row_columns {
    () => {
        "SELECT c.id, c.post_id, c.parent_id, c.depth, u.username AS author,
        CASE WHEN c.removed THEN '' ELSE c.body END AS body,
        CASE WHEN c.removed THEN '' ELSE c.body_html END AS body_html,
        c.score, c.upvotes, c.downvotes,
        coalesce((SELECT v.value FROM comment_votes v WHERE v.comment_id = c.id AND v.user_id = $1), 0)::int2 AS my_vote,
        CASE WHEN $1 = 0 THEN false
             ELSE EXISTS (SELECT 1 FROM saved_comments s WHERE s.user_id = $1 AND s.comment_id = c.id) END AS saved,
        c.created_at, c.edited_at, c.deleted, c.removed, c.reply_count, c.wilson_score,
        CASE WHEN av.id IS NULL THEN NULL
             WHEN 320 = ANY (av.thumbnail_widths) THEN '/media/' || av.content_hash || '-w320.webp'
             ELSE '/media/' || av.content_hash || '.webp' END AS author_avatar_url"
    };
}

/// What a comment row reads from.
macro_rules! row_from {
    () => {
        "
    FROM comments c JOIN users u ON u.id = c.author_id
    LEFT JOIN uploads av ON av.id = u.avatar_upload_id AND av.status = 'ready'"
    };
}

const ROW_SELECT: &str = concat!(row_columns!(), row_from!());

/// SQL `ORDER BY` of a sort (used at the top level; deeper levels are sorted in memory by the same key).
fn order_by(sort: CommentSort) -> &'static str {
    match sort {
        CommentSort::Best => "c.wilson_score DESC, c.id DESC",
        CommentSort::Top => "c.score DESC, c.id DESC",
        CommentSort::New => "c.created_at DESC, c.id DESC",
        CommentSort::Old => "c.created_at ASC, c.id ASC",
    }
}

/// Where a page of top-level comments continues.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CommentCursor {
    /// `best`.
    Best(f64, i64),
    /// `top`.
    Top(i32, i64),
    /// `new` (microseconds).
    New(i64, i64),
    /// `old` (microseconds).
    Old(i64, i64),
}

impl CommentCursor {
    /// The cursor continuing after `row` in `sort`.
    pub fn after(sort: CommentSort, row: &CommentRow) -> Self {
        match sort {
            CommentSort::Best => Self::Best(row.wilson_score, row.id),
            CommentSort::Top => Self::Top(row.score, row.id),
            CommentSort::New => Self::New(row.created_at.timestamp_micros(), row.id),
            CommentSort::Old => Self::Old(row.created_at.timestamp_micros(), row.id),
        }
    }

    /// The sort this cursor belongs to.
    pub fn sort(&self) -> CommentSort {
        match self {
            Self::Best(..) => CommentSort::Best,
            Self::Top(..) => CommentSort::Top,
            Self::New(..) => CommentSort::New,
            Self::Old(..) => CommentSort::Old,
        }
    }
}

/// A page of a post's top-level comments.
pub async fn top_level(
    conn: &mut AsyncPgConnection,
    reader: i64,
    post_id: PostId,
    sort: CommentSort,
    after: Option<CommentCursor>,
    limit: i64,
) -> QueryResult<Vec<CommentRow>> {
    let post_id = post_id.0;
    let query = diesel::sql_query(format!("{ROW_SELECT} WHERE c.post_id = $2 AND c.parent_id IS NULL"))
        .into_boxed()
        .bind::<BigInt, _>(reader)
        .bind::<BigInt, _>(post_id);
    let micros = |m: i64| DateTime::<Utc>::from_timestamp_micros(m).unwrap_or_default();
    let query = match after {
        None => query,
        Some(CommentCursor::Best(score, id)) => {
            query.sql(" AND (c.wilson_score, c.id) < ($3, $4)").bind::<Double, _>(score).bind::<BigInt, _>(id)
        }
        Some(CommentCursor::Top(score, id)) => {
            query.sql(" AND (c.score, c.id) < ($3, $4)").bind::<Integer, _>(score).bind::<BigInt, _>(id)
        }
        Some(CommentCursor::New(at, id)) => {
            query.sql(" AND (c.created_at, c.id) < ($3, $4)").bind::<Timestamptz, _>(micros(at)).bind::<BigInt, _>(id)
        }
        Some(CommentCursor::Old(at, id)) => {
            query.sql(" AND (c.created_at, c.id) > ($3, $4)").bind::<Timestamptz, _>(micros(at)).bind::<BigInt, _>(id)
        }
    };
    let limit_param = if after.is_some() { 5 } else { 3 };
    query.sql(format!(" ORDER BY {} LIMIT ${limit_param}", order_by(sort))).bind::<BigInt, _>(limit).load(conn).await
}

/// Every descendant of the given top-level comments down to `max_depth` (absolute depth).
pub async fn descendants_of_roots(
    conn: &mut AsyncPgConnection,
    reader: i64,
    post_id: PostId,
    roots: &[i64],
    max_depth: i32,
) -> QueryResult<Vec<CommentRow>> {
    let post_id = post_id.0;
    diesel::sql_query(format!("{ROW_SELECT} WHERE c.post_id = $2 AND c.path[1] = ANY($3) AND c.depth BETWEEN 1 AND $4"))
        .bind::<BigInt, _>(reader)
        .bind::<BigInt, _>(post_id)
        .bind::<Array<BigInt>, _>(roots)
        .bind::<Integer, _>(max_depth)
        .load(conn)
        .await
}

/// One comment.
pub async fn row_by_id(conn: &mut AsyncPgConnection, reader: i64, id: CommentId) -> QueryResult<Option<CommentRow>> {
    let id = id.0;
    diesel::sql_query(format!("{ROW_SELECT} WHERE c.id = $2"))
        .bind::<BigInt, _>(reader)
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .await
        .optional()
}

/// The descendants of one comment down to `max_depth` (absolute depth), by path prefix.
pub async fn subtree(
    conn: &mut AsyncPgConnection,
    reader: i64,
    root: &CommentRow,
    max_depth: i32,
) -> QueryResult<Vec<CommentRow>> {
    diesel::sql_query(format!(
        "{ROW_SELECT}
         WHERE c.post_id = $2
           AND c.path[1] = (SELECT path[1] FROM comments WHERE id = $3)
           AND c.path[1:$4] = (SELECT path FROM comments WHERE id = $3)
           AND c.depth BETWEEN $4 AND $5"
    ))
    .bind::<BigInt, _>(reader)
    .bind::<BigInt, _>(root.post_id)
    .bind::<BigInt, _>(root.id)
    .bind::<Integer, _>(root.depth + 1)
    .bind::<Integer, _>(max_depth)
    .load(conn)
    .await
}

/// What permission checks need to know about a comment.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct CommentFacts {
    /// Author.
    pub author_id: i64,
    /// Post.
    pub post_id: i64,
    /// Community of the post.
    pub community_id: i64,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
}

/// The facts of a comment; with `lock`, its row stays locked until the transaction ends.
pub async fn facts(conn: &mut AsyncPgConnection, id: CommentId, lock: bool) -> QueryResult<Option<CommentFacts>> {
    let id = id.0;
    let query = comments::table.inner_join(posts::table).filter(comments::id.eq(id)).select((
        comments::author_id,
        comments::post_id,
        posts::community_id,
        comments::deleted,
        comments::removed,
    ));
    if lock {
        // Lock the comment row alone; votes on other comments of the post stay concurrent.
        let exists: Option<i64> =
            comments::table.find(id).select(comments::id).for_update().first(conn).await.optional()?;
        if exists.is_none() {
            return Ok(None);
        }
    }
    query.first(conn).await.optional()
}

/// The depth of a comment of `post_id`, `None` when it is not a comment of that post.
pub async fn depth_in_post(conn: &mut AsyncPgConnection, id: CommentId, post_id: PostId) -> QueryResult<Option<i32>> {
    let id = id.0;
    let post_id = post_id.0;
    comments::table
        .filter(comments::id.eq(id))
        .filter(comments::post_id.eq(post_id))
        .select(comments::depth)
        .first(conn)
        .await
        .optional()
}

/// Why a comment could not be inserted.
#[derive(Debug, thiserror::Error)]
pub enum InsertCommentError {
    /// The parent is not a comment of the post.
    #[error("parent comment is not in this post")]
    ParentNotInPost,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] DieselError),
}

/// Inserts a comment (its path and depth come from the parent, in the database), counts it on
/// the post, bumps the post's activity and the parent's reply count; returns its id.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    post_id: PostId,
    parent_id: Option<i64>,
    author_id: UserId,
    body: &str,
    body_html: &str,
) -> Result<i64, InsertCommentError> {
    let post_id = post_id.0;
    let author_id = author_id.0;
    let id: i64 = diesel::insert_into(comments::table)
        .values((
            comments::post_id.eq(post_id),
            comments::parent_id.eq(parent_id),
            comments::author_id.eq(author_id),
            comments::body.eq(body),
            comments::body_html.eq(body_html),
            // Filled in by the comments_set_path trigger.
            comments::path.eq(Vec::<i64>::new()),
            comments::depth.eq(0),
        ))
        .returning(comments::id)
        .get_result(conn)
        .await
        .map_err(|err| match &err {
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                InsertCommentError::ParentNotInPost
            }
            _ => InsertCommentError::Other(err),
        })?;
    diesel::update(posts::table.find(post_id))
        .set((posts::comment_count.eq(posts::comment_count + 1), posts::last_activity_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    if let Some(parent_id) = parent_id {
        diesel::update(comments::table.find(parent_id))
            .set(comments::reply_count.eq(comments::reply_count + 1))
            .execute(conn)
            .await?;
    }
    Ok(id)
}

/// Replaces a comment's body and marks it edited.
pub async fn edit(conn: &mut AsyncPgConnection, id: CommentId, body: &str, body_html: &str) -> QueryResult<()> {
    let id = id.0;
    diesel::update(comments::table.find(id))
        .set((comments::body.eq(body), comments::body_html.eq(body_html), comments::edited_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await
        .map(drop)
}

/// Marks a comment deleted and blanks it; its replies stay.
pub async fn delete(conn: &mut AsyncPgConnection, id: CommentId) -> QueryResult<()> {
    let id = id.0;
    diesel::update(comments::table.find(id))
        .set((comments::deleted.eq(true), comments::body.eq(""), comments::body_html.eq("")))
        .execute(conn)
        .await
        .map(drop)
}

/// Removes (or restores) a comment; returns whether it changed.
pub async fn set_removed(conn: &mut AsyncPgConnection, id: CommentId, removed: bool) -> QueryResult<bool> {
    let id = id.0;
    diesel::update(comments::table.find(id).filter(comments::removed.ne(removed)))
        .set(comments::removed.eq(removed))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// A user's comments in `order`, as `reader` sees them (without replies).
pub async fn by_author(
    conn: &mut AsyncPgConnection,
    reader: i64,
    author_id: UserId,
    order: crate::db::posts::AuthorOrder,
    limit: i64,
) -> QueryResult<Vec<CommentRow>> {
    let (order_by, keyset) = order.sql("c");
    let query = diesel::sql_query(format!(
        "{ROW_SELECT} WHERE c.author_id = $2 AND NOT c.deleted AND NOT c.removed AND {keyset} ORDER BY {order_by} LIMIT $5"
    ));
    crate::db::posts::author_page(query, reader, author_id.0, order, limit).load(conn).await
}

/// A saved comment with when it was saved.
#[derive(Debug, Clone, QueryableByName)]
pub struct SavedComment {
    /// The comment, as its saver sees it.
    #[diesel(embed)]
    pub comment: CommentRow,
    /// When it was saved.
    #[diesel(sql_type = Timestamptz)]
    pub saved_at: DateTime<Utc>,
}

/// The comments `reader` saved, most recently saved first, after `before` (save time, id).
pub async fn saved_by(
    conn: &mut AsyncPgConnection,
    reader: UserId,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> QueryResult<Vec<SavedComment>> {
    let query = diesel::sql_query(concat!(
        row_columns!(),
        ", sc.saved_at",
        row_from!(),
        " JOIN saved_comments sc ON sc.comment_id = c.id AND sc.user_id = $1
         WHERE (sc.saved_at, sc.comment_id) < ($2, $3)
         ORDER BY sc.saved_at DESC, sc.comment_id DESC LIMIT $4"
    ));
    crate::db::posts::saved_page(query, reader, before, limit).load(conn).await
}
