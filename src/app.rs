//! Building a running Agora from a configuration: state, listeners, migrations, HTTP servers.
//! Tests build it on port 0 exactly as `agora serve` does.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{HttpServer, web};
use futures_util::future::BoxFuture;

use crate::config::{Config, ListenAddr};
use crate::db::{Database, PoolSettings, migrations};
use crate::edge::HttpState;
use crate::http;
use crate::jobs::Payload;
use crate::metrics::Metrics;
use crate::queue::Job;
use crate::queue::worker::{Handler, JobError};
use crate::security::TokenKeys;
use crate::service::Context;
use crate::service::accounts::AuthState;

/// Applies the pending migrations one by one, logging each and counting them in
/// `agora_migrations_pending` / `agora_migrations_applied_total`.
async fn migrate(state: &HttpState, database_url: &str) -> Result<(), StartError> {
    let metrics = state.metrics.clone();
    let progress = move |step: migrations::Progress<'_>| match step {
        migrations::Progress::Starting { name, remaining } => {
            metrics.migrations_pending.set(i64::try_from(remaining).unwrap_or(i64::MAX));
            tracing::info!(migration = name, remaining, "applying database migration");
        }
        migrations::Progress::Applied { name, remaining, seconds } => {
            metrics.migrations_pending.set(i64::try_from(remaining).unwrap_or(i64::MAX));
            metrics.migrations_applied.inc();
            tracing::info!(migration = name, remaining, seconds, "applied database migration");
        }
    };
    let applied = migrations::run_pending_with_progress(database_url, progress).await?;
    if applied.is_empty() {
        tracing::info!(migrations = migrations::count(), "database schema is up to date");
    } else {
        tracing::info!(applied = ?applied, "applied database migrations");
    }
    Ok(())
}

/// Runs jobs against the service context.
pub struct AppJobs {
    /// The context handlers use.
    pub ctx: Arc<Context>,
}

impl Handler for AppJobs {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let payload = Payload::of(&job)
                .map_err(|err| JobError::Permanent(format!("bad {} job: {err}", job.kind.as_str())))?;
            match payload {
                Payload::Email(email) => crate::email::run(&ctx, email).await,
                Payload::Summary(summary) => crate::summaries::run(&ctx, &ctx.summarizer, summary).await,
                Payload::Image(image) => crate::service::media::run(&ctx, image).await,
            }
        })
    }
}

