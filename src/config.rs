//! The typed configuration tree, how it is loaded and layered, and how it is checked.
//!
//! Layers, lowest first: built-in defaults < the TOML file < the standard `OTEL_*` variables
//! (tracing keys only) < `AGORA_<SECTION>__<KEY>` environment variables. Every problem is
//! reported with where the value came from (file or variable), the key and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where the packaged configuration lives; read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/agora/agora.toml";

/// The reference configuration, compiled in: every key at its built-in default, with the
/// comments that explain it. It is the one source of the defaults (the package installs it as
/// /etc/agora/agora.toml with three packaged settings); a file or variable only overrides what
/// it names.
const REFERENCE: &str = include_str!("../config/agora.toml");

/// The whole configuration of one Agora daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public HTTP listeners and request handling.
    pub server: ServerConfig,
    /// The admin listener that serves `/metrics`.
    pub metrics: MetricsConfig,
    /// Directories Agora owns.
    pub paths: PathsConfig,
    /// The PostgreSQL primary and its connection pool.
    pub database: DatabaseConfig,
    /// Log output.
    pub log: LogConfig,
    /// OpenTelemetry trace export over OTLP/HTTP.
    pub tracing: TracingConfig,
    /// HTTPS on the public listeners.
    pub tls: TlsConfig,
    /// Sign-in and tokens.
    pub auth: AuthConfig,
    /// Content limits.
    pub limits: LimitsConfig,
    /// The in-memory response cache.
    pub cache: CacheConfig,
    /// Request rate limits on the API.
    pub rate_limits: RateLimitConfig,
    /// The durable job queue and its workers.
    pub queue: QueueConfig,
    /// Outgoing email over SMTP.
    pub email: EmailConfig,
    /// AI thread summaries.
    pub summaries: SummariesConfig,
    /// `agora backup` and its retention.
    pub backup: BackupConfig,
    /// Image uploads: limits, processing and storage.
    pub media: MediaConfig,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` or `unix:/path` addresses of the public listeners.
    pub listen: Vec<ListenAddr>,
    /// The URL users reach Agora at.
    pub public_url: String,
    /// Largest request body accepted on JSON endpoints, in bytes.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run after SIGTERM before they are cut.
    pub shutdown_grace_seconds: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How long a client may take to send a request's head before it gets 408 and is cut off
    /// (slow-client protection).
    pub client_request_timeout_ms: u64,
    /// How long a closing connection may linger after its response.
    pub client_disconnect_timeout_ms: u64,
    /// How long an idle keep-alive connection stays open.
    pub keep_alive_seconds: u64,
    /// Most concurrent connections per worker thread; more wait in the kernel's backlog.
    pub max_connections_per_worker: usize,
    /// Connections the kernel queues while all workers are busy.
    pub backlog: u32,
    /// Largest request head (request line plus headers) accepted, in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Origins (`scheme://host[:port]`) whose browser scripts may call the API; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// How long browsers may cache a CORS preflight answer, in seconds.
    pub cors_max_age_seconds: u64,
}

impl ServerConfig {
    /// Whether a browser script from `origin` may call the API.
    pub fn cors_allows(&self, origin: &str) -> bool {
        self.cors_allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` of the admin listener; empty serves `/metrics` on the public listeners.
    pub listen: String,
}

/// `[paths]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// State directory; empty picks `/var/lib/agora` when it is writable, else `./agora-data`.
    pub state_dir: String,
}

impl PathsConfig {
    /// The state directory this configuration resolves to on this machine.
    pub fn resolved_state_dir(&self) -> PathBuf {
        if !self.state_dir.is_empty() {
            return PathBuf::from(&self.state_dir);
        }
        let system = Path::new("/var/lib/agora");
        if is_writable_dir(system) { system.to_path_buf() } else { PathBuf::from("agora-data") }
    }
}

fn is_writable_dir(path: &Path) -> bool {
    path.is_dir() && tempfile_probe(path).is_ok()
}

fn tempfile_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".agora-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// `[database]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL URL of the primary; empty runs a private cluster under the state directory.
    pub url: String,
    /// A file holding the URL (for secrets kept out of the configuration file).
    pub url_file: String,
    /// PostgreSQL URLs of read replicas.
    pub replicas: Vec<String>,
    /// Connections kept by the pool of the primary.
    pub pool_size: u32,
    /// Connections kept by the pool of each replica.
    pub replica_pool_size: u32,
    /// Seconds of replay lag that take a replica out of reads.
    pub max_replica_lag: f64,
    /// Seconds after a user's write during which their reads need a replica that has replayed it.
    pub read_your_writes: f64,
    /// How long a request waits for a pooled connection before failing.
    pub pool_timeout_seconds: u64,
    /// How long opening a new connection may take.
    pub connect_timeout_seconds: u64,
    /// How long `/health/ready` waits for the database to answer.
    pub health_timeout_ms: u64,
    /// Seconds the private cluster may take to accept connections when it starts or restarts.
    pub private_start_timeout: u64,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &mask_url_password(&self.url))
            .field("url_file", &self.url_file)
            .field("replicas", &self.replicas.iter().map(|u| mask_url_password(u)).collect::<Vec<_>>())
            .field("pool_size", &self.pool_size)
            .field("replica_pool_size", &self.replica_pool_size)
            .field("max_replica_lag", &self.max_replica_lag)
            .field("read_your_writes", &self.read_your_writes)
            .field("pool_timeout_seconds", &self.pool_timeout_seconds)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("health_timeout_ms", &self.health_timeout_ms)
            .field("private_start_timeout", &self.private_start_timeout)
            .finish()
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json`, `text`, or `auto` (text when stdout is a terminal, JSON otherwise).
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,agora=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `[tracing]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Export spans over OTLP/HTTP.
    pub enabled: bool,
    /// The full OTLP/HTTP traces URL, used verbatim.
    pub endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub protocol: OtlpProtocol,
    /// Fraction of new traces sampled, 0.0 to 1.0; a sampled parent is always followed.
    pub sample_ratio: f64,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

