//! Every Prometheus metric Agora exports, declared once in the table below (name, help,
//! labels, kind); the `Metrics` struct, its registration and the complete list [`ALL`] are
//! generated from it. One registry per app.
//!
//! Names follow the Prometheus conventions (base units, `_total`, `_seconds`, `_bytes`); the HTTP
//! server metrics follow the OpenTelemetry HTTP semantic conventions mapped to Prometheus.

use prometheus::core::Collector;
use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// The `http_route` label of every request no route matched, so that scanners cannot create
/// new series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Constant 1, labelled with the version and git revision of the running binary.
pub const BUILD_INFO: &str = "agora_build_info";

const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
const JOB_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
const DB_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const PAGE_QUERY_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 50.0];

/// A metric kind the table can declare.
trait Declare: Collector + Clone + Sized + 'static {
    fn declare(name: &str, help: &str, labels: &[&str], buckets: Option<&[f64]>) -> prometheus::Result<Self>;
}

macro_rules! plain {
    ($($kind:ident),*) => {$(
        impl Declare for $kind {
            fn declare(name: &str, help: &str, _labels: &[&str], _buckets: Option<&[f64]>) -> prometheus::Result<Self> {
                $kind::new(name, help)
            }
        }
    )*};
}

macro_rules! labelled {
    ($($kind:ident),*) => {$(
        impl Declare for $kind {
            fn declare(name: &str, help: &str, labels: &[&str], _buckets: Option<&[f64]>) -> prometheus::Result<Self> {
                $kind::new(Opts::new(name, help), labels)
            }
        }
    )*};
}

plain!(IntCounter, IntGauge, Gauge);
labelled!(IntCounterVec, IntGaugeVec, GaugeVec, CounterVec);

impl Declare for HistogramVec {
    fn declare(name: &str, help: &str, labels: &[&str], buckets: Option<&[f64]>) -> prometheus::Result<Self> {
        let opts = HistogramOpts::new(name, help);
        let opts = match buckets {
            Some(buckets) => opts.buckets(buckets.to_vec()),
            None => opts,
        };
        HistogramVec::new(opts, labels)
    }
}

/// Declares every metric once: `field: Kind = (name, help, [labels], buckets: B)`.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ident = ($name:literal, $help:literal, [$($label:literal),*] $(, buckets: $buckets:expr)?),)*) => {
        /// Every metric name Agora registers itself (process metrics come from the prometheus
        /// crate: `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
        /// `process_max_fds`, `process_virtual_memory_bytes`, `process_start_time_seconds`,
        /// `process_threads`).
        pub const ALL: &[&str] = &[$($name,)* BUILD_INFO];

        /// The metrics of one running app, registered in its own registry.
        #[derive(Clone)]
        pub struct Metrics {
            /// The registry `/metrics` renders.
            pub registry: Registry,
            $($(#[doc = $doc])* pub $field: $kind,)*
        }

        impl Metrics {
            fn declare_all(registry: Registry) -> prometheus::Result<Self> {
                $(
                    let buckets: Option<&[f64]> = None $(.or(Some($buckets)))?;
                    let $field = <$kind as Declare>::declare($name, $help, &[$($label),*], buckets)?;
                    registry.register(Box::new($field.clone()))?;
                )*
                Ok(Self { registry, $($field,)* })
            }
        }
    };
}

