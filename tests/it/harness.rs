//! The test harness: one throwaway PostgreSQL cluster per test run, a migrated template
//! database, a fresh clone of it per test, and the real app on random ports.
//!
//! Set `AGORA_TEST_PG_URL` (an admin URL such as
//! `postgres://agora@localhost/postgres?host=/tmp/pg`) to use a server started outside the
//! tests, e.g. one cluster shared by every `cargo nextest` process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agora::app::App;
use agora::config::{Config, ListenAddr};
use agora::db::cluster::{ClusterOptions, PrivateCluster};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Where this run's cluster lives; removed by a reaper process when the test process exits.
const RUN_DIR_PREFIX: &str = "agora-test-";

/// The server every test database lives on.
pub struct TestServer {
    /// Admin URL template: `{db}` is replaced by a database name.
    url_template: String,
    /// The migrated template database to clone.
    template: String,
}

impl TestServer {
    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        self.url_template.replace("{db}", database)
    }
}

static SERVER: OnceLock<TestServer> = OnceLock::new();

/// The shared server, started (and its template built) on first use.
pub fn server() -> &'static TestServer {
    SERVER.get_or_init(|| {
        install_crypto_provider();
        let url_template = match std::env::var("AGORA_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => url_with_database_placeholder(&url),
            _ => start_cluster(),
        };
        // Setup may be reached from inside a test's runtime: do the async work on its own thread.
        let template = {
            let url_template = url_template.clone();
            std::thread::spawn(move || build_template(&url_template)).join().expect("build the template database")
        };
        TestServer { url_template, template }
    })
}

/// reqwest is built without a default TLS provider; the binary installs ring, tests do too.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn url_with_database_placeholder(url: &str) -> String {
    // postgres://user@host/DB?params -> postgres://user@host/{db}?params
    let (before_query, query) = url.split_once('?').map_or((url, None), |(a, b)| (a, Some(b)));
    let base = before_query.rsplit_once('/').map_or(before_query, |(base, _)| base);
    match query {
        Some(query) => format!("{base}/{{db}}?{query}"),
        None => format!("{base}/{{db}}"),
    }
}

/// Starts the run's cluster on a thread that lives as long as the process (the server is
/// told to stop when the thread that started it dies), and a reaper that deletes its
/// directory once this process is gone, however it ends.
fn start_cluster() -> String {
    sweep_leftovers();
    let dir = std::env::temp_dir().join(format!("{RUN_DIR_PREFIX}{}", std::process::id()));
    make_world_traversable_dir(&dir);
    spawn_reaper(&dir);
    let (sender, receiver) = std::sync::mpsc::channel();
    let cluster_dir = dir.join("pg");
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let options = ClusterOptions { throwaway: true, max_connections: 300, ..ClusterOptions::default() };
            match PrivateCluster::start(&cluster_dir, &options) {
                Ok(cluster) => {
                    let _ = sender.send(Ok(cluster.url("{db}")));
                    // Keep the cluster (and this thread) alive until the process exits.
                    loop {
                        std::thread::park();
                    }
                }
                Err(err) => {
                    let _ = sender.send(Err(err.to_string()));
                }
            }
        })
        .expect("spawn the cluster thread");
    match receiver.recv() {
        Ok(Ok(url)) => url,
        Ok(Err(err)) => panic!("cannot start the test PostgreSQL cluster: {err}"),
        Err(_) => panic!("the test PostgreSQL thread died"),
    }
}

/// A directory the `postgres` user can enter (the private cluster below it runs as that user
/// when the tests run as root).
pub fn make_world_traversable_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("create test directory");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod test directory");
}

/// A temporary directory (removed on drop, even when the test fails) that the `postgres` user can enter.
pub fn world_traversable_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("temporary directory");
    make_world_traversable_dir(dir.path());
    dir
}

fn spawn_reaper(dir: &Path) {
    after_this_process(&format!("sleep 2; rm -rf '{}'", dir.display()));
}

