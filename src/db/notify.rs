//! PostgreSQL `LISTEN`/`NOTIFY`: how daemons sharing one database tell each other which cached
//! values a write made stale.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;

use crate::db::DbError;

/// The `application_name` of listening connections (operators and tests find them by it).
pub const LISTENER_APPLICATION_NAME: &str = "agora cache listener";

/// Publishes `payload` on `channel` (delivered to listeners when the statement's transaction
/// commits).
pub async fn publish(conn: &mut AsyncPgConnection, channel: &str, payload: &str) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(channel)
        .bind::<Text, _>(payload)
        .execute(conn)
        .await
        .map(drop)
}

/// A dedicated connection that listens on one channel.
pub struct Listener {
    conn: AsyncPgConnection,
    backend_pid: i32,
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Listening connections on this database other than the backend `own_pid` (0: count all).
pub async fn other_listeners(conn: &mut AsyncPgConnection, own_pid: i32) -> diesel::QueryResult<i64> {
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = $1 AND pid <> $2",
    )
    .bind::<Text, _>(LISTENER_APPLICATION_NAME)
    .bind::<diesel::sql_types::Integer, _>(own_pid)
    .get_result::<Count>(conn)
    .await
    .map(|row| row.n)
}

/// One notification received.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The backend process that sent it.
    pub sender_pid: i32,
    /// Its payload.
    pub payload: String,
}

impl Listener {
    /// Opens a connection to `url` and listens on `channel` (a plain identifier).
    pub async fn connect(url: &str, channel: &'static str) -> Result<Self, DbError> {
        let mut conn = AsyncPgConnection::establish(url).await.map_err(|err| DbError::Unavailable(err.to_string()))?;
        diesel::sql_query(format!("SET application_name = '{LISTENER_APPLICATION_NAME}'"))
            .execute(&mut conn)
            .await
            .map_err(|source| DbError::Query { query: "cache.listener_setup", source })?;
        diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .await
            .map_err(|source| DbError::Query { query: "cache.listen", source })?;
        let backend = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut conn)
            .await
            .map_err(|source| DbError::Query { query: "cache.listener_setup", source })?;
        Ok(Self { conn, backend_pid: backend.pid })
    }

    /// The server process of this connection.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// The next notification; `None` once the connection is gone (the caller reconnects).
    pub async fn next(&mut self) -> Option<Notification> {
        let mut notifications = std::pin::pin!(self.conn.notifications_stream());
        match notifications.next().await {
            Some(Ok(notification)) => {
                Some(Notification { sender_pid: notification.process_id, payload: notification.payload })
            }
            Some(Err(err)) => {
                tracing::warn!(error = %err, "the cache invalidation listener lost its connection");
                None
            }
            None => None,
        }
    }
}
