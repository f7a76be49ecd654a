//! The service context: everything a use case, a job or a command needs, built once per app.
//! It knows nothing of HTTP; the HTTP state (`edge::HttpState`) wraps it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::config::CacheConfig;
use crate::config::Config;
use crate::db::Database;
use crate::metrics::Metrics;
use crate::service::accounts::AuthState;
use crate::service::cache::ResponseCache;

/// The context services, jobs and the CLI take (no globals).
pub struct Context {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The pools of the primary and the replicas.
    pub db: Database,
    /// This app's metrics registry.
    pub metrics: Metrics,
    /// The resolved state directory.
    pub state_dir: PathBuf,
    /// Token keys and the session cache.
    pub auth: AuthState,
    /// The durable job queue.
    pub jobs: crate::queue::worker::Jobs,
    /// The SMTP transport; `None` when email is off.
    pub mailer: Option<crate::email::Mailer>,
    /// The summary providers and their breakers.
    pub summarizer: Arc<crate::summaries::Summarizer>,
    /// Set until the pending migrations at start are applied.
    pub migrating: AtomicBool,
    /// The read caches.
    pub caches: Caches,
    /// Where uploaded images are stored.
    pub media: crate::media::store::Store,
    /// When the media storage gauges were last counted (a scan of the uploads).
    pub media_counted_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// In-memory read caches; services fill them and invalidate them on the writes they commit.
pub struct Caches {
    /// Every cached API and page read, under one memory budget.
    pub responses: ResponseCache,
    /// Usernames by user id, for page headers (usernames never change).
    pub usernames: moka::future::Cache<i64, Arc<str>>,
    /// This daemon's name on the invalidation channel, so it skips its own notifications.
    pub origin: String,
    /// Whether another daemon listens for invalidations (then writes publish them).
    pub peers_listening: std::sync::atomic::AtomicBool,
    /// The server process of this daemon's listening connection (0 while it is down).
    pub listener_pid: std::sync::atomic::AtomicI32,
}

impl Caches {
    /// Empty caches sized by the configuration.
    pub fn new(config: &CacheConfig, read_your_writes: Duration, metrics: Metrics) -> Self {
        Self {
            responses: ResponseCache::new(config, read_your_writes, metrics),
            usernames: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            // Until the first probe answers, assume company: publishing needlessly is only slower.
            peers_listening: std::sync::atomic::AtomicBool::new(true),
            listener_pid: std::sync::atomic::AtomicI32::new(0),
        }
    }
}

impl Context {
    /// A connection for filling a shared cached read: a replica that has replayed every change
    /// this daemon has seen (its own writes and other daemons'), else the primary.
    pub async fn shared_read_conn(&self) -> Result<crate::db::DbConn, crate::error::AppError> {
        Ok(self.db.read_conn(self.caches.responses.fresh_since()).await?)
    }

    /// A connection for reading `reader`'s own state (their votes, memberships): a replica that
    /// has replayed their recent writes, else the primary.
    pub async fn reader_read_conn(
        &self,
        reader: crate::domain::UserId,
    ) -> Result<crate::db::DbConn, crate::error::AppError> {
        Ok(self.db.read_conn(self.caches.responses.reader_fresh_since(reader.0)).await?)
    }
}
