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
