//! The service context: everything a use case, a job or a command needs, built once per app.
//! It knows nothing of HTTP; the HTTP state (`edge::HttpState`) wraps it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::config::Config;
use crate::db::Database;
use crate::metrics::Metrics;
use crate::service::accounts::AuthState;
use crate::service::communities::Page;
use crate::service::posts::Post;

/// How long a listing page's data is served from memory. A post created, edited, deleted or
/// moderated invalidates it at once, in the service that committed the write, whatever door
/// it came through; votes and new comments show within this time.
pub const LISTING_CACHE_TTL: Duration = Duration::from_secs(5);

/// The context services, jobs and the CLI take (no globals).
pub struct Context {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The primary's connection pool.
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
}

/// In-memory read caches; services fill them and invalidate them on the writes they commit.
#[derive(Clone)]
pub struct Caches {
    /// Listing pages as an anonymous reader sees them, by community, sort, window and cursor.
    pub listings: moka::future::Cache<String, Arc<Page<Post>>>,
    /// Usernames by user id, for page headers.
    pub usernames: moka::future::Cache<i64, Arc<str>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            listings: moka::future::Cache::builder().max_capacity(2_000).time_to_live(LISTING_CACHE_TTL).build(),
            usernames: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        }
    }
}

impl Caches {
    /// Forgets every cached listing page: a post, vote, comment or moderation action changed one.
    pub fn invalidate_listings(&self) {
        self.listings.invalidate_all();
    }
}