/// Wire encoding of OTLP over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// Protocol buffers (the OTLP default).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// JSON.
    #[serde(rename = "http/json")]
    HttpJson,
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The Ed25519 secret (32 raw bytes) that signs access tokens; empty means
    /// `<state_dir>/keys/access-token.ed25519`, created on first start.
    pub signing_key_file: String,
    /// Write password-reset links to the log at INFO, for development before email delivery
    /// is configured. Never enable this in production.
    pub log_reset_links: bool,
}

impl AuthConfig {
    /// The signing key's path for a given state directory.
    pub fn signing_key_path(&self, state_dir: &Path) -> PathBuf {
        if self.signing_key_file.is_empty() {
            state_dir.join("keys").join("access-token.ed25519")
        } else {
            PathBuf::from(&self.signing_key_file)
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Deepest reply level allowed (top-level comments are level 0); deeper replies get 422
    /// `max_depth_exceeded`.
    pub max_comment_depth: i32,
}

/// `[cache]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory all response caches may hold together, in MiB (entries weighed in bytes).
    pub max_memory_mib: u64,
    /// How long a cached value lives at most; writes invalidate it at once anyway.
    pub ttl_seconds: u64,
    /// The same for public profiles.
    pub profile_ttl_seconds: u64,
    /// How long a `hot` or `active` listing lives: their order drifts with time, not writes.
    pub ranked_ttl_seconds: u64,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine.
    None,
}

impl SmtpSecurity {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }
}

/// `[email]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server; empty switches email off.
    pub smtp_host: String,
    /// The SMTP port.
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    pub smtp_security: SmtpSecurity,
    /// SMTP user name; empty sends without authentication.
    pub smtp_username: String,
    /// SMTP password.
    pub smtp_password: Secret,
    /// Read the SMTP password from this file instead.
    pub smtp_password_file: String,
    /// Extra CA certificate (PEM) trusted for the SMTP server, e.g. a private CA.
    pub ca_file: String,
    /// The sender, e.g. `Agora <agora@example.org>`.
    pub from: String,
    /// How long connecting and each SMTP command may take.
    pub timeout_seconds: u64,
}

impl EmailConfig {
    /// Whether email is configured at all.
    pub fn enabled(&self) -> bool {
        !self.smtp_host.is_empty()
    }

    /// The SMTP password, from the file when one is named.
    pub fn password(&self) -> std::io::Result<Secret> {
        secret(&self.smtp_password, &self.smtp_password_file)
    }
}

/// `[backup]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Where archives go; empty means `<state_dir>/backups`.
    pub dir: String,
    /// Keep the newest archive of each of this many most recent days.
    pub keep_daily: usize,
    /// Keep the newest archive of each of this many most recent weeks.
    pub keep_weekly: usize,
    /// Continuous WAL archiving of the private cluster with pgBackRest (point-in-time restore).
    pub pitr: bool,
    /// Days back that a point-in-time restore can reach.
    pub pitr_days: u32,
    /// The longest time, in seconds, a written WAL segment waits before it is archived.
    pub archive_timeout_seconds: u64,
    /// For a system PostgreSQL (`database.url`): where `agora dr enable` keeps pgBackRest's
    /// configuration, log and repository; empty means `/var/lib/agora-pitr`.
    pub pitr_dir: String,
}

impl BackupConfig {
    /// The backup directory.
    pub fn resolved_dir(&self, state_dir: &Path) -> PathBuf {
        if self.dir.is_empty() { state_dir.join("backups") } else { PathBuf::from(&self.dir) }
    }

    /// The continuous archive's directory for a system PostgreSQL.
    pub fn resolved_pitr_dir(&self) -> PathBuf {
        if self.pitr_dir.is_empty() { PathBuf::from("/var/lib/agora-pitr") } else { PathBuf::from(&self.pitr_dir) }
    }
}

/// `[media]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// `local` (files under `<state_dir>/media`) or `s3`.
    pub storage: MediaStorage,
    /// The S3-compatible endpoint, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    /// The bucket.
    pub s3_bucket: String,
    /// The region (any value for stores that ignore it).
    pub s3_region: String,
    /// Path-style addressing (`endpoint/bucket/key`), which MinIO, Garage and Ceph expect;
    /// off means virtual-hosted style (`bucket.endpoint/key`).
    pub s3_path_style: bool,
    /// Access key id.
    pub s3_access_key_id: Secret,
    /// Read the access key id from this file instead.
    pub s3_access_key_id_file: String,
    /// Secret access key.
    pub s3_secret_access_key: Secret,
    /// Read the secret access key from this file instead.
    pub s3_secret_access_key_file: String,
    /// Largest upload accepted, in bytes (413 beyond).
    pub max_upload_bytes: u64,
    /// Most pixels (width × height) an image may declare (422 `image_too_large` beyond).
    pub max_pixels: u64,
    /// Longest side an image may declare.
    pub max_dimension: u32,
    /// Lossy WebP quality, 1–100.
    pub webp_quality: u8,
    /// Most frames an animation keeps (beyond that it is refused).
    pub max_animation_frames: u32,
    /// Most decoded bytes an animation may take (frames × width × height × 4).
    pub max_animation_bytes: u64,
    /// Uploads attached to no post and no avatar are deleted after this many hours.
    pub orphan_grace_hours: u64,
}

/// Where uploaded images are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaStorage {
    /// Files under `<state_dir>/media`.
    Local,
    /// An S3-compatible object store.
    S3,
}

impl MediaConfig {
    /// The S3 access key id, from the file when one is named.
    pub fn access_key_id(&self) -> std::io::Result<Secret> {
        secret(&self.s3_access_key_id, &self.s3_access_key_id_file)
    }

    /// The S3 secret access key, from the file when one is named.
    pub fn secret_access_key(&self) -> std::io::Result<Secret> {
        secret(&self.s3_secret_access_key, &self.s3_secret_access_key_file)
    }
}

