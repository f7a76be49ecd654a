//! SQL over `audit_log`, the append-only, hash-chained record of privileged actions.

use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct BrokenLink {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The id of the first entry whose stored hashes do not match the chain (an altered, inserted
/// or deleted row), or `None` when the whole log is intact.
pub async fn first_broken_link(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<i64>> {
    let broken: Vec<BrokenLink> = diesel::sql_query(
        "SELECT id FROM (
             SELECT id, prev_hash, entry_hash,
                    coalesce(lag(entry_hash) OVER (ORDER BY id), '\\x'::bytea) AS expected_prev,
                    audit_log_entry_hash(prev_hash, audit_log) AS recomputed
             FROM audit_log
         ) chain
         WHERE prev_hash <> expected_prev OR entry_hash <> recomputed
         ORDER BY id
         LIMIT 1",
    )
    .load(conn)
    .await?;
    Ok(broken.into_iter().next().map(|row| row.id))
}

/// One privileged action to record.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = crate::db::schema::audit_log)]
pub struct NewAuditEntry {
    /// Who did it (`None` for anonymous actors such as a failed login).
    pub actor_id: Option<i64>,
    /// The community it concerns.
    pub community_id: Option<i64>,
    /// What was done, as `noun.verb` (`auth.login_failed`, `post.remove`, ...).
    pub action: String,
    /// The user it was done to.
    pub target_user_id: Option<i64>,
    /// The post it concerns.
    pub post_id: Option<i64>,
    /// The comment it concerns.
    pub comment_id: Option<i64>,
    /// The community rule it cites.
    pub rule_index: Option<i32>,
    /// Free-text reason.
    pub reason: String,
    /// Anything else worth keeping.
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// An entry for `action` with nothing else filled in.
    pub fn new(action: &str) -> Self {
        Self {
            actor_id: None,
            community_id: None,
            action: action.to_owned(),
            target_user_id: None,
            post_id: None,
            comment_id: None,
            rule_index: None,
            reason: String::new(),
            details: serde_json::json!({}),
        }
    }
}

/// Appends an entry; the database chains its hash to the previous entry.
pub async fn append(conn: &mut AsyncPgConnection, entry: &NewAuditEntry) -> diesel::QueryResult<()> {
    diesel::insert_into(crate::db::schema::audit_log::table).values(entry).execute(conn).await.map(drop)
}
