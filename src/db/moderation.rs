//! SQL over `reports` and the readable side of `audit_log` (the modlog).

use crate::domain::UserId;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::schema::reports;

/// One modlog entry as moderators read it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
pub struct ModlogEntry {
    /// Id (entries are listed newest first).
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What was done (`post.remove`, `community.ban`, `auth.login_failed`, ...).
    #[diesel(sql_type = Text)]
    pub action: String,
    /// The community, when it concerns one.
    #[diesel(sql_type = Nullable<Text>)]
    pub community: Option<String>,
    /// Who did it.
    #[diesel(sql_type = Nullable<Text>)]
    pub actor: Option<String>,
    /// Who it was done to.
    #[diesel(sql_type = Nullable<Text>)]
    pub target_user: Option<String>,
    /// The post concerned.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub post_id: Option<i64>,
    /// The comment concerned.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub comment_id: Option<i64>,
    /// The community rule cited (0-based index).
    #[diesel(sql_type = Nullable<Integer>)]
    pub rule_index: Option<i32>,
    /// The text of the rule cited.
    #[diesel(sql_type = Nullable<Text>)]
    pub rule: Option<String>,
    /// Free-text reason.
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// Extra facts, as JSON.
    #[diesel(sql_type = Text)]
    #[serde(skip)]
    pub details_json: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Which modlog entries a reader may see.
#[derive(Debug, Clone, Copy)]
pub enum ModlogScope {
    /// Everything (site admins).
    All,
    /// One community.
    Community(i64),
    /// Every community this user moderates.
    ModeratedBy(i64),
}

/// A page of modlog entries, newest first.
pub async fn modlog(
    conn: &mut AsyncPgConnection,
    scope: ModlogScope,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ModlogEntry>> {
    let select = "SELECT a.id, a.action, c.name AS community, actor.username AS actor,
            target.username AS target_user, a.post_id, a.comment_id, a.rule_index,
            CASE WHEN a.rule_index IS NOT NULL THEN c.rules[a.rule_index + 1] END AS rule,
            a.reason, a.details::text AS details_json, a.created_at
        FROM audit_log a
        LEFT JOIN communities c ON c.id = a.community_id
        LEFT JOIN users actor ON actor.id = a.actor_id
        LEFT JOIN users target ON target.id = a.target_user_id
        WHERE a.id < $1";
    scoped(select, "a", scope, before_id, limit).load(conn).await
}

/// Completes `select` (which ends in `WHERE <alias>.id < $1`) with the scope filter, the order
/// and the limit: `$1` is the cursor, `$2` the scope's id, `$3` the page size.
fn scoped(
    select: &str,
    alias: &str,
    scope: ModlogScope,
    before_id: Option<i64>,
    limit: i64,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    let query = diesel::sql_query(select.to_owned()).into_boxed().bind::<BigInt, _>(before_id.unwrap_or(i64::MAX));
    let query = match scope {
        ModlogScope::All => query.sql(" AND $2::int8 IS NOT NULL").bind::<BigInt, _>(0),
        ModlogScope::Community(id) => query.sql(format!(" AND {alias}.community_id = $2")).bind::<BigInt, _>(id),
        ModlogScope::ModeratedBy(user) => query
            .sql(format!(
                " AND {alias}.community_id IN (SELECT community_id FROM community_moderators WHERE user_id = $2)"
            ))
            .bind::<BigInt, _>(user),
    };
    query.sql(format!(" ORDER BY {alias}.id DESC LIMIT $3")).bind::<BigInt, _>(limit)
}

/// A new report.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = reports)]
pub struct NewReport {
    /// Who reports.
    pub reporter_id: i64,
    /// The community of the reported content (`None` for a private message).
    pub community_id: Option<i64>,
    /// The reported post.
    pub post_id: Option<i64>,
    /// The reported comment.
    pub comment_id: Option<i64>,
    /// The reported private message (for the site admins).
    pub message_id: Option<i64>,
    /// The rule cited.
    pub rule_index: Option<i32>,
    /// Free text.
    pub reason: String,
}

/// Files a report; returns its id.
pub async fn insert_report(conn: &mut AsyncPgConnection, report: &NewReport) -> QueryResult<i64> {
    diesel::insert_into(reports::table).values(report).returning(reports::id).get_result(conn).await
}

/// An open report as moderators see it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
#[schema(as = Report)]
pub struct ReportView {
    /// Id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Community (`null` for a private message, which only admins see).
    #[diesel(sql_type = Nullable<Text>)]
    pub community: Option<String>,
    /// Reporter.
    #[diesel(sql_type = Text)]
    pub reporter: String,
    /// Reported post.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub post_id: Option<i64>,
    /// Reported comment.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub comment_id: Option<i64>,
    /// Reported private message.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub message_id: Option<i64>,
    /// The reported message's sender and text (private messages only).
    #[diesel(sql_type = Nullable<Text>)]
    pub message_from: Option<String>,
    /// The reported message's text.
    #[diesel(sql_type = Nullable<Text>)]
    pub message_body: Option<String>,
    /// Rule cited.
    #[diesel(sql_type = Nullable<Integer>)]
    pub rule_index: Option<i32>,
    /// Its text.
    #[diesel(sql_type = Nullable<Text>)]
    pub rule: Option<String>,
    /// Free text.
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Open reports in scope, newest first.
pub async fn open_reports(
    conn: &mut AsyncPgConnection,
    scope: ModlogScope,
    before_id: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ReportView>> {
    let select = format!("{REPORT_SELECT} WHERE r.resolved_at IS NULL AND r.id < $1");
    scoped(&select, "r", scope, before_id, limit).load(conn).await
}

const REPORT_SELECT: &str = "SELECT r.id, c.name AS community, u.username AS reporter, r.post_id, r.comment_id,
        r.message_id, sender.username AS message_from, m.body AS message_body, r.rule_index,
        CASE WHEN r.rule_index IS NOT NULL THEN c.rules[r.rule_index + 1] END AS rule, r.reason, r.created_at
    FROM reports r LEFT JOIN communities c ON c.id = r.community_id JOIN users u ON u.id = r.reporter_id
    LEFT JOIN messages m ON m.id = r.message_id LEFT JOIN users sender ON sender.id = m.sender_id";

/// The open reports of private messages (the site admins' queue), newest first.
pub async fn open_message_reports(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<ReportView>> {
    diesel::sql_query(format!(
        "{REPORT_SELECT} WHERE r.resolved_at IS NULL AND r.message_id IS NOT NULL ORDER BY r.id DESC LIMIT $1"
    ))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// The community of a report (`None` for a private message's), if it exists and is open.
pub async fn open_report_community(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Option<i64>>> {
    reports::table
        .find(id)
        .filter(reports::resolved_at.is_null())
        .select(reports::community_id)
        .first(conn)
        .await
        .optional()
}

/// Closes a report.
pub async fn resolve_report(conn: &mut AsyncPgConnection, id: i64, by: UserId) -> QueryResult<()> {
    let by = by.0;
    diesel::update(reports::table.find(id))
        .set((reports::resolved_at.eq(diesel::dsl::now), reports::resolved_by.eq(by)))
        .execute(conn)
        .await
        .map(drop)
}
