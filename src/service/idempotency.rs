//! `Idempotency-Key` bookkeeping: claiming a key, storing the first response, replaying it,
//! releasing and purging keys. The HTTP layer (`http::idempotency`) reads and writes the wire.

use std::time::{Duration, Instant};

pub use crate::db::idempotency::StoredKey;
use crate::db::idempotency::{self as db_idempotency, KEY_TTL_HOURS};
use crate::error::{AppError, ErrorCode};
use crate::service::Context;

/// How long a repeat waits for the first request to finish before giving up.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);

/// What a request with a key may do.
pub enum Claim {
    /// The key is this request's: run it.
    Owned,
    /// The first request with the key answered this: replay it.
    Replay(StoredKey),
}

/// Claims the key, or waits for the first request with it to finish and returns its answer.
pub async fn claim_or_replay(
    ctx: &Context,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    request_hash: &[u8],
) -> Result<Claim, AppError> {
    let deadline = Instant::now() + WAIT_FOR_FIRST;
    loop {
        // A fresh connection each round: waiters must not starve the pool the first request needs.
        let mut conn = ctx.db.conn().await?;
        let claimed = ctx
            .db
            .observe("idempotency.claim", &mut conn, async |conn| {
                db_idempotency::claim(conn, scope, key, method, path, request_hash).await
            })
            .await?;
        if claimed {
            return Ok(Claim::Owned);
        }
        let Some(stored) = ctx
            .db
            .observe("idempotency.find", &mut conn, async |conn| db_idempotency::find(conn, scope, key).await)
            .await?
        else {
            continue; // Released in between: try to claim it again.
        };
        if stored.created_at < chrono::Utc::now() - chrono::Duration::hours(KEY_TTL_HOURS) {
            ctx.db
                .observe("idempotency.release", &mut conn, async |conn| db_idempotency::release(conn, scope, key).await)
                .await?;
            continue;
        }
        if stored.request_hash != request_hash {
            return Err(AppError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request",
            ));
        }
        if stored.status.is_some() {
            return Ok(Claim::Replay(stored));
        }
        if Instant::now() >= deadline {
            return Err(AppError::new(
                ErrorCode::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is still running",
            ));
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Stores the first response to a key, for replays.
pub async fn complete(
    ctx: &Context,
    scope: &str,
    key: &str,
    status: i16,
    body: &[u8],
    headers: serde_json::Value,
) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    ctx.db
        .observe("idempotency.complete", &mut conn, async |conn| {
            db_idempotency::complete(conn, scope, key, status, body, headers).await
        })
        .await?;
    Ok(())
}

/// Releases a key whose response could not be stored, so a retry can run again.
pub async fn forget(ctx: &Context, scope: &str, key: &str) {
    let released = async {
        let mut conn = ctx.db.conn().await?;
        ctx.db
            .observe("idempotency.release", &mut conn, async |conn| db_idempotency::release(conn, scope, key).await)
            .await
    };
    if let Err(err) = released.await {
        tracing::warn!(error = %err, "could not release an idempotency key");
    }
}

/// Deletes expired keys every hour.
pub async fn purge_periodically(ctx: std::sync::Arc<Context>) {
    let period = Duration::from_secs(3600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        let purged = async {
            let mut conn = ctx.db.conn().await?;
            ctx.db
                .observe("idempotency.purge_expired", &mut conn, async |conn| db_idempotency::purge_expired(conn).await)
                .await
        };
        match purged.await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "purged expired idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
        }
    }
}