/// Why Agora could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The private PostgreSQL cluster could not start.
    #[error("private PostgreSQL cluster: {0}")]
    Cluster(#[from] crate::db::cluster::ClusterError),
    /// The database could not be reached or prepared.
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    /// Migrations failed.
    #[error(transparent)]
    Migration(#[from] migrations::MigrationError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Keys or other secrets could not be set up.
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    /// The TLS certificate could not be loaded.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The job queue could not be opened.
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// The summary providers could not be set up.
    #[error(transparent)]
    Summarizer(#[from] crate::summaries::SummarizerError),
    /// The media store is misconfigured.
    #[error(transparent)]
    Media(#[from] crate::media::store::StoreError),
    /// The email settings are unusable.
    #[error(transparent)]
    Mailer(#[from] crate::email::MailerError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Other I/O at start.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A built app: listeners bound, migrations applied, servers running.
pub struct App {
    state: web::Data<HttpState>,
    public: ServerHandle,
    admin: Option<ServerHandle>,
    redirect: Option<ServerHandle>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    workers: Option<crate::queue::worker::WorkerHandle>,
    public_addrs: Vec<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    redirect_addr: Option<SocketAddr>,
}

impl App {
    /// Binds every listener, applies pending migrations, and starts serving.
    pub async fn build(config: Config, database_url: &str, state_dir: PathBuf) -> Result<Self, StartError> {
        let public_listeners = match inherited_listeners()? {
            Some(listeners) => {
                tracing::info!(sockets = listeners.len(), "serving on the sockets systemd passed (socket activation)");
                listeners
            }
            None => bind_all(&config.server.listen)?,
        };
        let admin_listener =
            if config.metrics.listen.is_empty() { None } else { Some(bind_tcp(&config.metrics.listen)?) };

        let metrics = Metrics::new()?;
        let settings = PoolSettings {
            max_size: usize::try_from(config.database.pool_size).unwrap_or(16),
            replica_max_size: usize::try_from(config.database.replica_pool_size).unwrap_or(16),
            wait_timeout: Duration::from_secs(config.database.pool_timeout_seconds),
            connect_timeout: Duration::from_secs(config.database.connect_timeout_seconds),
            max_replica_lag: Duration::from_secs_f64(config.database.max_replica_lag),
        };
        let db = Database::new(database_url, &config.database.replicas, &settings, metrics.clone())?;
        if db.has_replicas() {
            // Measure before serving, so reads can use the replicas from the first request.
            db.probe_replicas().await;
            for replica in db.replica_reports() {
                tracing::info!(replica = %replica.name, state = %replica.state, "read replica");
            }
        }
        let keys = TokenKeys::load_or_create(&config.auth.signing_key_path(&state_dir))?;
        let auth = AuthState::new(keys, config.auth.log_reset_links);
        if config.auth.log_reset_links {
            tracing::warn!("auth.log_reset_links is on: password-reset links are written to the log");
        }
        let rate_limiter = crate::edge::rate_limit::limiter_for(&config.rate_limits);
        let tls = match crate::tls::CertificateFiles::from_config(&config.tls, &state_dir, &public_host(&config))? {
            Some(files) => {
                let loaded = crate::tls::load(&files)?;
                if let Some(not_after) = loaded.not_after {
                    metrics.tls_certificate_expiry.set(not_after as f64);
                }
                Some(crate::tls::TlsState { files, store: Arc::new(crate::tls::CertStore::new(loaded.certified)) })
            }
            None => None,
        };
        let redirect_listener =
            if config.tls.redirect_listen.is_empty() { None } else { Some(bind_tcp(&config.tls.redirect_listen)?) };
        let queue = crate::queue::Queue::open_with_cache(&state_dir.join("queue"), config.queue.cache_mib)?;
        let jobs = crate::queue::worker::Jobs::new(queue, Arc::new(config.queue.clone()), metrics.clone());
        let mailer = crate::email::Mailer::from_config(&config.email)?;
        match &mailer {
            Some(mailer) => tracing::info!(smtp = %mailer.describe, "email is on"),
            None => tracing::warn!("email is off: no email.smtp_host is configured, so no email is queued or sent"),
        }
        let summarizer = Arc::new(crate::summaries::Summarizer::from_config(&config.summaries)?);
        tracing::info!(providers = %summarizer.describe(), "AI summaries");
        let media = crate::media::store::Store::from_config(&config.media, &state_dir)?;
        tracing::info!(storage = %media.describe(), "image uploads");
        let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
        let read_your_writes = Duration::from_secs_f64(config.database.read_your_writes);
        let caches = crate::service::Caches::new(&config.cache, read_your_writes, metrics.clone());
        let ctx = Arc::new(Context {
            config: Arc::new(config),
            db,
            metrics,
            state_dir,
            auth,
            jobs,
            mailer,
            summarizer,
            migrating: std::sync::atomic::AtomicBool::new(true),
            caches,
            media,
            media_counted_at: std::sync::Mutex::new(None),
        });
        let state = web::Data::new(HttpState { ctx: ctx.clone(), rate_limiter, tls });

        let (public_server, public_addrs) = public_server(&state, public_listeners)?;
        let public = public_server.handle();
        let mut tasks = vec![tokio::spawn(public_server)];
        let redirect_addr = redirect_listener.as_ref().and_then(|l| l.local_addr().ok());
        let mut redirect = None;
        if let Some(listener) = redirect_listener {
            let https_port = public_addrs.first().map_or(443, SocketAddr::port);
            let server = redirect_server(&state, listener, https_port)?;
            redirect = Some(server.handle());
            tasks.push(tokio::spawn(server));
        }
        let (admin, admin_addr) = match admin_listener {
            Some(listener) => {
                let addr = listener.local_addr().ok();
                let server = admin_server(&state, listener)?;
                let handle = server.handle();
                tasks.push(tokio::spawn(server));
                (Some(handle), addr)
            }
            None => (None, None),
        };
        // Serving already: while migrations run, /health/ready answers 503 with
        // "migrations": "pending", so a load balancer or `systemctl` waits.
        if let Err(err) = migrate(&state, database_url).await {
            public.stop(false).await;
            for handle in [&redirect, &admin].into_iter().flatten() {
                handle.stop(false).await;
            }
            return Err(err);
        }
        state.migrating.store(false, std::sync::atomic::Ordering::Release);
        let listener = crate::service::cache_sync::first_listener(&state).await;
        if let Some(listener) = &listener {
            state.caches.listener_pid.store(listener.backend_pid(), std::sync::atomic::Ordering::Release);
        }
        crate::service::cache_sync::probe_once(&state).await;
        let workers = crate::queue::worker::start(&state.jobs, Arc::new(AppJobs { ctx }), grace)?;
        let control_socket = crate::queue::control::socket_path(&state.state_dir);
        let control =
            crate::queue::control::serve(control_socket.clone(), state.jobs.queue().clone(), state.jobs.wake())
                .map_err(|source| StartError::Io {
                    context: format!("listening on the control socket {}", control_socket.display()),
                    source,
                })?;
        let mut background = vec![
            control,
            tokio::spawn(crate::service::idempotency::purge_periodically(state.ctx.clone())),
            tokio::spawn(crate::service::media::sweep_orphans_periodically(state.ctx.clone())),
            tokio::spawn(crate::service::cache_sync::listen(state.ctx.clone(), listener)),
            tokio::spawn(crate::service::cache_sync::probe_peers(state.ctx.clone())),
            tokio::spawn(crate::queue::worker::export_stats_periodically(
                state.jobs.clone(),
                state.metrics.clone(),
                Duration::from_secs(5),
            )),
        ];
        if state.db.has_replicas() {
            background.push(tokio::spawn(state.db.clone().probe_replicas_periodically()));
        }
        Ok(Self {
            state,
            public,
            admin,
            redirect,
            tasks,
            background,
            workers: Some(workers),
            public_addrs,
            admin_addr,
            redirect_addr,
        })
    }

    /// The bound TCP addresses of the public listeners (port 0 resolved).
    pub fn public_addrs(&self) -> &[SocketAddr] {
        &self.public_addrs
    }

    /// The bound address of the admin listener, when there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The bound address of the plain-HTTP redirect listener, when there is one.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect_addr
    }

    /// The shared state, for tests and commands.
    pub fn state(&self) -> &HttpState {
        &self.state
    }

    /// Reads the certificate and key again and serves them to new handshakes; on any problem
    /// the current certificate stays. Open connections are not touched.
    pub fn reload_tls(&self) -> Result<(), crate::tls::TlsError> {
        let Some(tls) = &self.state.tls else { return Ok(()) };
        let loaded = crate::tls::load(&tls.files).inspect_err(|_| {
            self.state.metrics.tls_reloads.with_label_values(&["failure"]).inc();
        })?;
        self.state.metrics.tls_reloads.with_label_values(&["success"]).inc();
        tls.store.replace(loaded.certified);
        if let Some(not_after) = loaded.not_after {
            self.state.metrics.tls_certificate_expiry.set(not_after as f64);
        }
        Ok(())
    }

    /// Resolves when a server stops by itself (which only a fatal error does).
    pub async fn stopped(&mut self) {
        if let Some(task) = self.tasks.first_mut() {
            match task.await {
                Ok(Ok(())) => tracing::warn!("HTTP server stopped"),
                Ok(Err(err)) => tracing::error!(error = %err, "HTTP server failed"),
                Err(err) => tracing::error!(error = %err, "HTTP server task failed"),
            }
            self.tasks.remove(0);
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to `server.shutdown_grace_seconds`),
    /// then stops the admin listener.
    pub async fn stop(self) {
        for task in &self.background {
            task.abort();
        }
        self.public.stop(true).await;
        if let Some(workers) = self.workers {
            workers.stop(Duration::from_secs(self.state.config.server.shutdown_grace_seconds)).await;
        }
        if let Some(redirect) = &self.redirect {
            redirect.stop(true).await;
        }
        if let Some(admin) = &self.admin {
            admin.stop(true).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn public_server(
    state: &web::Data<HttpState>,
    listeners: Vec<Listener>,
) -> Result<(Server, Vec<SocketAddr>), StartError> {
    let config = &state.config;
    let max_body = config.server.max_body_bytes;
    let serve_metrics = config.metrics.listen.is_empty();
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(app_state.clone())
            .wrap(from_fn(crate::edge::head::edge))
            .wrap(from_fn(crate::edge::middleware::observe))
            // Outermost, so it compresses the final body (including problem bodies `observe` writes).
            .wrap(actix_web::middleware::Compress::default())
            .wrap(from_fn(crate::edge::head::keep_secrets_uncompressed))
            .configure(|cfg| http::configure_public(cfg, max_body, serve_metrics))
            // Last: the pages' scope answers every path the routes above did not take.
            .configure(crate::web::configure)
    })
    .shutdown_timeout(config.server.shutdown_grace_seconds)
    .client_request_timeout(Duration::from_millis(config.server.client_request_timeout_ms))
    .client_disconnect_timeout(Duration::from_millis(config.server.client_disconnect_timeout_ms))
    .keep_alive(Duration::from_secs(config.server.keep_alive_seconds))
    .max_connections(config.server.max_connections_per_worker)
    .backlog(config.server.backlog)
    .disable_signals();
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let mut addrs = Vec::new();
    for listener in listeners {
        server = match listener {
            Listener::Tcp(name, listener) => {
                if let Ok(addr) = listener.local_addr() {
                    addrs.push(addr);
                }
                match &state.tls {
                    Some(tls) => {
                        let config = crate::tls::server_config(tls.store.clone())?;
                        server
                            .listen_rustls_0_23(listener, config)
                            .map_err(|source| StartError::Bind { addr: name, source })?
                    }
                    None => server.listen(listener).map_err(|source| StartError::Bind { addr: name, source })?,
                }
            }
            Listener::Unix(name, listener) => {
                server.listen_uds(listener).map_err(|source| StartError::Bind { addr: name, source })?
            }
        };
    }
    Ok((server.run(), addrs))
}

fn admin_server(state: &web::Data<HttpState>, listener: TcpListener) -> Result<Server, StartError> {
    let app_state = state.clone();
    let addr = state.config.metrics.listen.clone();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(app_state.clone())
            .wrap(from_fn(crate::edge::middleware::observe))
            .configure(http::configure_admin)
    })
    .workers(1)
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?;
    Ok(server.run())
}

/// The host name of `server.public_url` (for the self-signed certificate).
pub fn public_host(config: &Config) -> String {
    let rest = config.server.public_url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    host.trim_matches(['[', ']']).to_owned()
}

/// The plain-HTTP listener of `tls.redirect_listen`: health checks answer, everything else is
/// sent to HTTPS with a 308.
fn redirect_server(state: &web::Data<HttpState>, listener: TcpListener, https_port: u16) -> Result<Server, StartError> {
    let app_state = state.clone();
    let addr = state.config.tls.redirect_listen.clone();
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::new(http::ops::HttpsPort(https_port)))
            .wrap(from_fn(crate::edge::middleware::observe))
            .service(web::resource("/health/live").route(web::get().to(http::ops::live)))
            .service(web::resource("/health/ready").route(web::get().to(http::ops::ready)))
            .default_service(web::to(http::ops::redirect_to_https))
    })
    .workers(1)
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Bind { addr, source })?;
    Ok(server.run())
}

