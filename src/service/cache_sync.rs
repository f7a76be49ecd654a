//! Keeping the response caches of every daemon of one database true: a write's changes are
//! applied here at once and published with `NOTIFY`; every daemon `LISTEN`s and applies the
//! others'. A daemon whose listening connection drops flushes its caches (it may have missed
//! notifications) and reconnects with backoff.

use std::sync::Arc;
use std::time::Duration;

use crate::db::DbConn;
use crate::db::notify::Listener;
use crate::service::Context;
use crate::service::cache::{Change, Source};

/// The notification channel.
pub const CHANNEL: &str = "agora_cache";

/// After a write committed: makes what it changed stale here, then tells the other daemons.
/// A failed publication is logged, not returned: the write stands, and the other daemons
/// catch up when their entries expire (`cache.ttl_seconds`).
pub async fn committed(ctx: &Context, conn: &mut DbConn, changes: &[Change]) {
    ctx.caches.responses.apply(changes, Source::Local);
    let payload = payload(ctx, changes);
    let published = ctx
        .db
        .observe("cache.notify", conn, async |conn| crate::db::notify::publish(conn, CHANNEL, &payload).await)
        .await;
    if let Err(err) = published {
        tracing::error!(error = %err, "cannot tell the other daemons what a write changed");
    }
}

/// The notification for `changes`: this daemon's origin, then each change.
pub fn payload(ctx: &Context, changes: &[Change]) -> String {
    let mut payload = ctx.caches.origin.clone();
    for change in changes {
        payload.push(' ');
        payload.push_str(&change.encode());
    }
    payload
}

/// Tells every running daemon to flush its caches: for writes made outside a daemon (the
/// `agora admin` and `agora seed` commands), which have no caches of their own.
pub async fn flush_everywhere(conn: &mut crate::db::ops::DirectConn) -> Result<(), crate::db::DbError> {
    let payload = format!("command {}", Change::Everything.encode());
    conn.run(async |conn| crate::db::notify::publish(conn, CHANNEL, &payload).await)
        .await
        .map_err(|source| crate::db::DbError::Query { query: "cache.notify", source })
}

/// The changes of a notification, unless it came from `origin` (or is not one of ours).
fn changes_from_others(payload: &str, origin: &str) -> Vec<Change> {
    let mut words = payload.split(' ');
    match words.next() {
        Some(sender) if sender != origin => words.filter_map(Change::decode).collect(),
        _ => Vec::new(),
    }
}

/// Opens the listening connection before the daemon serves (so that nothing it caches can
/// miss another daemon's write); `None` when the database cannot be reached yet, in which
/// case [`listen`] keeps trying.
pub async fn first_listener(ctx: &Context) -> Option<Listener> {
    match ctx.db.listen(CHANNEL).await {
        Ok(listener) => Some(listener),
        Err(err) => {
            tracing::warn!(error = %err, "the cache invalidation listener cannot connect yet");
            None
        }
    }
}

/// Listens for the other daemons' changes until the process stops, starting with `first`.
pub async fn listen(ctx: Arc<Context>, first: Option<Listener>) {
    let mut backoff = Duration::from_millis(250);
    let mut connected_before = false;
    let mut first = first;
    loop {
        let connected = match first.take() {
            Some(listener) => Ok(listener),
            None => ctx.db.listen(CHANNEL).await,
        };
        match connected {
            Ok(mut listener) => {
                // Whatever was written while nobody listened is unknown: start from empty.
                ctx.caches.responses.apply(&[Change::Everything], Source::Notify);
                if connected_before {
                    ctx.metrics.cache_listener_reconnects.inc();
                    tracing::info!("the cache invalidation listener reconnected; the caches were flushed");
                }
                connected_before = true;
                backoff = Duration::from_millis(250);
                ctx.metrics.cache_listener_up.set(1);
                while let Some(notification) = listener.next().await {
                    let changes = changes_from_others(&notification.payload, &ctx.caches.origin);
                    if !changes.is_empty() {
                        ctx.caches.responses.apply(&changes, Source::Notify);
                    }
                }
                ctx.metrics.cache_listener_up.set(0);
                ctx.caches.responses.apply(&[Change::Everything], Source::Notify);
                tracing::warn!("the cache invalidation listener lost its connection; the caches were flushed");
            }
            Err(err) => {
                ctx.metrics.cache_listener_up.set(0);
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "the cache invalidation listener cannot connect");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_skips_its_own_notifications() {
        assert!(changes_from_others("me post:1 listings", "me").is_empty());
        assert_eq!(changes_from_others("other post:1 listings junk", "me"), [Change::Post(1), Change::Listings]);
        assert!(changes_from_others("", "me").is_empty());
    }
}
