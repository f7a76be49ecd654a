//! Every Prometheus metric Agora exports: names and help text as constants, one registry per app.
//!
//! Names follow the Prometheus conventions (base units, `_total`, `_seconds`, `_bytes`); the HTTP
//! server metrics follow the OpenTelemetry HTTP semantic conventions mapped to Prometheus.

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// HTTP server request duration, by method, matched route template and status code.
pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// HTTP requests being served right now.
pub const HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Connections currently open in a database pool.
pub const DB_POOL_CONNECTIONS: &str = "agora_db_pool_connections";
/// Idle connections in a database pool.
pub const DB_POOL_IDLE: &str = "agora_db_pool_idle_connections";
/// Most connections a database pool will open.
pub const DB_POOL_MAX: &str = "agora_db_pool_max_connections";
/// Tasks waiting for a connection from a database pool.
pub const DB_POOL_WAITING: &str = "agora_db_pool_waiting_requests";
/// Database query duration by query name and server role.
pub const DB_QUERY_DURATION: &str = "agora_db_query_duration_seconds";
/// Failed database queries by query name and server role.
pub const DB_QUERY_ERRORS: &str = "agora_db_query_errors_total";
/// Whether the database answered the last readiness check (1) or not (0).
pub const DB_UP: &str = "agora_db_up";
/// Accounts registered.
pub const REGISTRATIONS: &str = "agora_registrations_total";
/// Sign-in attempts by outcome (`success`, `failure`).
pub const LOGINS: &str = "agora_logins_total";
/// Refresh-token exchanges by outcome (`success`, `invalid`, `reuse`).
pub const TOKEN_REFRESHES: &str = "agora_token_refreshes_total";
/// Posts created.
pub const POSTS_CREATED: &str = "agora_posts_created_total";
/// Comments created.
pub const COMMENTS_CREATED: &str = "agora_comments_created_total";
/// Votes cast (including changes and clears), by target (`post`, `comment`).
pub const VOTES: &str = "agora_votes_total";
/// Requests answered by replaying the stored response of their `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYS: &str = "agora_idempotent_replays_total";
/// Requests refused by a rate limit, by class (`api`, `api_anonymous`, `auth`, `posts`).
pub const RATE_LIMITED: &str = "agora_rate_limited_requests_total";
/// Database units of work one page view made, by page route (constant per page, whatever the
/// thread size).
pub const PAGE_DB_QUERIES: &str = "agora_page_db_queries";
/// Listing reads of the page cache, by cache (`listings`) and result (`hit`, `miss`).
pub const PAGE_CACHE_REQUESTS: &str = "agora_page_cache_requests_total";
/// Transparent refreshes of a browser session's tokens, by outcome (`success`, `failure`).
pub const PAGE_SESSION_REFRESHES: &str = "agora_page_session_refreshes_total";
/// Unsafe page requests refused by the CSRF defences, by reason (`origin`, `token`).
pub const PAGE_CSRF_REFUSALS: &str = "agora_page_csrf_refusals_total";
/// When the HTTPS certificate in use expires (`notAfter`), seconds since the epoch.
pub const TLS_CERTIFICATE_EXPIRY: &str = "agora_tls_certificate_expiry_timestamp_seconds";
/// Certificate reloads (SIGHUP) by outcome (`success`, `failure`).
pub const TLS_RELOADS: &str = "agora_tls_reloads_total";
/// Login sessions neither revoked nor expired (counted at scrape time).
pub const ACTIVE_SESSIONS: &str = "agora_active_sessions";
/// Jobs in the queue by kind and state (`ready`, `delayed`, `leased`, `dead`).
pub const QUEUE_JOBS: &str = "agora_queue_jobs";
/// How long the oldest ready job of a kind has waited for a worker.
pub const QUEUE_OLDEST_READY_AGE: &str = "agora_queue_oldest_ready_age_seconds";
/// Jobs enqueued, by kind.
pub const QUEUE_ENQUEUED: &str = "agora_queue_jobs_enqueued_total";
/// Jobs completed, by kind.
pub const QUEUE_COMPLETED: &str = "agora_queue_jobs_completed_total";
/// Failed job attempts, by kind.
pub const QUEUE_FAILED: &str = "agora_queue_jobs_failed_total";
/// Failed attempts scheduled for a retry, by kind.
pub const QUEUE_RETRIED: &str = "agora_queue_jobs_retried_total";
/// Jobs moved to the dead letters, by kind.
pub const QUEUE_DEAD_LETTERED: &str = "agora_queue_jobs_dead_lettered_total";
/// Job attempt duration by kind and outcome (`completed`, `retry`, `dead`).
pub const QUEUE_JOB_DURATION: &str = "agora_queue_job_duration_seconds";
/// Bytes the job queue occupies in the state directory.
pub const QUEUE_STORAGE: &str = "agora_queue_storage_bytes";
/// Emails by template and outcome (`sent`, `failed`, `rejected`).
pub const EMAILS: &str = "agora_emails_total";
/// SMTP delivery duration by outcome.
pub const EMAIL_SEND_DURATION: &str = "agora_email_send_duration_seconds";
/// LLM provider calls by provider and outcome (`success`, `error`, `timeout`).
pub const LLM_CALLS: &str = "agora_llm_calls_total";
/// LLM provider call duration by provider.
pub const LLM_CALL_DURATION: &str = "agora_llm_call_duration_seconds";
/// LLM tokens by provider and direction (`input`, `output`).
pub const LLM_TOKENS: &str = "agora_llm_tokens_total";
/// What LLM calls cost, in US dollars, by provider.
pub const LLM_COST: &str = "agora_llm_cost_usd_total";
/// Circuit breaker state by provider: 0 closed, 1 open, 2 half-open.
pub const LLM_BREAKER_STATE: &str = "agora_llm_breaker_state";
/// Summaries that skipped a provider, by provider and reason (`error`, `timeout`, `breaker_open`).
pub const SUMMARY_FALLBACKS: &str = "agora_summaries_fallbacks_total";
/// Summary requests by result: `hit` (fresh), `stale` (served while regenerating), `miss` (pending).
pub const SUMMARY_REQUESTS: &str = "agora_summaries_requests_total";
/// Summaries generated by provider (`openai`, `anthropic`, `extractive`).
pub const SUMMARIES_GENERATED: &str = "agora_summaries_generated_total";
/// Bytes available on the file system of the state directory.
pub const STATE_DIR_FS_AVAIL: &str = "agora_state_dir_filesystem_avail_bytes";
/// Size of the file system of the state directory.
pub const STATE_DIR_FS_SIZE: &str = "agora_state_dir_filesystem_size_bytes";
/// When the last backup succeeded, seconds since the epoch (0: never).
pub const BACKUP_LAST_SUCCESS: &str = "agora_backup_last_success_timestamp_seconds";
/// When the last backup verification succeeded, seconds since the epoch (0: never).
pub const BACKUP_LAST_VERIFY: &str = "agora_backup_last_verify_success_timestamp_seconds";
/// How long the last successful backup took.
pub const BACKUP_DURATION: &str = "agora_backup_last_duration_seconds";
/// Size of the last backup archive.
pub const BACKUP_SIZE: &str = "agora_backup_last_size_bytes";
/// Bytes the backup archives occupy.
pub const BACKUPS_STORAGE: &str = "agora_backups_storage_bytes";
/// Database migrations still to apply at start (0 once the schema is current).
pub const MIGRATIONS_PENDING: &str = "agora_migrations_pending";
/// Database migrations applied by this process.
pub const MIGRATIONS_APPLIED: &str = "agora_migrations_applied_total";
/// Constant 1, labelled with the version and git revision of the running binary.
pub const BUILD_INFO: &str = "agora_build_info";

