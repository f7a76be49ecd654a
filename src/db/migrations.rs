//! The SQL migrations under `migrations/`, embedded in the binary.

use diesel::Connection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration of this build, in order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A migration run that failed.
#[derive(Debug, thiserror::Error)]
#[error("migrations failed: {0}")]
pub struct MigrationError(String);

type SyncConn = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies every pending migration and returns the versions applied.
pub async fn run_pending(url: &str) -> Result<Vec<String>, MigrationError> {
    with_sync_connection(url, |conn| {
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|err| MigrationError(err.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// A step of [`run_pending_with_progress`].
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// About to apply `name`; `remaining` includes it.
    Starting {
        /// The migration.
        name: &'a str,
        /// Pending migrations, this one included.
        remaining: usize,
    },
    /// Applied `name`.
    Applied {
        /// The migration.
        name: &'a str,
        /// Pending migrations left.
        remaining: usize,
        /// How long it took.
        seconds: f64,
    },
}

/// Applies the pending migrations one at a time, reporting each step to `progress`.
pub async fn run_pending_with_progress(
    url: &str,
    progress: impl Fn(Progress<'_>) + Send + 'static,
) -> Result<Vec<String>, MigrationError> {
    with_sync_connection(url, move |conn| {
        let pending = conn.pending_migrations(MIGRATIONS).map_err(|err| MigrationError(err.to_string()))?;
        let mut applied = Vec::new();
        for (index, migration) in pending.iter().enumerate() {
            let name = migration.name().to_string();
            progress(Progress::Starting { name: &name, remaining: pending.len() - index });
            let started = std::time::Instant::now();
            let version =
                conn.run_migration(migration.as_ref()).map_err(|err| MigrationError(format!("{name}: {err}")))?;
            progress(Progress::Applied {
                name: &name,
                remaining: pending.len() - index - 1,
                seconds: started.elapsed().as_secs_f64(),
            });
            applied.push(version.to_string());
        }
        Ok(applied)
    })
    .await
}

/// The versions not applied yet, without applying them.
pub async fn pending(url: &str) -> Result<Vec<String>, MigrationError> {
    with_sync_connection(url, |conn| {
        let pending = conn.pending_migrations(MIGRATIONS).map_err(|err| MigrationError(err.to_string()))?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    })
    .await
}

/// Reverts every applied migration, newest first (used to prove migrations reversible).
pub async fn revert_all(url: &str) -> Result<usize, MigrationError> {
    with_sync_connection(url, |conn| {
        let reverted = conn.revert_all_migrations(MIGRATIONS).map_err(|err| MigrationError(err.to_string()))?;
        Ok(reverted.len())
    })
    .await
}

/// How many migrations this build carries.
pub fn count() -> usize {
    MigrationSource::<Pg>::migrations(&MIGRATIONS).map_or(0, |m| m.len())
}

/// diesel's migration harness is synchronous: run it on a blocking thread over the async
/// connection's wrapper, which works in any tokio runtime flavour.
async fn with_sync_connection<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut SyncConn) -> Result<T, MigrationError> + Send + 'static,
) -> Result<T, MigrationError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <SyncConn as Connection>::establish(&url).map_err(|err| MigrationError(err.to_string()))?;
        work(&mut conn)
    })
    .await
    .map_err(|err| MigrationError(format!("migration task failed: {err}")))?
}