/// `[summaries]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummariesConfig {
    /// Offer summaries at all.
    pub enabled: bool,
    /// New summaries one user (or one anonymous address) may request per UTC day.
    pub daily_limit_per_user: u32,
    /// A summary older than this is regenerated when its thread changed at all.
    pub cache_hours: u64,
    /// Comments (the highest rated) a summary is made from.
    pub max_comments: u32,
    /// The post page offers the summary box on threads with at least this many comments.
    pub page_min_comments: u32,
    /// A summary is regenerated at once when this many comments were added or removed since,
    /// or when the post was edited.
    pub regenerate_after_comments: u32,
    /// Sentences of the built-in extractive summary.
    pub extractive_sentences: u32,
    /// First provider tried: `openai`, `anthropic`, or empty for the built-in summarizer only.
    pub primary: String,
    /// Provider tried when the primary fails or its breaker is open; empty for none.
    pub secondary: String,
    /// Longest a provider call may take.
    pub call_timeout_seconds: u64,
    /// Most tokens a provider may write.
    pub max_output_tokens: u32,
    /// Share of failed calls in the window that opens a provider's breaker.
    pub breaker_failure_ratio: f64,
    /// The window the failure share is measured over, in seconds.
    pub breaker_window_seconds: u64,
    /// Fewest calls in the window before the breaker judges.
    pub breaker_min_calls: u32,
    /// How long an open breaker refuses calls before one probe, in seconds.
    pub breaker_open_seconds: u64,
    /// Base URL of an OpenAI-compatible chat completions API (…/v1).
    pub openai_base_url: String,
    /// Its API key (empty for local servers that need none).
    pub openai_api_key: Secret,
    /// Read the key from this file instead.
    pub openai_api_key_file: String,
    /// The model.
    pub openai_model: String,
    /// Price of a million input tokens, in US dollars.
    pub openai_input_usd_per_mtok: f64,
    /// Price of a million output tokens, in US dollars.
    pub openai_output_usd_per_mtok: f64,
    /// Base URL of the Anthropic API.
    pub anthropic_base_url: String,
    /// Its API key.
    pub anthropic_api_key: Secret,
    /// Read the key from this file instead.
    pub anthropic_api_key_file: String,
    /// The model.
    pub anthropic_model: String,
    /// Price of a million input tokens, in US dollars.
    pub anthropic_input_usd_per_mtok: f64,
    /// Price of a million output tokens, in US dollars.
    pub anthropic_output_usd_per_mtok: f64,
}

/// Reads a secret from `file` when it is named, else returns `inline`.
pub fn secret(inline: &Secret, file: &str) -> std::io::Result<Secret> {
    if file.is_empty() { Ok(inline.clone()) } else { Ok(Secret(std::fs::read_to_string(file)?.trim_end().to_owned())) }
}

/// A password or API key: read from the configuration like a string, but `Debug` and
/// `Display` print `****`, so no log line or `{:?}` of the configuration shows it. Only
/// [`Secret::expose`] gives the value, at the one place that sends it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the code that hands it to a server.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The masked form shown in dumps: `****` when set, empty otherwise.
    pub fn masked(&self) -> Self {
        if self.0.is_empty() { Self::default() } else { Self("****".to_owned()) }
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"****\"" })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "" } else { "****" })
    }
}

/// `[queue]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Jobs run at once, all kinds together.
    pub workers: usize,
    /// How long a worker may hold a job before it is handed out again (and the attempt is
    /// cut off as timed out).
    pub visibility_timeout_seconds: u64,
    /// How often idle workers look for delayed jobs that became ready.
    pub poll_interval_ms: u64,
    /// The first retry waits about this long; each further retry doubles it.
    pub backoff_base_ms: u64,
    /// Longest wait between retries.
    pub backoff_max_seconds: u64,
    /// Summary jobs run at once.
    pub summary_concurrency: usize,
    /// Attempts a summary job gets before it is dead-lettered.
    pub summary_max_attempts: u32,
    /// Most memory the queue's page cache may use, in MiB.
    pub cache_mib: u64,
    /// Email jobs run at once.
    pub email_concurrency: usize,
    /// Attempts an email job gets before it is dead-lettered.
    pub email_max_attempts: u32,
    /// Image uploads processed at once (each holds a decoded image in memory).
    pub image_concurrency: usize,
    /// Attempts an image job gets (a file that does not decode fails at once).
    pub image_max_attempts: u32,
}

/// `[rate_limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Apply the limits at all.
    pub enabled: bool,
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<String>,
    /// API requests per minute for each anonymous client address.
    pub anonymous_per_minute: u32,
    /// API requests per minute for each signed-in user.
    pub signed_in_per_minute: u32,
    /// Requests to `/api/v1/auth/*` per minute for each client address.
    pub auth_per_minute: u32,
    /// New posts per hour for each user.
    pub posts_per_hour: u32,
    /// Image uploads per hour for each user.
    pub uploads_per_hour: u32,
    /// Private messages per hour for each user.
    pub messages_per_hour: u32,
    /// Most clients tracked at once (about 380 bytes each); beyond that the least recently
    /// seen are forgotten first, which bounds memory under a flood of distinct addresses.
    pub max_tracked_clients: u64,
}

impl RateLimitConfig {
    /// Quota of anonymous API calls.
    pub fn anonymous(&self) -> Quota {
        quota(self.anonymous_per_minute, 60)
    }
    /// Quota of signed-in API calls.
    pub fn signed_in(&self) -> Quota {
        quota(self.signed_in_per_minute, 60)
    }
    /// Quota of auth calls.
    pub fn auth(&self) -> Quota {
        quota(self.auth_per_minute, 60)
    }
    /// Quota of new posts.
    pub fn posts(&self) -> Quota {
        quota(self.posts_per_hour, 3600)
    }
    /// Quota of image uploads.
    pub fn uploads(&self) -> Quota {
        quota(self.uploads_per_hour, 3600)
    }
    /// Quota of private messages.
    pub fn messages(&self) -> Quota {
        quota(self.messages_per_hour, 3600)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|entry| cidr_contains(entry, ip))
    }
}