/// Runs the shell command `cleanup` in its own session once this test process has exited,
/// however it ends (the cluster directory, the browser driver).
pub fn after_this_process(cleanup: &str) {
    let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {cleanup}", pid = std::process::id());
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// Removes cluster directories of earlier runs whose process is gone.
fn sweep_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(RUN_DIR_PREFIX).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The template is named after the migrations it holds, so a schema change builds a new one;
/// an advisory lock makes concurrent test processes build it once.
fn build_template(url_template: &str) -> String {
    use diesel::migration::MigrationSource;
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let migrations =
        MigrationSource::<diesel::pg::Pg>::migrations(&agora::db::migrations::MIGRATIONS).expect("embedded migrations");
    for migration in &migrations {
        migration.name().to_string().hash(&mut hasher);
    }
    let template = format!("agora_tpl_{:016x}", hasher.finish());
    let admin = url_template.replace("{db}", "postgres");
    block_on(async {
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect to the test server");
        diesel::sql_query("SELECT pg_advisory_lock(7242001)").execute(&mut conn).await.expect("lock");
        if !agora::db::database_exists(&mut conn, &template).await.expect("query pg_database") {
            let building = format!("{template}_building");
            drop_database(&mut conn, &building).await;
            diesel::sql_query(format!("CREATE DATABASE \"{building}\"")).execute(&mut conn).await.expect("create");
            agora::db::migrations::run_pending(&url_template.replace("{db}", &building))
                .await
                .expect("migrate the template");
            diesel::sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
                .execute(&mut conn)
                .await
                .expect("rename template");
            diesel::sql_query(format!("ALTER DATABASE \"{template}\" IS_TEMPLATE true ALLOW_CONNECTIONS false"))
                .execute(&mut conn)
                .await
                .expect("mark template");
        }
        diesel::sql_query("SELECT pg_advisory_unlock(7242001)").execute(&mut conn).await.expect("unlock");
    });
    template
}

async fn drop_database(conn: &mut AsyncPgConnection, name: &str) {
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(conn)
        .await
        .expect("drop database");
}

/// Runs a future to completion on a private runtime (for setup code outside a test's runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(future)
}

/// A fresh database cloned from the template; dropped after a passing test, kept (and
/// printed) after a failing one.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// Clones the template.
    pub async fn new() -> Self {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&server.url("postgres")).await.expect("connect");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\" STRATEGY FILE_COPY", server.template))
            .execute(&mut conn)
            .await
            .expect("clone the template database");
        Self { url: server.url(&name), name }
    }

    /// An empty database (no migrations applied).
    pub async fn empty() -> Self {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&server.url("postgres")).await.expect("connect");
        diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("create database");
        Self { url: server.url(&name), name }
    }

    /// A database on some other server, which the test manages itself (never dropped here).
    pub fn unmanaged(url: String) -> Self {
        Self { name: String::new(), url }
    }

    /// A direct connection to this database.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.expect("connect to the test database")
    }

    /// Runs SQL statements (test fixtures).
    pub async fn execute(&self, sql: &str) {
        let mut conn = self.connect().await;
        diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, sql).await.expect("run fixture SQL");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        if std::thread::panicking() {
            eprintln!("test failed: its database is kept: psql '{}'", self.url);
            return;
        }
        let admin = server().url("postgres");
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The real app on random ports over its own database.
pub struct TestApp {
    /// Base URL of the public listener.
    pub base: String,
    /// Base URL of the admin (metrics) listener.
    pub admin_base: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The app's database.
    pub db: TestDb,
    app: Option<App>,
    /// The app's state directory.
    pub state_dir: tempfile::TempDir,
}

/// A configuration for tests: random ports, the given database, a temporary state directory.
pub fn test_config(database_url: &str, state_dir: &Path) -> Config {
    let mut config = Config::defaults().expect("the built-in defaults");
    config.server.listen = vec![ListenAddr::Tcp("127.0.0.1:0".into())];
    config.metrics.listen = "127.0.0.1:0".into();
    config.server.workers = 2;
    config.server.shutdown_grace_seconds = 5;
    config.paths.state_dir = state_dir.display().to_string();
    config.database.url = database_url.to_owned();
    config.database.pool_size = 4;
    // Tests of behaviour make many requests from one address; the limits have their own tests.
    config.rate_limits.enabled = false;
    config
}