metrics! {
    /// HTTP server request duration, by method, matched route template and status code.
    http_request_duration: HistogramVec = ("http_server_request_duration_seconds", "Duration of HTTP server requests.", ["http_request_method", "http_route", "http_response_status_code"], buckets: HTTP_BUCKETS),
    /// HTTP requests being served right now.
    http_active_requests: IntGaugeVec = ("http_server_active_requests", "Number of active HTTP server requests.", ["http_request_method"]),
    /// Connections currently open in a database pool.
    db_pool_connections: IntGaugeVec = ("agora_db_pool_connections", "Connections open in the database pool.", ["role", "server"]),
    /// Idle connections in a database pool.
    db_pool_idle: IntGaugeVec = ("agora_db_pool_idle_connections", "Idle connections in the database pool.", ["role", "server"]),
    /// Most connections a database pool will open.
    db_pool_max: IntGaugeVec = ("agora_db_pool_max_connections", "Maximum size of the database pool.", ["role", "server"]),
    /// Tasks waiting for a connection from a database pool.
    db_pool_waiting: IntGaugeVec = ("agora_db_pool_waiting_requests", "Tasks waiting for a database connection.", ["role", "server"]),
    /// Database query duration by query name and server role.
    db_query_duration: HistogramVec = ("agora_db_query_duration_seconds", "Duration of database queries by query name.", ["query", "role", "server"], buckets: DB_BUCKETS),
    /// Failed database queries by query name and server role.
    db_query_errors: IntCounterVec = ("agora_db_query_errors_total", "Failed database queries by query name.", ["query", "role", "server"]),
    /// Whether the database answered the last readiness check (1) or not (0).
    db_up: GaugeVec = ("agora_db_up", "Whether the database answered the last readiness check.", ["role", "server"]),
    /// Reads routed to each server (replica-tolerant reads only; writes always use the primary).
    db_reads_routed: IntCounterVec = ("agora_db_reads_routed_total", "Replica-tolerant reads routed, by the role and name of the server that took them.", ["role", "server"]),
    /// Reads run again on the primary after failing on a replica.
    db_replica_fallbacks: IntCounterVec = ("agora_db_replica_fallbacks_total", "Reads run again on the primary after failing on a replica.", ["server"]),
    /// How far behind the primary each replica's state is, in seconds (by WAL position).
    db_replica_lag_seconds: GaugeVec = ("agora_db_replica_lag_seconds", "How far behind the primary each replica's replayed state is, in seconds.", ["server"]),
    /// How far behind the primary each replica's replay is, in WAL bytes.
    db_replica_lag_bytes: IntGaugeVec = ("agora_db_replica_lag_bytes", "How far behind the primary each replica's replay is, in WAL bytes.", ["server"]),
    /// Whether each replica serves reads (1) or is out (0).
    db_replica_healthy: IntGaugeVec = ("agora_db_replica_healthy", "Whether each replica serves reads (1) or is taken out (0).", ["server"]),
    /// Restart attempts of the private PostgreSQL cluster after it exited unexpectedly.
    private_database_restarts: IntCounter = ("agora_private_database_restarts_total", "Restart attempts of the private PostgreSQL server after it exited unexpectedly.", []),
    /// Writes answered 507 `insufficient_storage`: a disk Agora writes to (the database's, the
    /// job queue's) is full.
    writes_refused_disk_full: IntCounter = ("agora_writes_refused_disk_full_total", "Writes refused with 507 because a disk (the database's or the job queue's) is full.", []),
    /// When PostgreSQL last archived a WAL segment (pg_stat_archiver), Unix seconds.
    wal_archive_last_success: Gauge = ("agora_wal_archive_last_success_timestamp_seconds", "When the database last archived a WAL segment, Unix seconds.", []),
    /// Failed attempts to archive a WAL segment.
    wal_archive_failures: IntCounter = ("agora_wal_archive_failures_total", "Failed attempts to archive a WAL segment (pg_stat_archiver).", []),
    /// How much acknowledged writing a loss of the server would cost now: 0 when every written
    /// WAL is archived, else the time since the last segment was.
    dr_rpo: Gauge = ("agora_dr_rpo_seconds", "Seconds of writes not yet in the continuous archive (0 when everything written is archived).", []),
    /// How long the last passing restore drill took.
    dr_last_drill_rto: Gauge = ("agora_dr_last_drill_rto_seconds", "How long the restore of the last passing drill took, in seconds.", []),
    /// When a restore drill last passed, Unix seconds.
    dr_last_drill_success: Gauge = ("agora_dr_last_drill_success_timestamp_seconds", "When a restore drill of the continuous archive last passed, Unix seconds.", []),
    /// Whether the last restore drill passed (1) or failed (0).
    dr_last_drill_passed: IntGauge = ("agora_dr_last_drill_passed", "Whether the last restore drill passed (1) or failed (0).", []),
    /// Accounts registered.
    registrations: IntCounter = ("agora_registrations_total", "Accounts registered.", []),
    /// Sign-in attempts by outcome (`success`, `failure`).
    logins: IntCounterVec = ("agora_logins_total", "Sign-in attempts by outcome.", ["outcome"]),
    /// Refresh-token exchanges by outcome (`success`, `invalid`, `reuse`).
    token_refreshes: IntCounterVec = ("agora_token_refreshes_total", "Refresh-token exchanges by outcome.", ["outcome"]),
    /// Login sessions neither revoked nor expired (counted at scrape time).
    active_sessions: IntGauge = ("agora_active_sessions", "Login sessions neither revoked nor expired.", []),
    /// Posts created.
    posts_created: IntCounter = ("agora_posts_created_total", "Posts created.", []),
    /// Comments created.
    comments_created: IntCounter = ("agora_comments_created_total", "Comments created.", []),
    /// Votes cast (including changes and clears), by target (`post`, `comment`).
    votes: IntCounterVec = ("agora_votes_total", "Votes cast, by target.", ["target"]),
    /// Requests answered by replaying the stored response of their `Idempotency-Key`.
    idempotent_replays: IntCounter = ("agora_idempotent_replays_total", "Requests answered by replaying their Idempotency-Key's response.", []),
    /// Requests refused by a rate limit, by class (`api`, `api_anonymous`, `auth`, `posts`).
    rate_limited: IntCounterVec = ("agora_rate_limited_requests_total", "Requests refused by a rate limit, by class.", ["class"]),
    /// Database units of work one page view made, by page route (constant per page, whatever the
    /// thread size).
    page_db_queries: HistogramVec = ("agora_page_db_queries", "Database units of work per page view, by page route.", ["page"], buckets: PAGE_QUERY_BUCKETS),
    /// Reads of the response cache, by cache (`listings`, `posts`, `trees`, `subtrees`,
    /// `communities`, `profiles`, `search`, `overlays`) and result (`hit`, `miss`).
    cache_requests: IntCounterVec = ("agora_cache_requests_total", "Reads of the response cache, by cache and result.", ["cache", "result"]),
    /// Entries that left the response cache, by cache and cause (`size`, `expired`, `explicit`, `replaced`).
    cache_evictions: IntCounterVec = ("agora_cache_evictions_total", "Entries that left the response cache, by cache and cause.", ["cache", "cause"]),
    /// Bytes each cache holds (entries weighed by their size), counted against `cache.max_memory_mib`.
    cache_weighted_bytes: IntGaugeVec = ("agora_cache_weighted_bytes", "Bytes each response cache holds, counted against the memory budget.", ["cache"]),
    /// The response caches' shared memory budget (`cache.max_memory_mib`), in bytes.
    cache_max_bytes: IntGauge = ("agora_cache_max_bytes", "The response caches' shared memory budget, in bytes.", []),
    /// Invalidations, by cache and source (`local`: a write here, `notify`: another daemon's).
    cache_invalidations: IntCounterVec = ("agora_cache_invalidations_total", "Response cache invalidations, by cache and source.", ["cache", "source"]),
    /// Whether the connection listening for other daemons' invalidations is up (1) or not (0).
    cache_listener_up: IntGauge = ("agora_cache_listener_up", "Whether the connection listening for other daemons' cache invalidations is up.", []),
    /// Other daemons listening for cache invalidations on this database (writes publish to them
    /// only when there is at least one).
    cache_peers: IntGauge = ("agora_cache_peer_daemons", "Other daemons listening for cache invalidations on this database.", []),
    /// Times the invalidation listener reconnected (each one flushes this daemon's caches).
    cache_listener_reconnects: IntCounter = ("agora_cache_listener_reconnects_total", "Times the cache invalidation listener reconnected, flushing the caches.", []),
    /// Transparent refreshes of a browser session's tokens, by outcome (`success`, `failure`).
    page_session_refreshes: IntCounterVec = ("agora_page_session_refreshes_total", "Transparent refreshes of browser sessions, by outcome.", ["outcome"]),
    /// Unsafe page requests refused by the CSRF defences, by reason (`origin`, `token`).
    page_csrf_refusals: IntCounterVec = ("agora_page_csrf_refusals_total", "Unsafe page requests refused by the CSRF defences, by reason.", ["reason"]),
    /// When the HTTPS certificate in use expires (`notAfter`), seconds since the epoch.
    tls_certificate_expiry: Gauge = ("agora_tls_certificate_expiry_timestamp_seconds", "When the HTTPS certificate in use expires, seconds since the epoch.", []),
    /// Certificate reloads (SIGHUP) by outcome (`success`, `failure`).
    tls_reloads: IntCounterVec = ("agora_tls_reloads_total", "Certificate reloads by outcome.", ["outcome"]),
    /// Jobs in the queue by kind and state (`ready`, `delayed`, `leased`, `dead`).
    queue_jobs: IntGaugeVec = ("agora_queue_jobs", "Jobs in the queue by kind and state.", ["kind", "state"]),
    /// How long the oldest ready job of a kind has waited for a worker.
    queue_oldest_ready_age: GaugeVec = ("agora_queue_oldest_ready_age_seconds", "How long the oldest ready job has waited for a worker.", ["kind"]),
    /// Jobs enqueued, by kind.
    queue_enqueued: IntCounterVec = ("agora_queue_jobs_enqueued_total", "Jobs enqueued.", ["kind"]),
    /// Jobs completed, by kind.
    queue_completed: IntCounterVec = ("agora_queue_jobs_completed_total", "Jobs completed.", ["kind"]),
    /// Failed job attempts, by kind.
    queue_failed: IntCounterVec = ("agora_queue_jobs_failed_total", "Failed job attempts.", ["kind"]),
    /// Failed attempts scheduled for a retry, by kind.
    queue_retried: IntCounterVec = ("agora_queue_jobs_retried_total", "Failed attempts scheduled for a retry.", ["kind"]),
    /// Jobs moved to the dead letters, by kind.
    queue_dead_lettered: IntCounterVec = ("agora_queue_jobs_dead_lettered_total", "Jobs moved to the dead letters.", ["kind"]),
    /// Job attempt duration by kind and outcome (`completed`, `retry`, `dead`).
    queue_job_duration: HistogramVec = ("agora_queue_job_duration_seconds", "Duration of job attempts by outcome.", ["kind", "outcome"], buckets: JOB_BUCKETS),
    /// Bytes the job queue occupies in the state directory.
    queue_storage: IntGauge = ("agora_queue_storage_bytes", "Bytes the job queue occupies in the state directory.", []),
    /// Emails by template and outcome (`sent`, `failed`, `rejected`).
    emails: IntCounterVec = ("agora_emails_total", "Emails by template and outcome.", ["template", "outcome"]),
    /// SMTP delivery duration by outcome.
    email_send_duration: HistogramVec = ("agora_email_send_duration_seconds", "SMTP delivery duration by outcome.", ["outcome"], buckets: JOB_BUCKETS),
    /// LLM provider calls by provider and outcome (`success`, `error`, `timeout`).
    llm_calls: IntCounterVec = ("agora_llm_calls_total", "LLM provider calls by outcome.", ["provider", "outcome"]),
    /// LLM provider call duration by provider.
    llm_call_duration: HistogramVec = ("agora_llm_call_duration_seconds", "LLM provider call duration.", ["provider"], buckets: JOB_BUCKETS),
    /// LLM tokens by provider and direction (`input`, `output`).
    llm_tokens: IntCounterVec = ("agora_llm_tokens_total", "LLM tokens by direction.", ["provider", "direction"]),
    /// What LLM calls cost, in US dollars, by provider.
    llm_cost: CounterVec = ("agora_llm_cost_usd_total", "What LLM calls cost, in US dollars.", ["provider"]),
    /// Circuit breaker state by provider: 0 closed, 1 open, 2 half-open.
    llm_breaker_state: GaugeVec = ("agora_llm_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", ["provider"]),
    /// Summaries that skipped a provider, by provider and reason (`error`, `timeout`, `breaker_open`).
    summary_fallbacks: IntCounterVec = ("agora_summaries_fallbacks_total", "Summaries that skipped a provider, by reason.", ["provider", "reason"]),
    /// Summary requests by result: `hit` (fresh), `stale` (served while regenerating), `miss` (pending).
    summary_requests: IntCounterVec = ("agora_summaries_requests_total", "Summary requests by result.", ["result"]),
    /// Summaries generated by provider (`openai`, `anthropic`, `extractive`).
    summaries_generated: IntCounterVec = ("agora_summaries_generated_total", "Summaries generated by provider.", ["provider"]),
    /// Bytes available on the file system of the state directory.
    state_dir_fs_avail: IntGauge = ("agora_state_dir_filesystem_avail_bytes", "Bytes available on the file system of the state directory.", []),
    /// Size of the file system of the state directory.
    state_dir_fs_size: IntGauge = ("agora_state_dir_filesystem_size_bytes", "Size of the file system of the state directory.", []),
    /// When the last backup succeeded, seconds since the epoch (0: never).
    backup_last_success: Gauge = ("agora_backup_last_success_timestamp_seconds", "When the last backup succeeded, seconds since the epoch (0: never).", []),
    /// When the last backup verification succeeded, seconds since the epoch (0: never).
    backup_last_verify: Gauge = ("agora_backup_last_verify_success_timestamp_seconds", "When the last backup verification succeeded, seconds since the epoch (0: never).", []),
    /// How long the last successful backup took.
    backup_duration: Gauge = ("agora_backup_last_duration_seconds", "How long the last successful backup took.", []),
    /// Size of the last backup archive.
    backup_size: IntGauge = ("agora_backup_last_size_bytes", "Size of the last backup archive.", []),
    /// Bytes the backup archives occupy.
    backups_storage: IntGauge = ("agora_backups_storage_bytes", "Bytes the backup archives occupy.", []),
    /// Uploads by outcome: `accepted` (queued), `ready`, `failed` (did not process),
    /// `refused_type` (415), `refused_size` (413), `refused_dimensions` (422).
    media_uploads: IntCounterVec = ("agora_media_uploads_total", "Image uploads by outcome.", ["outcome"]),
    /// How long processing one upload took (decode, orient, encode, thumbnails, store), by
    /// outcome (`ready`, `failed`).
    media_processing_duration: HistogramVec = ("agora_media_processing_duration_seconds", "Duration of processing one image upload, by outcome.", ["outcome"], buckets: JOB_BUCKETS),
    /// Bytes of every stored image and thumbnail (files shared by uploads counted once).
    media_stored_bytes: IntGauge = ("agora_media_stored_bytes", "Bytes of the stored images and thumbnails (shared files counted once).", []),
    /// Distinct stored images (each with its thumbnails).
    media_objects: IntGauge = ("agora_media_objects", "Distinct stored images, each with its thumbnails.", []),
    /// Bytes of images served at `/media/…`.
    media_served_bytes: IntCounter = ("agora_media_served_bytes_total", "Bytes of images served at /media.", []),
    /// Inbox items created, by kind (`reply`, `mention`, `message`, `mod_action`).
    inbox_items: IntCounterVec = ("agora_inbox_items_total", "Inbox items created, by kind.", ["kind"]),
    /// Private messages sent.
    messages_sent: IntCounter = ("agora_messages_sent_total", "Private messages sent.", []),
    /// Blocks made by readers, by what was blocked (`user`, `community`).
    blocks: IntCounterVec = ("agora_blocks_total", "Blocks made by readers, by what was blocked.", ["target"]),
    /// Saves and hides made by readers (`saved_post`, `saved_comment`, `hidden_post`).
    saves: IntCounterVec = ("agora_saves_total", "Posts and comments saved or hidden by readers, by mark.", ["mark"]),
    /// Database migrations still to apply at start (0 once the schema is current).
    migrations_pending: IntGauge = ("agora_migrations_pending", "Database migrations still to apply at start.", []),
    /// Database migrations applied by this process.
    migrations_applied: IntCounter = ("agora_migrations_applied_total", "Database migrations applied by this process.", []),
}