/// One rate-limit allowance: `requests` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per period (also the largest burst).
    pub requests: u32,
    /// The period.
    pub period: std::time::Duration,
}

fn quota(requests: u32, seconds: u64) -> Quota {
    Quota { requests, period: std::time::Duration::from_secs(seconds) }
}

/// Whether `entry` (an address, or `address/prefix`) covers `ip`.
fn cidr_contains(entry: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (address, prefix) = entry.split_once('/').map_or((entry, None), |(a, p)| (a, p.parse::<u32>().ok()));
    let Ok(network) = address.parse::<IpAddr>() else { return false };
    let (net, addr, bits) = match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(a)) << 96, 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
        _ => return false,
    };
    let prefix = prefix.unwrap_or(bits).min(bits);
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    net & mask == addr & mask
}

/// `[tls]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain for HTTPS.
    pub cert: String,
    /// PEM private key for HTTPS.
    pub key: String,
    /// Generate a self-signed certificate into the state directory.
    pub self_signed: bool,
    /// A plain-HTTP listener that redirects to HTTPS.
    pub redirect_listen: String,
    /// `max-age` of the Strict-Transport-Security header on HTTPS responses; 0 leaves it out.
    pub hsts_max_age_seconds: u64,
}

impl TlsConfig {
    /// Whether the public listeners speak HTTPS.
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || self.self_signed
    }
}

/// One listener address: TCP `host:port` or a Unix socket `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `host:port`, where host is an IP address (IPv6 in brackets) or a host name.
    Tcp(String),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("`{text}`: a unix socket path must be absolute"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        validate_host_port(text)?;
        Ok(Self::Tcp(text.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => f.write_str(addr),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `text` is `*` or a browser origin: `http(s)://host[:port]` with nothing after it.
fn is_origin(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some(rest) = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")) else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'));
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Checks `host:port` where host is an IP address or a DNS name and port is 0..=65535.
fn validate_host_port(text: &str) -> Result<(), String> {
    if text.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = || format!("`{text}` is not a `host:port` address (e.g. `127.0.0.1:8080`)");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with(['-', '.']);
    if host_ok { Ok(()) } else { Err(bad()) }
}

/// Replaces the password of a URL such as `postgres://user:secret@host/db` with `****`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_owned(),
    }
}

/// One problem with the configuration: where it came from, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file or environment variable the value came from.
    pub source: String,
    /// The dotted key, e.g. `database.pool_size`.
    pub key: String,
    /// What is wrong, in plain words.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: key `{}`: {}", self.source, self.key, self.reason)
        }
    }
}

/// Everything wrong with a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// The individual problems.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    fn one(source: impl Into<String>, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { problems: vec![ConfigProblem { source: source.into(), key: key.into(), reason: reason.into() }] }
    }
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Environment variables that overrode keys, by dotted key.
    pub env_overrides: BTreeMap<String, String>,
}