enum Listener {
    Tcp(String, TcpListener),
    Unix(String, std::os::unix::net::UnixListener),
}

/// The listening sockets systemd passed (socket activation: `LISTEN_PID` is this process,
/// `LISTEN_FDS` sockets from fd 3), or `None` when Agora was not socket-activated.
fn inherited_listeners() -> Result<Option<Vec<Listener>>, StartError> {
    use std::os::fd::FromRawFd;
    let pid = std::env::var("LISTEN_PID").ok().and_then(|p| p.trim().parse::<u32>().ok());
    let count = std::env::var("LISTEN_FDS").ok().and_then(|n| n.trim().parse::<i32>().ok());
    let (Some(pid), Some(count)) = (pid, count) else { return Ok(None) };
    if pid != std::process::id() || !(1..=64).contains(&count) {
        return Ok(None);
    }
    let mut listeners = Vec::new();
    for fd in 3..3 + count {
        let name = format!("systemd socket fd {fd}");
        let bad =
            |reason: &str| StartError::Bind { addr: name.clone(), source: std::io::Error::other(reason.to_owned()) };
        let mut address: libc::sockaddr_storage = unsafe_zeroed_storage();
        let mut length = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `address` is writable memory of `length` bytes; `fd` is an open descriptor
        // systemd passed to this process (checked by LISTEN_PID above).
        #[allow(unsafe_code)]
        let (named, flagged) = unsafe {
            (
                libc::getsockname(fd, std::ptr::addr_of_mut!(address).cast(), &raw mut length),
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            )
        };
        if named != 0 || flagged != 0 {
            return Err(bad("not a socket"));
        }
        let listener = match i32::from(address.ss_family) {
            // SAFETY: systemd hands each passed descriptor to this process exactly once.
            #[allow(unsafe_code)]
            libc::AF_UNIX => Listener::Unix(name, unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) }),
            // SAFETY: as above.
            #[allow(unsafe_code)]
            libc::AF_INET | libc::AF_INET6 => Listener::Tcp(name, unsafe { TcpListener::from_raw_fd(fd) }),
            _ => return Err(bad("not a TCP or Unix socket")),
        };
        listeners.push(listener);
    }
    Ok(Some(listeners))
}

fn unsafe_zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    #[allow(unsafe_code)]
    unsafe {
        std::mem::zeroed()
    }
}

fn bind_all(addrs: &[ListenAddr]) -> Result<Vec<Listener>, StartError> {
    addrs
        .iter()
        .map(|addr| match addr {
            ListenAddr::Tcp(text) => bind_tcp(text).map(|l| Listener::Tcp(text.clone(), l)),
            ListenAddr::Unix(path) => {
                let name = addr.to_string();
                // A socket file left by an earlier run would make bind fail.
                if path.exists() {
                    std::fs::remove_file(path).map_err(|source| StartError::Bind { addr: name.clone(), source })?;
                }
                std::os::unix::net::UnixListener::bind(path)
                    .map(|l| Listener::Unix(name.clone(), l))
                    .map_err(|source| StartError::Bind { addr: name, source })
            }
        })
        .collect()
}

fn bind_tcp(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind { addr: addr.to_owned(), source })
}
