//! Keeping the response caches of every daemon of one database true: a write's changes are
//! applied here at once and, when other daemons listen, published with `NOTIFY` in the write's
//! own statement or right after it; every daemon `LISTEN`s and applies the others'.
//!
//! `NOTIFY` serializes the commits of the transactions that send it (PostgreSQL takes one
//! queue lock at commit), which halves the vote rate; so a daemon publishes only while it sees
//! another daemon's listener (`pg_stat_activity`, probed every [`PROBE_INTERVAL`]). A daemon
//! that starts listening flushes its caches at once and, when others listen too, again after
//! two probe intervals, by which time every other daemon publishes to it. A daemon whose listening connection drops
//! flushes its caches (it may have missed notifications) and reconnects with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::db::DbConn;
use crate::db::notify::Listener;
use crate::domain::UserId;
use crate::service::Context;
use crate::service::cache::{Change, Source};

/// The notification channel.
pub const CHANNEL: &str = "agora_cache";

/// How often a daemon looks for other daemons' listeners.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// After `writer`'s write committed: makes what it changed stale here, then tells the other
/// daemons (and that `writer` wrote, for their read-your-writes routing).
/// A failed publication is logged, not returned: the write stands, and the other daemons
/// catch up when their entries expire (`cache.ttl_seconds`).
pub async fn committed(ctx: &Context, conn: &mut DbConn, writer: UserId, changes: &[Change]) {
    let changes: Vec<Change> = changes.iter().copied().chain([Change::Wrote(writer.0)]).collect();
    ctx.caches.responses.apply(&changes, Source::Local);
    let Some(payload) = payload(ctx, &changes) else { return };
    let published = ctx
        .db
        .observe("cache.notify", conn, async |conn| crate::db::notify::publish(conn, CHANNEL, &payload).await)
        .await;
    if let Err(err) = published {
        tracing::error!(error = %err, "cannot tell the other daemons what a write changed");
    }
}

/// The notification for `changes` (this daemon's origin, then each change), or `None` while no
/// other daemon listens.
pub fn payload(ctx: &Context, changes: &[Change]) -> Option<String> {
    if !ctx.caches.peers_listening.load(Ordering::Acquire) {
        return None;
    }
    let mut payload = ctx.caches.origin.clone();
    for change in changes {
        payload.push(' ');
        payload.push_str(&change.encode());
    }
    Some(payload)
}

/// Looks for other daemons' listeners until the process stops (the first look is
/// [`probe_once`], at start).
pub async fn probe_peers(ctx: Arc<Context>) {
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        probe_once(&ctx).await;
    }
}

/// Counts the other daemons' listeners and decides whether writes publish.
pub async fn probe_once(ctx: &Context) {
    let own = ctx.caches.listener_pid.load(Ordering::Acquire);
    // Unknown is treated as "someone listens": publishing needlessly is only slower.
    let others = match ctx.db.conn().await {
        Ok(mut conn) => ctx
            .db
            .observe("cache.other_listeners", &mut conn, async |conn| {
                crate::db::notify::other_listeners(conn, own).await
            })
            .await
            .unwrap_or(1),
        Err(_) => 1,
    };
    ctx.metrics.cache_peers.set(others);
    let was = ctx.caches.peers_listening.swap(others > 0, Ordering::AcqRel);
    if was != (others > 0) {
        let mode = if others > 0 { "published" } else { "kept local" };
        tracing::info!(other_daemons = others, "cache invalidations are {mode}");
    }
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
                ctx.caches.listener_pid.store(listener.backend_pid(), Ordering::Release);
                // Whatever was written while nobody listened is unknown: start from empty, and
                // again once every other daemon has seen this listener and publishes to it.
                ctx.caches.responses.apply(&[Change::Everything], Source::Notify);
                // With no other daemon listening, nobody writes without telling this one.
                if ctx.caches.peers_listening.load(Ordering::Acquire) {
                    let settle = ctx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(PROBE_INTERVAL * 2 + Duration::from_millis(100)).await;
                        settle.caches.responses.apply(&[Change::Everything], Source::Notify);
                    });
                }
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
                ctx.caches.listener_pid.store(0, Ordering::Release);
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