impl Config {
    /// Loads the configuration: `explicit` path (must exist), else the packaged path when it
    /// exists, else built-in defaults; then environment overrides; then validation.
    pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(explicit, Path::new(DEFAULT_CONFIG_PATH), &env)
    }

    /// [`Config::load`] with the fallback path and the environment given, for tests.
    pub fn load_from(
        explicit: Option<&Path>,
        fallback: &Path,
        env: &[(String, String)],
    ) -> Result<Loaded, ConfigError> {
        let file = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None if fallback.exists() => Some(fallback.to_path_buf()),
            None => None,
        };
        let (source_name, file_table) = match &file {
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path)
                    .map_err(|err| ConfigError::one(&name, "", format!("cannot read the file: {err}")))?;
                let table = parse_toml(&name, &text)?;
                (name, table)
            }
            None => ("built-in defaults".to_owned(), toml::Table::new()),
        };
        let mut table = defaults_table()?;
        merge(&mut table, file_table);
        let env_overrides = apply_env(&mut table, env)?;
        let config = deserialize(&source_name, &env_overrides, table)?;
        config.validate(&source_name, &env_overrides)?;
        Ok(Loaded { config, file, env_overrides })
    }

    /// Parses TOML text as a whole configuration without environment overrides.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Config, ConfigError> {
        let mut table = defaults_table()?;
        merge(&mut table, parse_toml(source_name, text)?);
        let config = deserialize(source_name, &BTreeMap::new(), table)?;
        config.validate(source_name, &BTreeMap::new())?;
        Ok(config)
    }

    /// The built-in defaults: the compiled-in reference configuration.
    pub fn defaults() -> Result<Config, ConfigError> {
        deserialize("built-in defaults", &BTreeMap::new(), defaults_table()?)
    }

    /// The database URL, read from `database.url_file` when that is set.
    pub fn database_url(&self) -> Result<String, ConfigError> {
        if self.database.url_file.is_empty() {
            return Ok(self.database.url.clone());
        }
        std::fs::read_to_string(&self.database.url_file).map(|text| text.trim().to_owned()).map_err(|err| {
            ConfigError::one(&self.database.url_file, "database.url_file", format!("cannot read: {err}"))
        })
    }

    /// The effective configuration as TOML with secrets masked.
    pub fn masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = mask_url_password(&shown.database.url);
        shown.database.replicas = shown.database.replicas.iter().map(|u| mask_url_password(u)).collect();
        for secret in [
            &mut shown.email.smtp_password,
            &mut shown.summaries.openai_api_key,
            &mut shown.summaries.anthropic_api_key,
        ] {
            *secret = secret.masked();
        }
        toml::to_string(&shown).unwrap_or_else(|err| format!("# cannot render the configuration: {err}\n"))
    }

    fn validate(&self, source: &str, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut check = |key: &str, ok: bool, reason: String| {
            if !ok {
                let source = env.get(key).map_or_else(|| source.to_owned(), |var| format!("environment {var}"));
                problems.push(ConfigProblem { source, key: key.to_owned(), reason });
            }
        };
        check("server.listen", !self.server.listen.is_empty(), "at least one listener is needed".into());
        check(
            "server.public_url",
            self.server.public_url.starts_with("http://") || self.server.public_url.starts_with("https://"),
            format!("`{}` must be an http:// or https:// URL", self.server.public_url),
        );
        check("server.max_body_bytes", self.server.max_body_bytes > 0, "must be greater than 0".into());
        check(
            "cache.max_memory_mib",
            self.cache.max_memory_mib <= 65_536,
            "must be between 0 (no response cache) and 65536".into(),
        );
        check("cache.ttl_seconds", self.cache.ttl_seconds >= 1, "must be at least 1".into());
        check("cache.profile_ttl_seconds", self.cache.profile_ttl_seconds >= 1, "must be at least 1".into());
        check(
            "cache.ranked_ttl_seconds",
            (1..=self.cache.ttl_seconds.max(1)).contains(&self.cache.ranked_ttl_seconds),
            "must be at least 1 and at most cache.ttl_seconds".into(),
        );
        check(
            "server.client_request_timeout_ms",
            self.server.client_request_timeout_ms >= 100,
            "must be at least 100 (0 would let slow clients hold connections forever)".into(),
        );
        check(
            "server.max_connections_per_worker",
            self.server.max_connections_per_worker >= 1,
            "must be at least 1".into(),
        );
        check(
            "server.max_header_bytes",
            (1024..=131_072).contains(&self.server.max_header_bytes),
            "must be between 1024 and 131072 (the HTTP parser's own ceiling)".into(),
        );
        for origin in &self.server.cors_allowed_origins {
            check(
                "server.cors_allowed_origins",
                is_origin(origin),
                format!("`{origin}` is not an origin such as `https://app.example` (scheme and host, no path) or `*`"),
            );
        }
        let metrics_ok = self.metrics.listen.is_empty() || validate_host_port(&self.metrics.listen).is_ok();
        check(
            "metrics.listen",
            metrics_ok,
            format!("`{}` is not a `host:port` address (or empty)", self.metrics.listen),
        );
        for (key, url) in std::iter::once(("database.url", &self.database.url))
            .chain(self.database.replicas.iter().map(|u| ("database.replicas", u)))
        {
            let ok = url.is_empty() || url.starts_with("postgres://") || url.starts_with("postgresql://");
            check(key, ok, format!("`{}` must be a postgres:// URL", mask_url_password(url)));
        }
        check(
            "database.url_file",
            self.database.url_file.is_empty() || self.database.url.is_empty(),
            "set either database.url or database.url_file, not both".into(),
        );
        check("database.pool_size", self.database.pool_size >= 1, "must be at least 1".into());
        let database = &self.database;
        check("database.replica_pool_size", database.replica_pool_size >= 1, "must be at least 1".into());
        check(
            "database.max_replica_lag",
            database.max_replica_lag.is_finite() && (0.5..=3600.0).contains(&database.max_replica_lag),
            "must be between 0.5 and 3600 seconds".into(),
        );
        check(
            "database.read_your_writes",
            database.read_your_writes.is_finite()
                && database.read_your_writes >= database.max_replica_lag
                && database.read_your_writes <= 3600.0,
            "must be at least database.max_replica_lag (and at most 3600 seconds): once Agora stops \
             tracking a user's write, every replica that serves reads must already hold it"
                .into(),
        );
        let limits = &self.rate_limits;
        for (key, value) in [
            ("rate_limits.anonymous_per_minute", limits.anonymous_per_minute),
            ("rate_limits.signed_in_per_minute", limits.signed_in_per_minute),
            ("rate_limits.auth_per_minute", limits.auth_per_minute),
            ("rate_limits.posts_per_hour", limits.posts_per_hour),
            ("rate_limits.uploads_per_hour", limits.uploads_per_hour),
            ("rate_limits.messages_per_hour", limits.messages_per_hour),
        ] {
            check(key, value >= 1, "must be at least 1 (set rate_limits.enabled = false to turn limits off)".into());
        }
        check("rate_limits.max_tracked_clients", limits.max_tracked_clients >= 1000, "must be at least 1000".into());
        for proxy in &limits.trusted_proxies {
            let (address, prefix) = proxy.split_once('/').map_or((proxy.as_str(), None), |(a, p)| (a, Some(p)));
            let ok = address.parse::<std::net::IpAddr>().is_ok()
                && prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= 128));
            check("rate_limits.trusted_proxies", ok, format!("`{proxy}` is not an IP address or CIDR range"));
        }
        check(
            "limits.max_comment_depth",
            (1..=1000).contains(&self.limits.max_comment_depth),
            "must be between 1 and 1000".into(),
        );
        let email = &self.email;
        check(
            "email.smtp_host",
            email.smtp_host.is_empty()
                || email
                    .smtp_host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']')),
            format!("`{}` is not a host name or IP address", email.smtp_host),
        );
        check(
            "email.from",
            email.from.parse::<lettre::message::Mailbox>().is_ok(),
            format!("`{}` is not a sender such as `Agora <agora@example.org>`", email.from),
        );
        check(
            "email.smtp_password_file",
            email.smtp_password_file.is_empty() || email.smtp_password.is_empty(),
            "set either email.smtp_password or email.smtp_password_file, not both".into(),
        );
        check("email.timeout_seconds", email.timeout_seconds >= 1, "must be at least 1".into());
        let summaries = &self.summaries;
        for (key, value) in [("summaries.primary", &summaries.primary), ("summaries.secondary", &summaries.secondary)] {
            check(
                key,
                matches!(value.as_str(), "" | "openai" | "anthropic"),
                format!("`{value}` is not a provider: `openai`, `anthropic` or empty"),
            );
        }
        check(
            "summaries.secondary",
            summaries.secondary.is_empty() || summaries.secondary != summaries.primary,
            "must differ from summaries.primary".into(),
        );
        let uses = |name: &str| summaries.primary == name || summaries.secondary == name;
        check(
            "summaries.anthropic_api_key",
            !uses("anthropic")
                || !summaries.anthropic_api_key.is_empty()
                || !summaries.anthropic_api_key_file.is_empty(),
            "the anthropic provider needs an API key (or anthropic_api_key_file)".into(),
        );
        for (key, url, name) in [
            ("summaries.openai_base_url", &summaries.openai_base_url, "openai"),
            ("summaries.anthropic_base_url", &summaries.anthropic_base_url, "anthropic"),
        ] {
            check(
                key,
                !uses(name) || url.starts_with("http://") || url.starts_with("https://"),
                format!("`{url}` must be an http:// or https:// URL"),
            );
        }
        check(
            "summaries.breaker_failure_ratio",
            summaries.breaker_failure_ratio > 0.0 && summaries.breaker_failure_ratio <= 1.0,
            "must be above 0.0 and at most 1.0".into(),
        );
        check("summaries.call_timeout_seconds", summaries.call_timeout_seconds >= 1, "must be at least 1".into());
        check(
            "summaries.max_comments",
            (1..=200).contains(&summaries.max_comments),
            "must be between 1 and 200".into(),
        );
        check("summaries.daily_limit_per_user", summaries.daily_limit_per_user >= 1, "must be at least 1".into());
        let queue = &self.queue;
        check("queue.workers", queue.workers >= 1, "must be at least 1".into());
        check("queue.visibility_timeout_seconds", queue.visibility_timeout_seconds >= 1, "must be at least 1".into());
        check("queue.poll_interval_ms", queue.poll_interval_ms >= 10, "must be at least 10".into());
        check("queue.cache_mib", queue.cache_mib >= 8, "must be at least 8".into());
        for (key, value) in [
            ("queue.summary_concurrency", queue.summary_concurrency),
            ("queue.email_concurrency", queue.email_concurrency),
            ("queue.image_concurrency", queue.image_concurrency),
        ] {
            check(key, value >= 1, "must be at least 1".into());
        }
        for (key, value) in [
            ("queue.summary_max_attempts", queue.summary_max_attempts),
            ("queue.email_max_attempts", queue.email_max_attempts),
            ("queue.image_max_attempts", queue.image_max_attempts),
        ] {
            check(key, (1..=100).contains(&value), "must be between 1 and 100".into());
        }
        check("backup.pitr_days", (1..=365).contains(&self.backup.pitr_days), "must be between 1 and 365".into());
        let media = &self.media;
        check("media.max_upload_bytes", media.max_upload_bytes >= 1024, "must be at least 1024".into());
        check("media.max_pixels", media.max_pixels >= 1, "must be at least 1".into());
        check("media.max_dimension", media.max_dimension >= 16, "must be at least 16".into());
        check("media.webp_quality", (1..=100).contains(&media.webp_quality), "must be between 1 and 100".into());
        check("media.max_animation_frames", media.max_animation_frames >= 1, "must be at least 1".into());
        check("media.orphan_grace_hours", media.orphan_grace_hours >= 1, "must be at least 1".into());
        if media.storage == MediaStorage::S3 {
            check(
                "media.s3_endpoint",
                media.s3_endpoint.starts_with("http://") || media.s3_endpoint.starts_with("https://"),
                "media.storage = \"s3\" needs an http:// or https:// endpoint".into(),
            );
            check("media.s3_bucket", !media.s3_bucket.is_empty(), "media.storage = \"s3\" needs a bucket".into());
            for (key, inline, file) in [
                ("media.s3_access_key_id", &media.s3_access_key_id, &media.s3_access_key_id_file),
                ("media.s3_secret_access_key", &media.s3_secret_access_key, &media.s3_secret_access_key_file),
            ] {
                check(key, inline.is_empty() != file.is_empty(), "set either the key or its _file (not both)".into());
            }
        }
        check(
            "backup.archive_timeout_seconds",
            (5..=3600).contains(&self.backup.archive_timeout_seconds),
            "must be between 5 and 3600 seconds".into(),
        );
        check("database.health_timeout_ms", self.database.health_timeout_ms >= 1, "must be at least 1".into());
        check(
            "database.private_start_timeout",
            (1..=86_400).contains(&self.database.private_start_timeout),
            "must be between 1 and 86400 seconds".into(),
        );
        check(
            "log.level",
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            format!("`{}` is not a tracing filter (e.g. `info` or `info,agora=debug`)", self.log.level),
        );
        check(
            "tracing.sample_ratio",
            (0.0..=1.0).contains(&self.tracing.sample_ratio),
            "must be between 0.0 and 1.0".into(),
        );
        check(
            "tracing.endpoint",
            !self.tracing.enabled
                || self.tracing.endpoint.starts_with("http://")
                || self.tracing.endpoint.starts_with("https://"),
            "must be an http:// or https:// URL when tracing is enabled".into(),
        );
        check(
            "tls.key",
            self.tls.cert.is_empty() == self.tls.key.is_empty(),
            "set tls.cert and tls.key together".into(),
        );
        check(
            "tls.self_signed",
            !self.tls.self_signed || self.tls.cert.is_empty(),
            "use either tls.cert/tls.key or tls.self_signed, not both".into(),
        );
        check(
            "tls.redirect_listen",
            self.tls.redirect_listen.is_empty()
                || (self.tls.enabled() && validate_host_port(&self.tls.redirect_listen).is_ok()),
            format!(
                "`{}` must be a host:port, and HTTPS must be on (tls.cert or tls.self_signed)",
                self.tls.redirect_listen
            ),
        );
        if problems.is_empty() { Ok(()) } else { Err(ConfigError { problems }) }
    }
}