/// Every metric name Agora registers itself (process metrics come from the prometheus crate:
/// `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
/// `process_max_fds`, `process_virtual_memory_bytes`, `process_start_time_seconds`, `process_threads`).
pub const ALL: &[&str] = &[
    HTTP_REQUEST_DURATION,
    HTTP_ACTIVE_REQUESTS,
    DB_POOL_CONNECTIONS,
    DB_POOL_IDLE,
    DB_POOL_MAX,
    DB_POOL_WAITING,
    DB_QUERY_DURATION,
    DB_QUERY_ERRORS,
    DB_UP,
    REGISTRATIONS,
    LOGINS,
    TOKEN_REFRESHES,
    POSTS_CREATED,
    COMMENTS_CREATED,
    VOTES,
    IDEMPOTENT_REPLAYS,
    RATE_LIMITED,
    TLS_CERTIFICATE_EXPIRY,
    TLS_RELOADS,
    ACTIVE_SESSIONS,
    QUEUE_JOBS,
    QUEUE_OLDEST_READY_AGE,
    QUEUE_ENQUEUED,
    QUEUE_COMPLETED,
    QUEUE_FAILED,
    QUEUE_RETRIED,
    QUEUE_DEAD_LETTERED,
    QUEUE_JOB_DURATION,
    QUEUE_STORAGE,
    EMAILS,
    EMAIL_SEND_DURATION,
    LLM_CALLS,
    LLM_CALL_DURATION,
    LLM_TOKENS,
    LLM_COST,
    LLM_BREAKER_STATE,
    SUMMARY_FALLBACKS,
    SUMMARY_REQUESTS,
    SUMMARIES_GENERATED,
    STATE_DIR_FS_AVAIL,
    STATE_DIR_FS_SIZE,
    BACKUP_LAST_SUCCESS,
    BACKUP_LAST_VERIFY,
    BACKUP_DURATION,
    BACKUP_SIZE,
    BACKUPS_STORAGE,
    MIGRATIONS_PENDING,
    MIGRATIONS_APPLIED,
    BUILD_INFO,
];