impl Metrics {
    /// Creates and registers every metric, process metrics and `agora_build_info`, and creates
    /// the label series dashboards and alerts read at zero, so `rate()` works from the start.
    pub fn new() -> Result<Self, prometheus::Error> {
        let metrics = Self::declare_all(Registry::new())?;
        let build_info = Gauge::with_opts(
            Opts::new(BUILD_INFO, "Version and git revision of the running Agora binary.")
                .const_label("version", env!("CARGO_PKG_VERSION"))
                .const_label("revision", crate::GIT_REVISION),
        )?;
        build_info.set(1.0);
        metrics.registry.register(Box::new(build_info))?;
        metrics.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        metrics.prime_series();
        Ok(metrics)
    }

    fn prime_series(&self) {
        for outcome in ["success", "failure"] {
            self.logins.with_label_values(&[outcome]);
            self.tls_reloads.with_label_values(&[outcome]);
        }
        for outcome in ["success", "invalid", "reuse"] {
            self.token_refreshes.with_label_values(&[outcome]);
        }
        for target in ["post", "comment"] {
            self.votes.with_label_values(&[target]);
        }
        for outcome in ["accepted", "ready", "failed", "refused_type", "refused_size", "refused_dimensions"] {
            self.media_uploads.with_label_values(&[outcome]);
        }
        for outcome in ["ready", "failed"] {
            self.media_processing_duration.with_label_values(&[outcome]);
        }
        for kind in ["reply", "mention", "message", "mod_action"] {
            self.inbox_items.with_label_values(&[kind]);
        }
        for target in ["user", "community"] {
            self.blocks.with_label_values(&[target]);
        }
        for mark in ["saved_post", "saved_comment", "hidden_post"] {
            self.saves.with_label_values(&[mark]);
        }
        for class in ["api", "api_anonymous", "auth", "posts", "uploads", "messages", "summaries"] {
            self.rate_limited.with_label_values(&[class]);
        }
        // The front page's series exists from the start, so dashboards show it before any view.
        self.page_db_queries.with_label_values(&["/"]);
        for (outcome, reason) in [("success", "origin"), ("failure", "token")] {
            self.page_session_refreshes.with_label_values(&[outcome]);
            self.page_csrf_refusals.with_label_values(&[reason]);
        }
        for template in ["welcome", "password_reset", "reply", "mention"] {
            for outcome in ["sent", "failed", "rejected"] {
                self.emails.with_label_values(&[template, outcome]);
            }
        }
        self.email_send_duration.with_label_values(&["sent"]);
        for provider in ["openai", "anthropic"] {
            for outcome in ["success", "error", "timeout"] {
                self.llm_calls.with_label_values(&[provider, outcome]);
            }
            self.llm_call_duration.with_label_values(&[provider]);
            for direction in ["input", "output"] {
                self.llm_tokens.with_label_values(&[provider, direction]);
            }
            self.llm_cost.with_label_values(&[provider]);
            self.llm_breaker_state.with_label_values(&[provider]);
            for reason in ["error", "timeout", "breaker_open"] {
                self.summary_fallbacks.with_label_values(&[provider, reason]);
            }
        }
        for result in ["hit", "stale", "miss"] {
            self.summary_requests.with_label_values(&[result]);
        }
        for provider in ["openai", "anthropic", "extractive"] {
            self.summaries_generated.with_label_values(&[provider]);
        }
    }

    /// Renders the registry in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|err| prometheus::Error::Msg(err.to_string()))
    }
}