/// The reference configuration as a table: the base every file and variable is laid over.
fn defaults_table() -> Result<toml::Table, ConfigError> {
    parse_toml("built-in defaults", REFERENCE)
}

/// Lays `over` onto `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn parse_toml(source_name: &str, text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|err| {
        let position = err.span().map(|span| line_col(text, span.start)).unwrap_or_default();
        ConfigError::one(source_name, "", format!("not valid TOML{position}: {}", err.message()))
    })
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(" at line {line}, column {col}")
}

fn deserialize(source_name: &str, env: &BTreeMap<String, String>, table: toml::Table) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
        let key = err.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let source = env.get(&key).map_or_else(|| source_name.to_owned(), |var| format!("environment {var}"));
        let reason = err.inner().message().to_owned();
        ConfigError::one(source, key, reason)
    })
}

/// Applies `AGORA_<SECTION>__<KEY>` variables onto the table, typed by the defaults, and
/// returns which keys they set. Variables without `__` are not configuration.
fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<BTreeMap<String, String>, ConfigError> {
    let defaults = defaults_table()?;
    let mut overrides = BTreeMap::new();
    let mut problems = Vec::new();

    for (name, key, raw) in otel_env(env).into_iter().chain(agora_env(env)) {
        let Some((section, field)) = key.split_once('.') else {
            continue;
        };
        let default_value = defaults.get(section).and_then(|s| s.get(field));
        let Some(default_value) = default_value else {
            problems.push(ConfigProblem {
                source: format!("environment {name}"),
                key: key.clone(),
                reason: "no such configuration key".into(),
            });
            continue;
        };
        match typed_env_value(default_value, &raw) {
            Ok(value) => {
                let section_table =
                    table.entry(section.to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(section_table) = section_table {
                    section_table.insert(field.to_owned(), value);
                    overrides.insert(key, name);
                } else {
                    problems.push(ConfigProblem {
                        source: "configuration file".into(),
                        key: section.to_owned(),
                        reason: "must be a table".into(),
                    });
                }
            }
            Err(reason) => problems.push(ConfigProblem { source: format!("environment {name}"), key, reason }),
        }
    }
    if problems.is_empty() { Ok(overrides) } else { Err(ConfigError { problems }) }
}

/// `(variable, dotted key, value)` for every `AGORA_SECTION__KEY` variable.
fn agora_env(env: &[(String, String)]) -> Vec<(String, String, String)> {
    env.iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("AGORA_")?;
            let (section, key) = rest.split_once("__")?;
            Some((name.clone(), format!("{}.{}", section.to_lowercase(), key.to_lowercase()), value.clone()))
        })
        .collect()
}

