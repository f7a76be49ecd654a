//! Thread summaries: what a summary is made from, the stored summaries, and the daily quota.

use crate::domain::PostId;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{comments, communities, post_summaries, posts};

/// One comment a summary is made from.
#[derive(Debug, Clone, Queryable)]
pub struct ThreadComment {
    /// Its id.
    pub id: i64,
    /// Its Markdown text.
    pub body: String,
    /// Its score.
    pub score: i32,
}

/// What a summary is made from: the post and its highest-rated comments.
#[derive(Debug, Clone)]
pub struct Thread {
    /// The post.
    pub post_id: i64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// Comments on the post (not removed or deleted).
    pub comment_count: i32,
    /// Whether the post's community allows summaries.
    pub summaries_enabled: bool,
    /// The highest-rated comments, best first.
    pub comments: Vec<ThreadComment>,
}

/// A stored summary.
#[derive(Debug, Clone, Queryable)]
pub struct Stored {
    /// The hash of the content it was made from.
    pub content_hash: String,
    /// The text.
    pub summary: String,
    /// Who wrote it.
    pub provider: String,
    /// The comments it drew on.
    pub source_comment_ids: Vec<i64>,
    /// Comments on the post when it was made.
    pub comment_count: i32,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
}

/// Loads the thread of a visible post, or `None` when the post does not exist or is hidden.
pub async fn thread(conn: &mut AsyncPgConnection, post_id: PostId, max_comments: i64) -> QueryResult<Option<Thread>> {
    let post_id = post_id.0;
    let post: Option<(String, String, i32, bool)> = posts::table
        .inner_join(communities::table)
        .filter(posts::id.eq(post_id).and(posts::deleted.eq(false)).and(posts::removed.eq(false)))
        .select((posts::title, posts::body, posts::comment_count, communities::summaries_enabled))
        .first(conn)
        .await
        .optional()?;
    let Some((title, body, comment_count, summaries_enabled)) = post else { return Ok(None) };
    let comments = comments::table
        .filter(comments::post_id.eq(post_id).and(comments::deleted.eq(false)).and(comments::removed.eq(false)))
        .order((comments::score.desc(), comments::id))
        .limit(max_comments)
        .select((comments::id, comments::body, comments::score))
        .load(conn)
        .await?;
    Ok(Some(Thread { post_id, title, body, comment_count, summaries_enabled, comments }))
}

/// The stored summary of a post.
pub async fn stored(conn: &mut AsyncPgConnection, post_id: PostId) -> QueryResult<Option<Stored>> {
    let post_id = post_id.0;
    post_summaries::table
        .find(post_id)
        .select((
            post_summaries::content_hash,
            post_summaries::summary,
            post_summaries::provider,
            post_summaries::source_comment_ids,
            post_summaries::comment_count,
            post_summaries::generated_at,
        ))
        .first(conn)
        .await
        .optional()
}

/// A summary to store (replacing the post's previous one).
pub struct NewSummary<'a> {
    /// The post.
    pub post_id: i64,
    /// The hash of the content it was made from.
    pub content_hash: &'a str,
    /// The text.
    pub summary: &'a str,
    /// Who wrote it.
    pub provider: &'a str,
    /// The model.
    pub model: &'a str,
    /// The comments it drew on.
    pub source_comment_ids: &'a [i64],
    /// Comments on the post when it was made.
    pub comment_count: i32,
    /// Tokens read.
    pub input_tokens: i32,
    /// Tokens written.
    pub output_tokens: i32,
    /// What it cost.
    pub cost_usd: f64,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
}

/// Stores a post's summary, replacing the one before.
pub async fn store(conn: &mut AsyncPgConnection, row: &NewSummary<'_>) -> QueryResult<()> {
    let values = (
        post_summaries::post_id.eq(row.post_id),
        post_summaries::content_hash.eq(row.content_hash),
        post_summaries::summary.eq(row.summary),
        post_summaries::provider.eq(row.provider),
        post_summaries::model.eq(row.model),
        post_summaries::source_comment_ids.eq(row.source_comment_ids),
        post_summaries::comment_count.eq(row.comment_count),
        post_summaries::input_tokens.eq(row.input_tokens),
        post_summaries::output_tokens.eq(row.output_tokens),
        post_summaries::cost_usd.eq(row.cost_usd),
        post_summaries::generated_at.eq(row.generated_at),
    );
    diesel::insert_into(post_summaries::table)
        .values(values)
        .on_conflict(post_summaries::post_id)
        .do_update()
        .set(values)
        .execute(conn)
        .await
        .map(drop)
}

/// Counts one summary against `subject`'s quota for `day`; `false` when `limit` is reached.
/// One statement, so concurrent requests cannot both pass the limit.
pub async fn charge_quota(
    conn: &mut AsyncPgConnection,
    subject: &str,
    day: NaiveDate,
    limit: i32,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Used {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        used: i32,
    }
    let charged: Option<Used> = diesel::sql_query(
        "INSERT INTO summary_usage (subject, day, used) VALUES ($1, $2, 1) \
         ON CONFLICT (subject, day) DO UPDATE SET used = summary_usage.used + 1 \
         WHERE summary_usage.used < $3 RETURNING used",
    )
    .bind::<diesel::sql_types::Text, _>(subject)
    .bind::<diesel::sql_types::Date, _>(day)
    .bind::<diesel::sql_types::Integer, _>(limit)
    .get_result(conn)
    .await
    .optional()?;
    Ok(charged.is_some())
}
