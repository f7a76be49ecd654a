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
pub mod inbox;
pub mod messages;
pub mod migrations;
pub mod moderation;
pub mod notifications;
pub mod notify;
pub mod ops;
pub mod posts;
pub mod reader;
pub mod replicas;
pub mod schema;
pub mod seed;
pub mod server_admin;
pub mod summaries;
pub mod uploads;
pub mod users;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, TransactionManager};
use tracing::Instrument;

use crate::error::{AppError, ErrorCode};
use crate::metrics::Metrics;
use replicas::{Health, PROBE_INTERVAL, PROBE_TIMEOUT, PrimaryHistory, Standing};

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `lower(text)`; matches the case-insensitive unique indexes on names.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A pooled connection, opaque outside `db`: the only ways to run SQL on it are
/// [`Database::observe`] and [`Database::transaction`], so an unobserved query does not
/// compile. It knows which server it is on, for the metrics and for falling back to the
/// primary when a replica fails.
pub struct DbConn {
    connection: Object<AsyncPgConnection>,
    server: Arc<ServerLabel>,
}

/// Which server a pool talks to; a label on every database metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The writable primary.
    Primary,
    /// A streaming replica, read only.
    Replica,
}

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
        }
    }
}

/// The labels of one server: its role, its name (from its URL, without credentials) and, for
/// a replica, its place in the list.
#[derive(Debug)]
struct ServerLabel {
    role: Role,
    name: String,
    replica: Option<usize>,
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

/// One server and its pool.
#[derive(Clone)]
struct Server {
    pool: Pool<AsyncPgConnection>,
    url: Arc<str>,
    label: Arc<ServerLabel>,
}

/// A replica: its server and what the probe and failed queries found.
struct Replica {
    server: Server,
    health: Mutex<Health>,
}

/// What routing knows beyond each replica: the primary's recent WAL positions, whether it
/// answered the last probe, and the round-robin position.
struct Routing {
    history: Mutex<PrimaryHistory>,
    primary_up: AtomicBool,
    next: AtomicUsize,
    max_lag: Duration,
}

/// The pools of the primary and of every replica, and their metrics.
#[derive(Clone)]
pub struct Database {
    primary: Server,
    replicas: Arc<[Replica]>,
    routing: Arc<Routing>,
    metrics: Metrics,
}

/// Pool settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections to the primary.
    pub max_size: usize,
    /// Most connections to each replica.
    pub replica_max_size: usize,
    /// How long a caller waits for a connection.
    pub wait_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// A replica further behind than this serves no reads.
    pub max_replica_lag: Duration,
}

/// One replica as `/health/ready` and the log show it.
#[derive(Debug, Clone)]
pub struct ReplicaReport {
    /// The server name (host, port, database).
    pub name: String,
    /// `up, lag 0.2 s` or `out: <reason>`.
    pub state: String,
}