/// Maps the OpenTelemetry SDK's standard variables onto the `[tracing]` keys.
fn otel_env(env: &[(String, String)]) -> Vec<(String, String, String)> {
    let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_owned());
    let mut out = Vec::new();
    let mut push = |name: &str, key: &str, value: String| out.push((name.to_owned(), key.to_owned(), value));

    let traces_endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let base_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
    if let Some(endpoint) = traces_endpoint.clone().filter(|e| !e.is_empty()) {
        push("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tracing.endpoint", endpoint);
        push("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "tracing.enabled", "true".into());
    } else if let Some(base) = base_endpoint.filter(|e| !e.is_empty()) {
        let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
        push("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.endpoint", endpoint);
        push("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.enabled", "true".into());
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = get(name) {
            push(name, "tracing.protocol", protocol);
            break;
        }
    }
    if let Some(service) = get("OTEL_SERVICE_NAME").filter(|s| !s.is_empty()) {
        push("OTEL_SERVICE_NAME", "tracing.service_name", service);
    }
    if let Some(sampler) = get("OTEL_TRACES_SAMPLER") {
        let arg = get("OTEL_TRACES_SAMPLER_ARG").unwrap_or_else(|| "1.0".into());
        let ratio = match sampler.as_str() {
            "always_on" | "parentbased_always_on" => Some("1.0".to_owned()),
            "always_off" | "parentbased_always_off" => Some("0.0".to_owned()),
            "traceidratio" | "parentbased_traceidratio" => Some(arg),
            _ => None,
        };
        push("OTEL_TRACES_SAMPLER", "tracing.sample_ratio", ratio.unwrap_or(sampler));
    }
    let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    if disabled {
        push("OTEL_SDK_DISABLED", "tracing.enabled", "false".into());
    }
    out
}

/// Converts an environment string into the TOML type the key's default has.
fn typed_env_value(default_value: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    match default_value {
        toml::Value::String(_) => Ok(toml::Value::String(raw.to_owned())),
        toml::Value::Integer(_) => {
            raw.trim().parse::<i64>().map(toml::Value::Integer).map_err(|_| format!("`{raw}` is not an integer"))
        }
        toml::Value::Float(_) => {
            raw.trim().parse::<f64>().map(toml::Value::Float).map_err(|_| format!("`{raw}` is not a number"))
        }
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not a boolean (true or false)")),
        },
        toml::Value::Array(_) => {
            let json: serde_json::Value = serde_json::from_str(raw)
                .map_err(|err| format!("expected a JSON array such as [\"a\", \"b\"]: {err}"))?;
            json_to_toml(json)
        }
        other => Err(format!("cannot be set from the environment (a {})", other.type_str())),
    }
}

