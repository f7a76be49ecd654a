//! PostgreSQL access: the connection pool, embedded migrations, query observation, and one
//! module of free functions per aggregate. Nothing here knows about HTTP.

/// Reddit's hot rank in SQL over the score expression `$score` (a literal), as a static string:
/// the formula of `domain::content::hot_rank`, which ranks a new post in Rust.
macro_rules! hot_rank_sql {
    ($score:literal) => {
        concat!("sign(", $score, ") * log(greatest(abs(", $score, "), 1)) + extract(epoch FROM created_at) / 45000")
    };
}

pub mod accounts;
pub mod audit;
pub mod cluster;
pub mod comments;
pub mod communities;
pub mod idempotency;
pub mod migrations;
pub mod moderation;
pub mod notifications;
pub mod notify;
pub mod ops;
pub mod posts;
pub mod schema;
pub mod seed;
pub mod summaries;
pub mod users;

use std::future::Future;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, TransactionManager};
use tracing::Instrument;

use crate::error::{AppError, ErrorCode};
use crate::metrics::Metrics;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `lower(text)`; matches the case-insensitive unique indexes on names.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A pooled connection, opaque outside `db`: the only ways to run SQL on it are
/// [`Database::observe`] and [`Database::transaction`], so an unobserved query does not
/// compile.
pub struct DbConn(Object<AsyncPgConnection>);

/// Which server a pool talks to; a label on every database metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writable primary.
    Primary,
}

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
        }
    }
}

/// Database failures, as callers need to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time (the server is down, or the pool is exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The query ran and failed.
    #[error("query {query} failed: {source}")]
    Query {
        /// The query name.
        query: &'static str,
        /// The cause.
        #[source]
        source: diesel::result::Error,
    },
    /// The query did not finish in time.
    #[error("query {query} timed out")]
    Timeout {
        /// The query name.
        query: &'static str,
    },
}

/// The pool of the primary and its metrics.
#[derive(Clone)]
pub struct Database {
    pool: Pool<AsyncPgConnection>,
    url: std::sync::Arc<str>,
    role: Role,
    metrics: Metrics,
}

/// Pool settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections.
    pub max_size: usize,
    /// How long a caller waits for a connection.
    pub wait_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
}

impl Database {
    /// Builds a pool for `url`; connections are opened lazily.
    pub fn new(url: &str, settings: &PoolSettings, metrics: Metrics) -> Result<Self, DbError> {
        // Each connection's driver task lives on the runtime that opened it. actix-web runs a
        // runtime per worker thread and stops idle workers first at shutdown, which would cut
        // pooled connections still used by busy workers; so open them on the main runtime.
        let runtime = tokio::runtime::Handle::current();
        let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
        // No test query on every checkout (diesel-async's default, `Verified`, ran a `SELECT 1`
        // before each unit of work: a second round trip per request). A connection whose
        // server went away is still dropped, because its socket is closed (`is_broken`).
        manager_config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
        manager_config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            let runtime = runtime.clone();
            Box::pin(async move {
                let task = runtime.spawn(async move { AsyncPgConnection::establish(&url).await });
                task.await.map_err(|err| diesel::ConnectionError::BadConnection(err.to_string()))?
            })
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
        let url = std::sync::Arc::from(url);
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|err| DbError::Unavailable(err.to_string()))?;
        let role = Role::Primary;
        metrics
            .db_pool_max
            .with_label_values(&[role.as_str()])
            .set(i64::try_from(settings.max_size).unwrap_or(i64::MAX));
        Ok(Self { pool, url, role, metrics })
    }

    /// A dedicated connection (outside the pool) listening on `channel`.
    pub async fn listen(&self, channel: &'static str) -> Result<notify::Listener, DbError> {
        notify::Listener::connect(&self.url, channel).await
    }

    /// Takes a connection from the pool.
    pub async fn conn(&self) -> Result<DbConn, DbError> {
        self.pool.get().await.map(DbConn).map_err(|err| DbError::Unavailable(err.to_string()))
    }

    /// Runs `query` (one of this module's functions) on `conn` as the named query: a
    /// `db.query` client span, a duration histogram sample and, on failure, an error count.
    pub async fn observe<T>(
        &self,
        name: &'static str,
        conn: &mut DbConn,
        query: impl AsyncFnOnce(&mut AsyncPgConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        self.timed(name, query(&mut conn.0)).await.map_err(|source| DbError::Query { query: name, source })
    }

    /// Runs `work` in one transaction on `conn`, observed as one named unit of work: committed
    /// when it returns `Ok`, rolled back when it returns an error (which is passed on).
    pub async fn transaction<T, E>(
        &self,
        name: &'static str,
        conn: &mut DbConn,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        self.timed(name, in_transaction(&mut conn.0, work)).await
    }

    /// Observes a unit of work: a `db.query` span, a duration sample, an error count.
    async fn timed<T, E>(&self, name: &'static str, work: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let span = tracing::info_span!(
            "db.query",
            otel.name = name,
            otel.kind = "client",
            db.system.name = "postgresql",
            db.query.summary = name,
            db.role = self.role.as_str(),
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        // Outside a page view there is no counter; that is not an error.
        let _ = PAGE_QUERIES.try_with(|count| count.set(count.get() + 1));
        let result = work.instrument(span.clone()).await;
        let labels = [name, self.role.as_str()];
        self.metrics.db_query_duration.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
        // Touch the error counter so every query's error series exists (at 0) for rate().
        let errors = self.metrics.db_query_errors.with_label_values(&labels);
        if result.is_err() {
            errors.inc();
            span.record("otel.status_code", "error");
        }
        result
    }

    /// `SELECT 1` within `timeout`, including the wait for a connection; updates `agora_db_up`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        let attempt = async {
            let mut conn = self.conn().await?;
            self.observe("health.ping", &mut conn, async |conn| diesel::sql_query("SELECT 1").execute(conn).await)
                .await
                .map(drop)
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Timeout { query: "health.ping" }),
        };
        self.metrics.db_up.with_label_values(&[self.role.as_str()]).set(if result.is_ok() { 1.0 } else { 0.0 });
        result
    }

    /// Copies the pool's current state into the pool gauges (called before each scrape).
    pub fn export_pool_metrics(&self) {
        let status = self.pool.status();
        let role = [self.role.as_str()];
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.db_pool_connections.with_label_values(&role).set(to_i64(status.size));
        self.metrics.db_pool_idle.with_label_values(&role).set(to_i64(status.available));
        self.metrics.db_pool_waiting.with_label_values(&role).set(to_i64(status.waiting));
    }
}