impl Database {
    /// Builds a pool for the primary at `url` and one per replica; connections are opened lazily.
    pub fn new(url: &str, replica_urls: &[String], settings: &PoolSettings, metrics: Metrics) -> Result<Self, DbError> {
        let primary = Server::new(url, Role::Primary, None, settings.max_size, settings, &metrics)?;
        let replicas = replica_urls
            .iter()
            .enumerate()
            .map(|(index, url)| {
                let server =
                    Server::new(url, Role::Replica, Some(index), settings.replica_max_size, settings, &metrics)?;
                let name = [server.label.name.as_str()];
                metrics.db_replica_healthy.with_label_values(&name).set(0);
                metrics.db_replica_lag_seconds.with_label_values(&name).set(0.0);
                metrics.db_replica_lag_bytes.with_label_values(&name).set(0);
                metrics.db_replica_fallbacks.with_label_values(&name);
                metrics.db_reads_routed.with_label_values(&[Role::Replica.as_str(), &server.label.name]);
                Ok(Replica { server, health: Mutex::new(Health::default()) })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let routing = Routing {
            history: Mutex::new(PrimaryHistory::new(settings.max_replica_lag)),
            primary_up: AtomicBool::new(true),
            next: AtomicUsize::new(0),
            max_lag: settings.max_replica_lag,
        };
        Ok(Self { primary, replicas: replicas.into(), routing: Arc::new(routing), metrics })
    }

    /// Whether read replicas are configured.
    pub fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// A dedicated connection (outside the pool) to the primary, listening on `channel`.
    pub async fn listen(&self, channel: &'static str) -> Result<notify::Listener, DbError> {
        notify::Listener::connect(&self.primary.url, channel).await
    }

    /// Takes a connection to the primary from its pool: for writes, for anything inside a
    /// write's transaction, and for reads that must be current (sessions, revocations).
    pub async fn conn(&self) -> Result<DbConn, DbError> {
        self.primary.conn().await
    }

    /// A connection for a read that tolerates a replica's state: a replica that is in and has
    /// replayed every commit made before `fresh_since` (round robin among them), else the
    /// primary. With the primary down, any replica that is in.
    pub async fn read_conn(&self, fresh_since: Option<Instant>) -> Result<DbConn, DbError> {
        let count = self.replicas.len();
        if count > 0 {
            let primary_down = !AtomicBool::load(&self.routing.primary_up, Ordering::Relaxed);
            let start = self.routing.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..count {
                let replica = &self.replicas[(start + offset) % count];
                if !lock(&replica.health).may_serve(fresh_since, primary_down) {
                    continue;
                }
                match replica.server.conn().await {
                    Ok(conn) => {
                        self.count_read(&replica.server);
                        return Ok(conn);
                    }
                    Err(err) => self.replica_failed(replica, &format!("no connection: {err}")),
                }
            }
        }
        match self.primary.conn().await {
            Ok(conn) => {
                self.count_read(&self.primary);
                Ok(conn)
            }
            // The primary went away before the probe noticed: any replica still in will do.
            Err(err) => match self.any_replica_conn().await {
                Some(conn) => Ok(conn),
                None => Err(err),
            },
        }
    }

    async fn any_replica_conn(&self) -> Option<DbConn> {
        for replica in self.replicas.iter() {
            if lock(&replica.health).standing != Standing::In {
                continue;
            }
            if let Ok(conn) = replica.server.conn().await {
                self.count_read(&replica.server);
                return Some(conn);
            }
        }
        None
    }

    fn count_read(&self, server: &Server) {
        self.metrics.db_reads_routed.with_label_values(&[server.label.role.as_str(), &server.label.name]).inc();
    }

    fn replica_failed(&self, replica: &Replica, reason: &str) {
        let mut health = lock(&replica.health);
        if matches!(health.standing, Standing::In | Standing::Unprobed) {
            tracing::warn!(replica = %replica.server.label.name, reason, "replica taken out");
        }
        health.failed(reason.to_owned(), Instant::now());
        self.metrics.db_replica_healthy.with_label_values(&[&replica.server.label.name]).set(0);
    }

    /// Runs `query` (one of this module's functions) on `conn` as the named query: a
    /// `db.query` client span, a duration histogram sample and, on failure, an error count.
    pub async fn observe<T>(
        &self,
        name: &'static str,
        conn: &mut DbConn,
        query: impl AsyncFnOnce(&mut AsyncPgConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let server = conn.server.clone();
        self.timed(name, &server, query(&mut conn.connection))
            .await
            .map_err(|source| DbError::Query { query: name, source })
    }

    /// [`Database::observe`] for a read on a connection from [`Database::read_conn`]: a query
    /// that fails on a replica is run once more on the primary (and `conn` moves there), so a
    /// replica that dies costs the reader time, not an error.
    pub async fn observe_read<T>(
        &self,
        name: &'static str,
        conn: &mut DbConn,
        query: impl AsyncFn(&mut AsyncPgConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let server = conn.server.clone();
        let result = self.timed(name, &server, query(&mut conn.connection)).await;
        let (source, index) = match (result, server.replica) {
            (Ok(value), _) => return Ok(value),
            (Err(source), None) => return self.read_on_a_replica_instead(name, conn, &query, source).await,
            (Err(source), Some(index)) => (source, index),
        };
        let replica = &self.replicas[index];
        tracing::warn!(replica = %replica.server.label.name, query = name, error = %source,
            "a read failed on a replica; running it on the primary");
        if conn.connection.is_broken() {
            self.replica_failed(replica, &format!("query failed: {source}"));
        }
        self.metrics.db_replica_fallbacks.with_label_values(&[&replica.server.label.name]).inc();
        *conn = self.primary.conn().await?;
        let server = conn.server.clone();
        self.timed(name, &server, query(&mut conn.connection))
            .await
            .map_err(|source| DbError::Query { query: name, source })
    }

    /// A read that failed on the primary because the primary went away (before the probe
    /// noticed) runs once more on a replica that is in, if there is one.
    async fn read_on_a_replica_instead<T>(
        &self,
        name: &'static str,
        conn: &mut DbConn,
        query: &impl AsyncFn(&mut AsyncPgConnection) -> QueryResult<T>,
        source: diesel::result::Error,
    ) -> Result<T, DbError> {
        if !server_unavailable(&source) {
            return Err(DbError::Query { query: name, source });
        }
        let Some(replica_conn) = self.any_replica_conn().await else {
            return Err(DbError::Query { query: name, source });
        };
        tracing::warn!(query = name, error = %source, "a read failed on the primary; running it on a replica");
        *conn = replica_conn;
        let server = conn.server.clone();
        self.timed(name, &server, query(&mut conn.connection))
            .await
            .map_err(|source| DbError::Query { query: name, source })
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
        let server = conn.server.clone();
        self.timed(name, &server, in_transaction(&mut conn.connection, work)).await
    }

    /// Observes a unit of work: a `db.query` span, a duration sample, an error count.
    async fn timed<T, E>(
        &self,
        name: &'static str,
        server: &ServerLabel,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let role = server.role.as_str();
        let span = tracing::info_span!(
            "db.query",
            otel.name = name,
            otel.kind = "client",
            db.system.name = "postgresql",
            db.query.summary = name,
            db.role = role,
            server.address = %server.name,
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        // Outside a page view there is no counter; that is not an error.
        let _ = PAGE_QUERIES.try_with(|count| count.set(count.get() + 1));
        let result = work.instrument(span.clone()).await;
        let labels = [name, role, &server.name];
        self.metrics.db_query_duration.with_label_values(&labels).observe(started.elapsed().as_secs_f64());
        // Touch the error counter so every query's error series exists (at 0) for rate().
        let errors = self.metrics.db_query_errors.with_label_values(&labels);
        if result.is_err() {
            errors.inc();
            span.record("otel.status_code", "error");
        }
        result
    }

    /// `SELECT 1` on the primary within `timeout`, including the wait for a connection;
    /// updates `agora_db_up`.
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
        self.set_up(&self.primary, result.is_ok());
        self.routing.primary_up.store(result.is_ok(), Ordering::Relaxed);
        result
    }

    fn set_up(&self, server: &Server, up: bool) {
        let labels = [server.label.role.as_str(), server.label.name.as_str()];
        self.metrics.db_up.with_label_values(&labels).set(if up { 1.0 } else { 0.0 });
    }

    /// Whether the primary answered the last probe or readiness check.
    pub fn primary_up(&self) -> bool {
        AtomicBool::load(&self.routing.primary_up, Ordering::Relaxed)
    }

    /// Each replica's standing, in configuration order.
    pub fn replica_reports(&self) -> Vec<ReplicaReport> {
        self.replicas
            .iter()
            .map(|r| ReplicaReport { name: r.server.label.name.clone(), state: lock(&r.health).describe() })
            .collect()
    }

    /// Whether at least one replica serves reads.
    pub fn any_replica_in(&self) -> bool {
        self.replicas.iter().any(|r| lock(&r.health).standing == Standing::In)
    }

    /// One probe round: the primary's current WAL position, then each replica's replay
    /// position, recovery state and lag; takes replicas out and puts them back in.
    pub async fn probe_replicas(&self) {
        let started = Instant::now();
        let primary_lsn = self.probe_primary().await;
        self.routing.primary_up.store(primary_lsn.is_some(), Ordering::Relaxed);
        self.set_up(&self.primary, primary_lsn.is_some());
        if let Some(lsn) = primary_lsn {
            lock(&self.routing.history).record(started, lsn);
        }
        let probes = self.replicas.iter().map(|replica| self.probe_replica(replica, primary_lsn.is_some()));
        futures_util::future::join_all(probes).await;
    }

    async fn probe_primary(&self) -> Option<u64> {
        let attempt = async {
            let mut conn = self.primary.conn().await?;
            self.observe("replication.primary_lsn", &mut conn, async |conn| ops::current_wal_lsn(conn).await).await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(Ok(lsn)) => Some(lsn),
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "replication probe: the primary does not answer");
                None
            }
            Err(_) => None,
        }
    }

    async fn probe_replica(&self, replica: &Replica, primary_measured: bool) {
        if lock(&replica.health).retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let attempt = async {
            let mut conn = replica.server.conn().await?;
            self.timed("replication.replica_lsn", &replica.server.label, ops::replay_position(&mut conn.connection))
                .await
                .map_err(|source| DbError::Query { query: "replication.replica_lsn", source })
        };
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DbError::Timeout { query: "replication.replica_lsn" }),
        };
        let name = &replica.server.label.name;
        self.set_up(&replica.server, outcome.is_ok());
        let (in_recovery, replayed) = match outcome {
            Ok(found) => found,
            Err(err) => return self.replica_failed(replica, &format!("unreachable: {err}")),
        };
        let position = match (primary_measured, replayed) {
            (true, Some(replayed)) => Some(lock(&self.routing.history).position(replayed, Instant::now())),
            _ => None,
        };
        let mut health = lock(&replica.health);
        let was_in = health.standing == Standing::In;
        health.probed(in_recovery, position, self.routing.max_lag);
        let now_in = health.standing == Standing::In;
        if was_in != now_in {
            let state = health.describe();
            if now_in {
                tracing::info!(replica = %name, state, "replica serves reads");
            } else {
                tracing::warn!(replica = %name, state, "replica taken out");
            }
        }
        let labels = [name.as_str()];
        self.metrics.db_replica_healthy.with_label_values(&labels).set(i64::from(now_in));
        self.metrics.db_replica_lag_seconds.with_label_values(&labels).set(health.position.lag.as_secs_f64());
        self.metrics
            .db_replica_lag_bytes
            .with_label_values(&labels)
            .set(i64::try_from(health.position.lag_bytes).unwrap_or(i64::MAX));
    }