/// Starts the app over a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app over a fresh database after `adjust` has changed the test configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await;
    spawn_app_on(db, adjust).await
}

/// Starts the app over `db`.
pub async fn spawn_app_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> TestApp {
    install_crypto_provider();
    let state_dir = tempfile::tempdir().expect("state dir");
    let mut config = test_config(&db.url, state_dir.path());
    adjust(&mut config);
    let url = config.database.url.clone();
    let app = App::build(config, &url, state_dir.path().to_path_buf()).await.expect("build the app");
    let base = format!("http://{}", app.public_addrs()[0]);
    let admin_base = app.admin_addr().map(|a| format!("http://{a}")).unwrap_or_else(|| base.clone());
    TestApp { base, admin_base, client: reqwest::Client::new(), db, app: Some(app), state_dir }
}

/// Two daemons on one fresh database sharing one token signing key (in the returned
/// directory), as several daemons behind a load balancer do.
pub async fn two_daemons() -> (TestApp, TestApp, tempfile::TempDir) {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let keys = tempfile::tempdir().expect("key dir");
    let key_file = keys.path().join("access-token.ed25519").display().to_string();
    let a = spawn_app_on(db, |config| config.auth.signing_key_file = key_file.clone()).await;
    let b = spawn_app_on(TestDb::unmanaged(url), |config| config.auth.signing_key_file = key_file.clone()).await;
    (a, b, keys)
}

impl TestApp {
    /// `GET path` on the public listener.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.expect("request")
    }

    /// The body of `GET /metrics` on the admin listener.
    pub async fn scrape(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.admin_base)).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        response.text().await.expect("metrics body")
    }

    /// The running app.
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("the app runs until stop")
    }

    /// Stops the app gracefully.
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}

/// The `agora` binary started with environment overrides; killed on drop if still running.
pub struct Daemon {
    /// The child process.
    pub child: Child,
    /// Public base URL.
    pub base: String,
    /// Where stdout (JSON logs) goes.
    pub log_path: PathBuf,
}

impl Daemon {
    /// Starts `agora serve` with `env` (plus random listen ports and JSON logs).
    pub fn serve(env: &[(&str, String)], log_path: PathBuf) -> Self {
        let log = std::fs::File::create(&log_path).expect("log file");
        // An empty configuration file: everything comes from the environment below.
        let config_path = log_path.with_extension("toml");
        std::fs::write(&config_path, "").expect("config file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
        command
            .arg("serve")
            .env("AGORA_CONFIG", &config_path)
            .env("AGORA_SERVER__LISTEN", "[\"127.0.0.1:0\"]")
            .env("AGORA_METRICS__LISTEN", "127.0.0.1:0")
            .env("AGORA_LOG__FORMAT", "json")
            // Each daemon its own state (keys, job queue) unless the test names one.
            .env("AGORA_PATHS__STATE_DIR", log_path.with_extension("state"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start agora");
        Self { child, base: String::new(), log_path }
    }

    /// Waits until the daemon says which port it bound and `/health/ready` answers 200.
    pub async fn wait_ready(&mut self, within: Duration) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agora exited early with {status}; log:\n{}", self.log());
            }
            let mut admin = String::new();
            let serving = self.log_lines().into_iter().find(|line| line["message"] == "agora is serving");
            if let Some(line) = &serving {
                if let Some(bound) = line["bound"].as_str() {
                    self.base = format!("http://{}", bound.split(' ').next().unwrap_or_default());
                }
                // The admin listener is plain HTTP even when the public one speaks HTTPS.
                admin = line["metrics"]
                    .as_str()
                    .filter(|m| m.contains(':'))
                    .map(|m| format!("http://{m}"))
                    .unwrap_or_default();
            }
            let probe = if admin.is_empty() { self.base.clone() } else { admin };
            if !probe.is_empty()
                && let Ok(response) = client.get(format!("{probe}/health/ready")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "agora not ready within {within:?}; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: i32) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "agora did not exit within {within:?}; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the daemon wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The JSON log lines written so far.
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log().lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the first line of a metrics scrape that starts with `line_start` (0 if none).
pub fn metric(scrape: &str, line_start: &str) -> f64 {
    scrape.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}
