//! SQL over `idempotency_keys`: claiming a key, storing the first response, replaying it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::idempotency_keys;

/// How long a key is remembered.
pub const KEY_TTL_HOURS: i64 = 24;

/// A stored key.
#[derive(Debug, Clone, Queryable)]
pub struct StoredKey {
    /// Hash of the first request (method, path, body).
    pub request_hash: Vec<u8>,
    /// Status of the first response; `None` while it is still being produced.
    pub status: Option<i16>,
    /// Body of the first response.
    pub response_body: Option<Vec<u8>>,
    /// Headers of the first response worth replaying, as `[[name, value], ...]`.
    pub response_headers: serde_json::Value,
    /// When the key was first used.
    pub created_at: DateTime<Utc>,
}

/// Claims `(scope, key)` for a new request; `false` when someone already holds it.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    request_hash: &[u8],
) -> QueryResult<bool> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::key.eq(key),
            idempotency_keys::method.eq(method),
            idempotency_keys::path.eq(path),
            idempotency_keys::request_hash.eq(request_hash),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// The stored key, if any.
pub async fn find(conn: &mut AsyncPgConnection, scope: &str, key: &str) -> QueryResult<Option<StoredKey>> {
    idempotency_keys::table
        .find((scope, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status,
            idempotency_keys::response_body,
            idempotency_keys::response_headers,
            idempotency_keys::created_at,
        ))
        .first(conn)
        .await
        .optional()
}

/// Stores the response of the request that claimed the key.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    status: i16,
    body: &[u8],
    headers: serde_json::Value,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::status.eq(status),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::response_headers.eq(headers),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Forgets a key (its request failed with a server error, or it expired), so it can be used again.
pub async fn release(conn: &mut AsyncPgConnection, scope: &str, key: &str) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn).await.map(drop)
}

/// Deletes keys older than [`KEY_TTL_HOURS`]; returns how many.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::hours(KEY_TTL_HOURS);
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(cutoff))).execute(conn).await
}