fn json_to_toml(json: serde_json::Value) -> Result<toml::Value, String> {
    Ok(match json {
        serde_json::Value::String(s) => toml::Value::String(s),
        serde_json::Value::Bool(b) => toml::Value::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().ok_or("number out of range")?),
        },
        serde_json::Value::Array(items) => {
            toml::Value::Array(items.into_iter().map(json_to_toml).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Null | serde_json::Value::Object(_) => {
            return Err("only strings, numbers, booleans and arrays are allowed".into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::one("test", "", e.to_string()))?;
        let path = dir.path().join("agora.toml");
        std::fs::write(&path, text).map_err(|e| ConfigError::one("test", "", e.to_string()))?;
        Config::load_from(Some(&path), Path::new("/nonexistent"), &env(vars)).map(|l| l.config)
    }

    #[test]
    fn secrets_never_show_in_debug_display_or_the_dump() -> Result<(), ConfigError> {
        let text = "[email]\nsmtp_host = \"mail.example.org\"\nsmtp_password = \"hunter2-smtp\"\n";
        let config = load_text(text, &[("AGORA_SUMMARIES__OPENAI_API_KEY", "sk-live-key")])?;
        assert_eq!(config.email.smtp_password.expose(), "hunter2-smtp");
        assert_eq!(config.summaries.openai_api_key.expose(), "sk-live-key");
        for shown in [
            format!("{config:?}"),
            format!("{:?}", config.email),
            format!("{}", config.summaries.openai_api_key),
            config.masked_toml(),
        ] {
            assert!(!shown.contains("hunter2-smtp") && !shown.contains("sk-live-key"), "{shown}");
        }
        assert!(format!("{:?}", config.email).contains("smtp_password: \"****\""));
        Ok(())
    }

    fn only_problem(result: Result<Config, ConfigError>) -> ConfigProblem {
        match result {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(mut err) => {
                assert_eq!(err.problems.len(), 1, "{err}");
                err.problems.remove(0)
            }
        }
    }

    #[test]
    fn the_reference_file_is_the_defaults_and_an_empty_file_changes_nothing() {
        // No serde defaults exist: a key missing from the reference fails this outright.
        let defaults = Config::defaults().unwrap_or_else(|e| panic!("{e}"));
        let empty = Config::from_toml("empty.toml", "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, defaults);
        let partial = Config::from_toml("partial.toml", "[server]\nworkers = 3\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(partial.server.workers, 3);
        assert_eq!(partial.server.listen, defaults.server.listen, "keys a file leaves out keep their default");
        assert_eq!(partial.email, defaults.email);
    }

    #[test]
    fn reference_config_mentions_every_key() {
        let text = include_str!("../config/agora.toml");
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}"));
        let defaults = toml::Table::try_from(Config::defaults().unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        for (section, fields) in &defaults {
            let Some(fields) = fields.as_table() else {
                continue;
            };
            for key in fields.keys() {
                assert!(
                    parsed.get(section).and_then(|s| s.get(key)).is_some(),
                    "config/agora.toml lacks {section}.{key}"
                );
            }
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let problem = only_problem(load_text("[server]\nlisen = [\"127.0.0.1:1\"]\n", &[]));
        assert!(problem.key.contains("lisen") || problem.reason.contains("lisen"), "{problem}");
        assert!(problem.source.ends_with("agora.toml"), "{problem}");
    }

    #[test]
    fn replica_settings_that_could_serve_a_writer_old_state_are_refused() {
        let problem = only_problem(load_text("[database]\nmax_replica_lag = 10\nread_your_writes = 5\n", &[]));
        assert_eq!(problem.key, "database.read_your_writes", "{problem}");
        assert!(problem.reason.contains("max_replica_lag"), "{problem}");
        let problem = only_problem(load_text("[database]\nmax_replica_lag = 0\n", &[]));
        assert_eq!(problem.key, "database.max_replica_lag", "{problem}");
        let text = "[database]\nreplicas = [\"postgres://a:pw@r1/agora\"]\nmax_replica_lag = 2\nread_your_writes = 2\n";
        assert!(load_text(text, &[]).is_ok());
    }

    #[test]
    fn wrong_type_is_named() {
        let problem = only_problem(load_text("[database]\npool_size = \"many\"\n", &[]));
        assert_eq!(problem.key, "database.pool_size", "{problem}");
    }

    #[test]
    fn unparseable_listen_address_is_named() {
        let problem = only_problem(load_text("[server]\nlisten = [\"nonsense\"]\n", &[]));
        assert!(problem.key.starts_with("server.listen"), "{problem}");
        assert!(problem.reason.contains("nonsense"), "{problem}");
    }

    #[test]
    fn negative_pool_size_is_named() {
        let problem = only_problem(load_text("[database]\npool_size = -3\n", &[]));
        assert_eq!(problem.key, "database.pool_size", "{problem}");
    }

    #[test]
    fn environment_overrides_file_and_is_typed_by_key() {
        let config = load_text(
            "[database]\npool_size = 4\n",
            &[
                ("AGORA_DATABASE__POOL_SIZE", "9"),
                ("AGORA_SERVER__LISTEN", "[\"0.0.0.0:80\", \"unix:/run/agora.sock\"]"),
                ("AGORA_DATABASE__URL", "postgres://a:b@h/db"),
                ("AGORA_TEST_UNRELATED", "x"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.database.pool_size, 9);
        assert_eq!(config.server.listen.len(), 2);
        assert_eq!(config.server.listen[1], ListenAddr::Unix("/run/agora.sock".into()));
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let problem = only_problem(load_text("", &[("AGORA_DATABASE__POOL_SIZE", "-1")]));
        assert_eq!(problem.key, "database.pool_size", "{problem}");
        assert!(problem.source.contains("AGORA_DATABASE__POOL_SIZE"), "{problem}");
    }

    #[test]
    fn unknown_environment_key_is_refused() {
        let problem = only_problem(load_text("", &[("AGORA_DATABASE__POOLSIZE", "3")]));
        assert!(problem.source.contains("AGORA_DATABASE__POOLSIZE"), "{problem}");
    }

    #[test]
    fn otel_variables_configure_tracing() {
        let config = load_text(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_SERVICE_NAME", "forum"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.tracing.enabled);
        assert_eq!(config.tracing.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(config.tracing.service_name, "forum");
        assert!((config.tracing.sample_ratio - 0.25).abs() < f64::EPSILON);
    }

    #[test]
    fn agora_variables_win_over_otel_variables() {
        let config = load_text("", &[("OTEL_SERVICE_NAME", "forum"), ("AGORA_TRACING__SERVICE_NAME", "agora-eu")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.tracing.service_name, "agora-eu");
    }

    #[test]
    fn masked_dump_hides_passwords() {
        let mut config = Config::defaults().unwrap_or_else(|e| panic!("{e}"));
        config.database.url = "postgres://agora:hunter2@db/agora".into();
        let dump = config.masked_toml();
        assert!(!dump.contains("hunter2"));
        assert!(dump.contains("agora:****@db"));
    }

    #[test]
    fn listen_addresses_parse() {
        for good in ["127.0.0.1:8080", "[::1]:80", "localhost:0", "unix:/run/agora.sock"] {
            assert!(good.parse::<ListenAddr>().is_ok(), "{good}");
        }
        for bad in ["8080", "host:port", "127.0.0.1:99999", "unix:relative", ":80", "a b:1"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