/// The `http_route` label of every request no route matched, so that scanners cannot create
/// new series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
const JOB_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
const DB_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The metrics of one running app, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// See [`HTTP_REQUEST_DURATION`].
    pub http_request_duration: HistogramVec,
    /// See [`HTTP_ACTIVE_REQUESTS`].
    pub http_active_requests: IntGaugeVec,
    /// See [`DB_POOL_CONNECTIONS`].
    pub db_pool_connections: IntGaugeVec,
    /// See [`DB_POOL_IDLE`].
    pub db_pool_idle: IntGaugeVec,
    /// See [`DB_POOL_MAX`].
    pub db_pool_max: IntGaugeVec,
    /// See [`DB_POOL_WAITING`].
    pub db_pool_waiting: IntGaugeVec,
    /// See [`DB_QUERY_DURATION`].
    pub db_query_duration: HistogramVec,
    /// See [`DB_QUERY_ERRORS`].
    pub db_query_errors: IntCounterVec,
    /// See [`DB_UP`].
    pub db_up: GaugeVec,
    /// See [`REGISTRATIONS`].
    pub registrations: IntCounter,
    /// See [`LOGINS`].
    pub logins: IntCounterVec,
    /// See [`TOKEN_REFRESHES`].
    pub token_refreshes: IntCounterVec,
    /// See [`ACTIVE_SESSIONS`].
    pub active_sessions: IntGauge,
    /// See [`POSTS_CREATED`].
    pub posts_created: IntCounter,
    /// See [`COMMENTS_CREATED`].
    pub comments_created: IntCounter,
    /// See [`VOTES`].
    pub votes: IntCounterVec,
    /// See [`IDEMPOTENT_REPLAYS`].
    pub idempotent_replays: IntCounter,
    /// See [`RATE_LIMITED`].
    pub rate_limited: IntCounterVec,
    /// See [`PAGE_DB_QUERIES`].
    pub page_db_queries: HistogramVec,
    /// See [`PAGE_CACHE_REQUESTS`].
    pub page_cache_requests: IntCounterVec,
    /// See [`PAGE_SESSION_REFRESHES`].
    pub page_session_refreshes: IntCounterVec,
    /// See [`PAGE_CSRF_REFUSALS`].
    pub page_csrf_refusals: IntCounterVec,
    /// See [`TLS_CERTIFICATE_EXPIRY`] (0 while HTTPS is off).
    pub tls_certificate_expiry: Gauge,
    /// See [`TLS_RELOADS`].
    pub tls_reloads: IntCounterVec,
    /// See [`QUEUE_JOBS`].
    pub queue_jobs: IntGaugeVec,
    /// See [`QUEUE_OLDEST_READY_AGE`].
    pub queue_oldest_ready_age: GaugeVec,
    /// See [`QUEUE_ENQUEUED`].
    pub queue_enqueued: IntCounterVec,
    /// See [`QUEUE_COMPLETED`].
    pub queue_completed: IntCounterVec,
    /// See [`QUEUE_FAILED`].
    pub queue_failed: IntCounterVec,
    /// See [`QUEUE_RETRIED`].
    pub queue_retried: IntCounterVec,
    /// See [`QUEUE_DEAD_LETTERED`].
    pub queue_dead_lettered: IntCounterVec,
    /// See [`QUEUE_JOB_DURATION`].
    pub queue_job_duration: HistogramVec,
    /// See [`QUEUE_STORAGE`].
    pub queue_storage: IntGauge,
    /// See [`EMAILS`].
    pub emails: IntCounterVec,
    /// See [`EMAIL_SEND_DURATION`].
    pub email_send_duration: HistogramVec,
    /// See [`LLM_CALLS`].
    pub llm_calls: IntCounterVec,
    /// See [`LLM_CALL_DURATION`].
    pub llm_call_duration: HistogramVec,
    /// See [`LLM_TOKENS`].
    pub llm_tokens: IntCounterVec,
    /// See [`LLM_COST`].
    pub llm_cost: prometheus::CounterVec,
    /// See [`LLM_BREAKER_STATE`].
    pub llm_breaker_state: GaugeVec,
    /// See [`SUMMARY_FALLBACKS`].
    pub summary_fallbacks: IntCounterVec,
    /// See [`SUMMARY_REQUESTS`].
    pub summary_requests: IntCounterVec,
    /// See [`SUMMARIES_GENERATED`].
    pub summaries_generated: IntCounterVec,
    /// See [`STATE_DIR_FS_AVAIL`].
    pub state_dir_fs_avail: IntGauge,
    /// See [`STATE_DIR_FS_SIZE`].
    pub state_dir_fs_size: IntGauge,
    /// See [`BACKUP_LAST_SUCCESS`].
    pub backup_last_success: Gauge,
    /// See [`BACKUP_LAST_VERIFY`].
    pub backup_last_verify: Gauge,
    /// See [`BACKUP_DURATION`].
    pub backup_duration: Gauge,
    /// See [`BACKUP_SIZE`].
    pub backup_size: IntGauge,
    /// See [`BACKUPS_STORAGE`].
    pub backups_storage: IntGauge,
    /// See [`MIGRATIONS_PENDING`].
    pub migrations_pending: IntGauge,
    /// See [`MIGRATIONS_APPLIED`].
    pub migrations_applied: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric, process metrics and `agora_build_info`.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(HTTP_REQUEST_DURATION, "Duration of HTTP server requests.")
                .buckets(HTTP_BUCKETS.to_vec()),
            &["http_request_method", "http_route", "http_response_status_code"],
        )?;
        let http_active_requests = IntGaugeVec::new(
            Opts::new(HTTP_ACTIVE_REQUESTS, "Number of active HTTP server requests."),
            &["http_request_method"],
        )?;
        let pool_gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["role"]);
        let db_pool_connections = pool_gauge(DB_POOL_CONNECTIONS, "Connections open in the database pool.")?;
        let db_pool_idle = pool_gauge(DB_POOL_IDLE, "Idle connections in the database pool.")?;
        let db_pool_max = pool_gauge(DB_POOL_MAX, "Maximum size of the database pool.")?;
        let db_pool_waiting = pool_gauge(DB_POOL_WAITING, "Tasks waiting for a database connection.")?;
        let db_query_duration = HistogramVec::new(
            HistogramOpts::new(DB_QUERY_DURATION, "Duration of database queries by query name.")
                .buckets(DB_BUCKETS.to_vec()),
            &["query", "role"],
        )?;
        let db_query_errors = IntCounterVec::new(
            Opts::new(DB_QUERY_ERRORS, "Failed database queries by query name."),
            &["query", "role"],
        )?;
        let db_up =
            GaugeVec::new(Opts::new(DB_UP, "Whether the database answered the last readiness check."), &["role"])?;
        let registrations = IntCounter::new(REGISTRATIONS, "Accounts registered.")?;
        let logins = IntCounterVec::new(Opts::new(LOGINS, "Sign-in attempts by outcome."), &["outcome"])?;
        let token_refreshes =
            IntCounterVec::new(Opts::new(TOKEN_REFRESHES, "Refresh-token exchanges by outcome."), &["outcome"])?;
        for outcome in ["success", "failure"] {
            logins.with_label_values(&[outcome]);
        }
        for outcome in ["success", "invalid", "reuse"] {
            token_refreshes.with_label_values(&[outcome]);
        }
        let posts_created = IntCounter::new(POSTS_CREATED, "Posts created.")?;
        let comments_created = IntCounter::new(COMMENTS_CREATED, "Comments created.")?;
        let votes = IntCounterVec::new(Opts::new(VOTES, "Votes cast, by target."), &["target"])?;
        for target in ["post", "comment"] {
            votes.with_label_values(&[target]);
        }
        let idempotent_replays =
            IntCounter::new(IDEMPOTENT_REPLAYS, "Requests answered by replaying their Idempotency-Key's response.")?;
        let rate_limited =
            IntCounterVec::new(Opts::new(RATE_LIMITED, "Requests refused by a rate limit, by class."), &["class"])?;
        for class in ["api", "api_anonymous", "auth", "posts", "summaries"] {
            rate_limited.with_label_values(&[class]);
        }
        let page_db_queries = HistogramVec::new(
            HistogramOpts::new(PAGE_DB_QUERIES, "Database units of work per page view, by page route.")
                .buckets(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 50.0]),
            &["page"],
        )?;
        // The front page's series exists from the start, so dashboards show it before any view.
        page_db_queries.with_label_values(&["/"]);
        let page_cache_requests = IntCounterVec::new(
            Opts::new(PAGE_CACHE_REQUESTS, "Listing reads of the page cache, by cache and result."),
            &["cache", "result"],
        )?;
        for result in ["hit", "miss"] {
            page_cache_requests.with_label_values(&["listings", result]);
        }
        let page_session_refreshes = IntCounterVec::new(
            Opts::new(PAGE_SESSION_REFRESHES, "Transparent refreshes of browser sessions, by outcome."),
            &["outcome"],
        )?;
        let page_csrf_refusals = IntCounterVec::new(
            Opts::new(PAGE_CSRF_REFUSALS, "Unsafe page requests refused by the CSRF defences, by reason."),
            &["reason"],
        )?;
        for (outcome, reason) in [("success", "origin"), ("failure", "token")] {
            page_session_refreshes.with_label_values(&[outcome]);
            page_csrf_refusals.with_label_values(&[reason]);
        }
        let tls_certificate_expiry =
            Gauge::new(TLS_CERTIFICATE_EXPIRY, "When the HTTPS certificate in use expires, seconds since the epoch.")?;
        let tls_reloads = IntCounterVec::new(Opts::new(TLS_RELOADS, "Certificate reloads by outcome."), &["outcome"])?;
        for outcome in ["success", "failure"] {
            tls_reloads.with_label_values(&[outcome]);
        }
        let queue_jobs =
            IntGaugeVec::new(Opts::new(QUEUE_JOBS, "Jobs in the queue by kind and state."), &["kind", "state"])?;
        let queue_oldest_ready_age = GaugeVec::new(
            Opts::new(QUEUE_OLDEST_READY_AGE, "How long the oldest ready job has waited for a worker."),
            &["kind"],
        )?;
        let kind_counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["kind"]);
        let queue_enqueued = kind_counter(QUEUE_ENQUEUED, "Jobs enqueued.")?;
        let queue_completed = kind_counter(QUEUE_COMPLETED, "Jobs completed.")?;
        let queue_failed = kind_counter(QUEUE_FAILED, "Failed job attempts.")?;
        let queue_retried = kind_counter(QUEUE_RETRIED, "Failed attempts scheduled for a retry.")?;
        let queue_dead_lettered = kind_counter(QUEUE_DEAD_LETTERED, "Jobs moved to the dead letters.")?;
        let queue_job_duration = HistogramVec::new(
            HistogramOpts::new(QUEUE_JOB_DURATION, "Duration of job attempts by outcome.")
                .buckets(JOB_BUCKETS.to_vec()),
            &["kind", "outcome"],
        )?;
        let queue_storage = IntGauge::new(QUEUE_STORAGE, "Bytes the job queue occupies in the state directory.")?;
        let emails =
            IntCounterVec::new(Opts::new(EMAILS, "Emails by template and outcome."), &["template", "outcome"])?;
        for template in ["welcome", "password_reset", "reply", "mention"] {
            for outcome in ["sent", "failed", "rejected"] {
                emails.with_label_values(&[template, outcome]);
            }
        }
        let email_send_duration = HistogramVec::new(
            HistogramOpts::new(EMAIL_SEND_DURATION, "SMTP delivery duration by outcome.").buckets(JOB_BUCKETS.to_vec()),
            &["outcome"],
        )?;
        email_send_duration.with_label_values(&["sent"]);
        let llm_calls =
            IntCounterVec::new(Opts::new(LLM_CALLS, "LLM provider calls by outcome."), &["provider", "outcome"])?;
        let llm_call_duration = HistogramVec::new(
            HistogramOpts::new(LLM_CALL_DURATION, "LLM provider call duration.").buckets(JOB_BUCKETS.to_vec()),
            &["provider"],
        )?;
        let llm_tokens =
            IntCounterVec::new(Opts::new(LLM_TOKENS, "LLM tokens by direction."), &["provider", "direction"])?;
        let llm_cost =
            prometheus::CounterVec::new(Opts::new(LLM_COST, "What LLM calls cost, in US dollars."), &["provider"])?;
        let llm_breaker_state = GaugeVec::new(
            Opts::new(LLM_BREAKER_STATE, "Circuit breaker state: 0 closed, 1 open, 2 half-open."),
            &["provider"],
        )?;
        let summary_fallbacks = IntCounterVec::new(
            Opts::new(SUMMARY_FALLBACKS, "Summaries that skipped a provider, by reason."),
            &["provider", "reason"],
        )?;
        for provider in ["openai", "anthropic"] {
            for outcome in ["success", "error", "timeout"] {
                llm_calls.with_label_values(&[provider, outcome]);
            }
            llm_call_duration.with_label_values(&[provider]);
            for direction in ["input", "output"] {
                llm_tokens.with_label_values(&[provider, direction]);
            }
            llm_cost.with_label_values(&[provider]);
            llm_breaker_state.with_label_values(&[provider]);
            for reason in ["error", "timeout", "breaker_open"] {
                summary_fallbacks.with_label_values(&[provider, reason]);
            }
        }
        let summary_requests =
            IntCounterVec::new(Opts::new(SUMMARY_REQUESTS, "Summary requests by result."), &["result"])?;
        for result in ["hit", "stale", "miss"] {
            summary_requests.with_label_values(&[result]);
        }
        let summaries_generated =
            IntCounterVec::new(Opts::new(SUMMARIES_GENERATED, "Summaries generated by provider."), &["provider"])?;
        for provider in ["openai", "anthropic", "extractive"] {
            summaries_generated.with_label_values(&[provider]);
        }
        let state_dir_fs_avail =
            IntGauge::new(STATE_DIR_FS_AVAIL, "Bytes available on the file system of the state directory.")?;
        let state_dir_fs_size = IntGauge::new(STATE_DIR_FS_SIZE, "Size of the file system of the state directory.")?;
        let backup_last_success =
            Gauge::new(BACKUP_LAST_SUCCESS, "When the last backup succeeded, seconds since the epoch (0: never).")?;
        let backup_last_verify = Gauge::new(
            BACKUP_LAST_VERIFY,
            "When the last backup verification succeeded, seconds since the epoch (0: never).",
        )?;
        let backup_duration = Gauge::new(BACKUP_DURATION, "How long the last successful backup took.")?;
        let backup_size = IntGauge::new(BACKUP_SIZE, "Size of the last backup archive.")?;
        let backups_storage = IntGauge::new(BACKUPS_STORAGE, "Bytes the backup archives occupy.")?;
        let migrations_pending = IntGauge::new(MIGRATIONS_PENDING, "Database migrations still to apply at start.")?;
        let migrations_applied = IntCounter::new(MIGRATIONS_APPLIED, "Database migrations applied by this process.")?;
        let active_sessions = IntGauge::new(ACTIVE_SESSIONS, "Login sessions neither revoked nor expired.")?;
        let build_info = Gauge::with_opts(
            Opts::new(BUILD_INFO, "Version and git revision of the running Agora binary.")
                .const_label("version", env!("CARGO_PKG_VERSION"))
                .const_label("revision", crate::GIT_REVISION),
        )?;
        build_info.set(1.0);

        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(http_active_requests.clone()))?;
        registry.register(Box::new(db_pool_connections.clone()))?;
        registry.register(Box::new(db_pool_idle.clone()))?;
        registry.register(Box::new(db_pool_max.clone()))?;
        registry.register(Box::new(db_pool_waiting.clone()))?;
        registry.register(Box::new(db_query_duration.clone()))?;
        registry.register(Box::new(db_query_errors.clone()))?;
        registry.register(Box::new(db_up.clone()))?;
        registry.register(Box::new(registrations.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(token_refreshes.clone()))?;
        registry.register(Box::new(active_sessions.clone()))?;
        registry.register(Box::new(posts_created.clone()))?;
        registry.register(Box::new(comments_created.clone()))?;
        registry.register(Box::new(votes.clone()))?;
        registry.register(Box::new(idempotent_replays.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(page_db_queries.clone()))?;
        registry.register(Box::new(page_cache_requests.clone()))?;
        registry.register(Box::new(page_session_refreshes.clone()))?;
        registry.register(Box::new(page_csrf_refusals.clone()))?;
        registry.register(Box::new(tls_certificate_expiry.clone()))?;
        registry.register(Box::new(tls_reloads.clone()))?;
        registry.register(Box::new(queue_jobs.clone()))?;
        registry.register(Box::new(queue_oldest_ready_age.clone()))?;
        registry.register(Box::new(queue_enqueued.clone()))?;
        registry.register(Box::new(queue_completed.clone()))?;
        registry.register(Box::new(queue_failed.clone()))?;
        registry.register(Box::new(queue_retried.clone()))?;
        registry.register(Box::new(queue_dead_lettered.clone()))?;
        registry.register(Box::new(queue_job_duration.clone()))?;
        registry.register(Box::new(queue_storage.clone()))?;
        registry.register(Box::new(emails.clone()))?;
        registry.register(Box::new(email_send_duration.clone()))?;
        registry.register(Box::new(llm_calls.clone()))?;
        registry.register(Box::new(llm_call_duration.clone()))?;
        registry.register(Box::new(llm_tokens.clone()))?;
        registry.register(Box::new(llm_cost.clone()))?;
        registry.register(Box::new(llm_breaker_state.clone()))?;
        registry.register(Box::new(summary_fallbacks.clone()))?;
        registry.register(Box::new(summary_requests.clone()))?;
        registry.register(Box::new(summaries_generated.clone()))?;
        registry.register(Box::new(state_dir_fs_avail.clone()))?;
        registry.register(Box::new(state_dir_fs_size.clone()))?;
        registry.register(Box::new(backup_last_success.clone()))?;
        registry.register(Box::new(backup_last_verify.clone()))?;
        registry.register(Box::new(backup_duration.clone()))?;
        registry.register(Box::new(backup_size.clone()))?;
        registry.register(Box::new(backups_storage.clone()))?;
        registry.register(Box::new(migrations_pending.clone()))?;
        registry.register(Box::new(migrations_applied.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;

        Ok(Self {
            registry,
            http_request_duration,
            http_active_requests,
            db_pool_connections,
            db_pool_idle,
            db_pool_max,
            db_pool_waiting,
            db_query_duration,
            db_query_errors,
            db_up,
            registrations,
            logins,
            token_refreshes,
            active_sessions,
            posts_created,
            comments_created,
            votes,
            idempotent_replays,
            rate_limited,
            page_db_queries,
            page_cache_requests,
            page_session_refreshes,
            page_csrf_refusals,
            tls_certificate_expiry,
            tls_reloads,
            queue_jobs,
            queue_oldest_ready_age,
            queue_enqueued,
            queue_completed,
            queue_failed,
            queue_retried,
            queue_dead_lettered,
            queue_job_duration,
            queue_storage,
            emails,
            email_send_duration,
            llm_calls,
            llm_call_duration,
            llm_tokens,
            llm_cost,
            llm_breaker_state,
            summary_fallbacks,
            summary_requests,
            summaries_generated,
            state_dir_fs_avail,
            state_dir_fs_size,
            backup_last_success,
            backup_last_verify,
            backup_duration,
            backup_size,
            backups_storage,
            migrations_pending,
            migrations_applied,
        })
    }

    /// Renders the registry in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|err| prometheus::Error::Msg(err.to_string()))
    }
}