    /// Probes the replicas every [`PROBE_INTERVAL`] until the task is dropped.
    pub async fn probe_replicas_periodically(self) {
        let mut ticker = tokio::time::interval(PROBE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.probe_replicas().await;
        }
    }

    /// Copies every pool's current state into the pool gauges (called before each scrape).
    pub fn export_pool_metrics(&self) {
        let servers = std::iter::once(&self.primary).chain(self.replicas.iter().map(|r| &r.server));
        for server in servers {
            let status = server.pool.status();
            let labels = [server.label.role.as_str(), server.label.name.as_str()];
            let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.metrics.db_pool_connections.with_label_values(&labels).set(to_i64(status.size));
            self.metrics.db_pool_idle.with_label_values(&labels).set(to_i64(status.available));
            self.metrics.db_pool_waiting.with_label_values(&labels).set(to_i64(status.waiting));
        }
    }
}

impl Server {
    fn new(
        url: &str,
        role: Role,
        replica: Option<usize>,
        max_size: usize,
        settings: &PoolSettings,
        metrics: &Metrics,
    ) -> Result<Self, DbError> {
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
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|err| DbError::Unavailable(err.to_string()))?;
        let label = Arc::new(ServerLabel { role, name: replicas::server_name(url), replica });
        metrics
            .db_pool_max
            .with_label_values(&[role.as_str(), &label.name])
            .set(i64::try_from(max_size).unwrap_or(i64::MAX));
        Ok(Self { pool, url: Arc::from(url), label })
    }

    async fn conn(&self) -> Result<DbConn, DbError> {
        let connection = self.pool.get().await.map_err(|err| DbError::Unavailable(err.to_string()))?;
        Ok(DbConn { connection, server: self.label.clone() })
    }
}