/// Runs `work` in one transaction on `conn`: committed when it returns `Ok`, rolled back when it
/// returns an error (which is passed on, as diesel's own `transaction` does).
pub(crate) async fn in_transaction<T, E>(
    conn: &mut AsyncPgConnection,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    type Manager = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    Manager::begin_transaction(conn).await?;
    match work(&mut *conn).await {
        Ok(value) => {
            Manager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(conn).await {
            // A broken transaction manager is most likely the error's own doing.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// The error of one query, as `db` functions return it.
pub use diesel::result::Error as QueryError;

/// A connection lent to `db` functions inside [`Database::observe`] or
/// [`Database::transaction`]; services only pass it on.
pub type Lent = AsyncPgConnection;

/// Creates `database` on the server at `admin_url` when it does not exist yet.
pub async fn create_database_if_missing(admin_url: &str, database: &str) -> Result<(), DbError> {
    let mut conn =
        AsyncPgConnection::establish(admin_url).await.map_err(|err| DbError::Unavailable(err.to_string()))?;
    let exists = database_exists(&mut conn, database)
        .await
        .map_err(|source| DbError::Query { query: "admin.database_exists", source })?;
    if !exists {
        let quoted = database.replace('"', "\"\"");
        diesel::sql_query(format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut conn)
            .await
            .map_err(|source| DbError::Query { query: "admin.create_database", source })?;
        tracing::info!(database, "created database");
    }
    Ok(())
}

/// Whether a database of that name exists on the server `conn` is connected to.
pub async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result(conn)
        .await?;
    Ok(found.exists)
}

impl From<DbError> for AppError {
    #[track_caller]
    fn from(err: DbError) -> Self {
        let kind = match &err {
            DbError::Unavailable(_) | DbError::Timeout { .. } => ErrorCode::ServiceUnavailable,
            DbError::Query { .. } => ErrorCode::InternalError,
        };
        let detail =
            if kind == ErrorCode::ServiceUnavailable { "the database is unavailable" } else { "internal error" };
        Self { source: Some(Box::new(err)), ..AppError::new(kind, detail) }
    }
}

impl From<diesel::result::Error> for AppError {
    #[track_caller]
    fn from(source: diesel::result::Error) -> Self {
        AppError::from(DbError::Query { query: "transaction", source })
    }
}

tokio::task_local! {
    /// Units of work of the page view running on this task (see [`count_queries`]).
    static PAGE_QUERIES: std::cell::Cell<u32>;
}

/// Runs `work` and counts the database units of work (observed queries and transactions) it made.
pub async fn count_queries<F: Future>(work: F) -> (F::Output, u32) {
    PAGE_QUERIES
        .scope(std::cell::Cell::new(0), async {
            let output = work.await;
            (output, PAGE_QUERIES.with(std::cell::Cell::get))
        })
        .await
}