/// Locks routing state; a panic while it was held cannot leave it inconsistent (every update
/// is one assignment), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Whether a query failed because its server is away (the connection was cut, the server is
/// shutting down, starting up or recovering, or it has become read-only under a failover)
/// rather than because of the query: the caller should retry later, not report a bug.
pub fn server_unavailable(err: &diesel::result::Error) -> bool {
    use diesel::result::DatabaseErrorKind;
    let diesel::result::Error::DatabaseError(kind, info) = err else { return false };
    match kind {
        DatabaseErrorKind::UnableToSendCommand
        | DatabaseErrorKind::ClosedConnection
        | DatabaseErrorKind::ReadOnlyTransaction => true,
        DatabaseErrorKind::Unknown => {
            let message = info.message();
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
                || message.starts_with("server closed the connection")
        }
        _ => false,
    }
}

/// Whether a query failed because the database server's disk is full (SQLSTATE 53100
/// `disk_full`, or an I/O error that says so): a condition to report and retry, not a bug.
pub fn disk_full(err: &diesel::result::Error) -> bool {
    let diesel::result::Error::DatabaseError(_, info) = err else { return false };
    let message = info.message();
    message.contains("No space left on device") || message.contains("could not extend file")
}

impl From<DbError> for AppError {
    #[track_caller]
    fn from(err: DbError) -> Self {
        let (kind, detail) = match &err {
            DbError::Unavailable(_) | DbError::Timeout { .. } => {
                (ErrorCode::ServiceUnavailable, "the database is unavailable")
            }
            DbError::Query { source, .. } if server_unavailable(source) => {
                (ErrorCode::ServiceUnavailable, "the database is unavailable")
            }
            DbError::Query { source, .. } if disk_full(source) => (
                ErrorCode::InsufficientStorage,
                "the database's disk is full: nothing was written; writes work again once space is freed",
            ),
            DbError::Query { .. } => (ErrorCode::InternalError, "internal error"),
        };
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
