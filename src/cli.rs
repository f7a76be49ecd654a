//! The `agora` command line: parsing and dispatch to the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH, Loaded};
use crate::{lifecycle, telemetry};

/// Exit status for an invalid configuration (sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// Agora: a self-hosted community platform in one observable daemon.
#[derive(Debug, Parser)]
#[command(
    name = "agora",
    version,
    long_version = crate::LONG_VERSION,
    after_help = "Every configuration key can also be set from the environment as AGORA_<SECTION>__<KEY>\n\
                  (e.g. AGORA_DATABASE__URL, AGORA_SERVER__LISTEN='[\"0.0.0.0:8080\"]').\n\
                  The reference configuration with every key documented is /etc/agora/agora.toml\n\
                  (config/agora.toml in the source tree)."
)]
pub struct Cli {
    /// Configuration file. Default: /etc/agora/agora.toml when it exists, else built-in defaults.
    #[arg(long, short = 'c', global = true, value_name = "PATH", env = "AGORA_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: apply migrations, serve the site (pages at /) and the API (/api/v1), stop
    /// cleanly on SIGTERM or Ctrl-C.
    ///
    /// With no database.url, a private PostgreSQL cluster is created (first run) and run under
    /// <state_dir>/postgres for as long as Agora runs.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate {
        /// List the migrations that would run, without running them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the configuration and print it (secrets masked); exit 78 when it is invalid.
    CheckConfig,
    /// Check the installation: configuration, database (reachability, version, pool size,
    /// pending migrations), clock, free disk, writable directories, TLS certificate, SMTP.
    /// One OK / WARN / FAIL line each with what to do; exits 1 when anything fails.
    Doctor,
    /// Fill an empty database with a synthetic data set for benchmarks and demos. Every seeded
    /// user (`user_1` … `user_N`) has the password `seed-password`.
    Seed {
        /// The data set's shape: `default` (10,000 users, 100 communities, 100,000 posts,
        /// 1,000,000 comments, 2,000,000 votes; post 1 has 500 top-level comments) or
        /// `small-community` (64 users, 1 community, 1,000 posts, 2,000 comments, 9,000 votes;
        /// post 1 has exactly 300 comments nested five levels deep). The counts below override it.
        #[arg(long, value_enum, default_value_t = SeedShape::Default)]
        shape: SeedShape,
        /// Users to create.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
        users: Option<i64>,
        /// Communities to create.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
        communities: Option<i64>,
        /// Posts to create.
        #[arg(long, value_parser = clap::value_parser!(i64).range(2..=100_000_000))]
        posts: Option<i64>,
        /// Comments to create (about 40 % top level, the rest replies).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
        comments: Option<i64>,
        /// Votes to cast (two thirds on posts); duplicates are dropped.
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
        votes: Option<i64>,
    },
    /// Write a backup archive (database, job queue, media, manifest) to backup.dir and apply
    /// retention; with --verify, restore the newest archive into a scratch database instead and
    /// check it.
    Backup {
        /// Verify the newest archive instead of writing one.
        #[arg(long, conflicts_with = "drill")]
        verify: bool,
        /// Instead of writing an archive, restore the continuous archive (newest base backup
        /// and all archived WAL) into a scratch cluster and check it: row counts at the
        /// restored point against the live database, the audit log's hash chain. Records the
        /// restore time (RTO) and how far behind the archive was (RPO); exits 1 on failure.
        #[arg(long)]
        drill: bool,
        /// With --drill: only when the last passing drill is a week old (for the backup timer).
        #[arg(long, requires = "drill")]
        when_due: bool,
    },
    /// Restore the database (stop Agora first): an archive written by `agora backup` into an
    /// empty database and state directory (every checksum is checked before anything is
    /// touched), or the database to a moment of the last `backup.pitr_days` days from its
    /// continuous archive (`--to-time`, `--to-latest`; a system PostgreSQL must be stopped).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["archive", "to_time", "to_latest"])))]
    Restore {
        /// The archive (`agora-backup-….tar`).
        archive: Option<PathBuf>,
        /// Bring the database back to how it was at this moment (RFC 3339, e.g.
        /// 2026-12-01T10:43:00Z): everything committed before it is back, nothing after.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        to_time: Option<chrono::DateTime<chrono::Utc>>,
        /// Bring the database back to the newest archived state (after losing its
        /// data directory).
        #[arg(long)]
        to_latest: bool,
        /// Replace a database that holds data (and, for an archive, a non-empty job queue).
        #[arg(long)]
        force: bool,
    },
    /// Inspect and repair the job queue (works whether or not the daemon runs).
    Queue {
        /// Which task.
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Operator tasks on the database: users, roles, audit log.
    Admin {
        /// Which task.
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Disaster recovery: continuous WAL archiving for a system PostgreSQL (the private
    /// cluster archives by itself), base backups and restore drills.
    Dr {
        /// Which task.
        #[command(subcommand)]
        command: DrCommand,
    },
}

/// `agora dr …`
#[derive(Debug, Subcommand)]
pub enum DrCommand {
    /// As root, set up continuous archiving (pgBackRest) for the system PostgreSQL that
    /// database.url points at, on this machine: its repository in backup.pitr_dir, the
    /// server's archive_mode, archive_command and archive_timeout with ALTER SYSTEM, the
    /// first base backup, and agora-dr.timer. Idempotent; prints every change it makes and
    /// never replaces another archiver.
    Enable {
        /// The server's Unix socket directory, when it is not the one database.url names,
        /// /run/postgresql, /var/run/postgresql or /tmp.
        #[arg(long, value_name = "DIR")]
        socket_dir: Option<PathBuf>,
        /// Restart PostgreSQL when a changed setting needs it (archive_mode, wal_level);
        /// without it, Agora says so and stops before the base backup.
        #[arg(long)]
        restart: bool,
    },
    /// Take a base backup of the continuous archive (full once a day, else incremental; older
    /// than backup.pitr_days expires), then run the restore drill when the last passing one is
    /// a week old. As root for a system PostgreSQL; agora-dr.timer runs it daily.
    Backup {
        /// Run the restore drill now, due or not.
        #[arg(long)]
        drill: bool,
    },
}

/// `agora admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user. The password is read from the first line of standard input
    /// (e.g. `echo "$PASSWORD" | agora admin create-user alice alice@example.com --admin`).
    CreateUser {
        /// Username: 3–20 letters, digits or underscores.
        username: String,
        /// Email address.
        email: String,
        /// Make the user a site administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Grant a role: `admin`, or `moderator --community NAME`.
    Grant {
        /// Who.
        username: String,
        /// `admin` or `moderator`.
        role: RoleArg,
        /// The community, for `moderator`.
        #[arg(long)]
        community: Option<String>,
    },
    /// Revoke a role: `admin`, or `moderator --community NAME`.
    Revoke {
        /// Who.
        username: String,
        /// `admin` or `moderator`.
        role: RoleArg,
        /// The community, for `moderator`.
        #[arg(long)]
        community: Option<String>,
    },
    /// Check the audit log's hash chain; exits 1 and names the first altered entry if broken.
    VerifyAuditLog,
}

/// `agora queue …`
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Jobs by kind and state (ready, delayed, leased, dead) and the oldest ready job's age.
    Stats,
    /// Jobs waiting or running, oldest first.
    List {
        /// `ready`, `delayed` or `leased`.
        #[arg(long, default_value = "ready")]
        state: String,
        /// Most jobs to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Dead-lettered jobs with their last error.
    Dead {
        /// Most jobs to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Put one dead job back in the queue with fresh attempts.
    Retry {
        /// The job id (from `agora queue dead`).
        id: u64,
    },
    /// Put every dead job back in the queue.
    RetryAll,
    /// Delete every dead job for good.
    PurgeDead,
}

impl QueueCommand {
    fn op(self) -> crate::queue::control::QueueOp {
        use crate::queue::control::QueueOp;
        match self {
            Self::Stats => QueueOp::Stats,
            Self::List { state, limit } => QueueOp::List { state, limit },
            Self::Dead { limit } => QueueOp::List { state: "dead".to_owned(), limit },
            Self::Retry { id } => QueueOp::Retry { id },
            Self::RetryAll => QueueOp::RetryAll,
            Self::PurgeDead => QueueOp::PurgeDead,
        }
    }
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Site administrator.
    Admin,
    /// Moderator of one community.
    Moderator,
}

/// The data set shapes of `agora seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedShape {
    /// A large site.
    Default,
    /// A busy small community.
    SmallCommunity,
}

/// Runs the parsed command line and returns the process exit status.
pub fn run(cli: Cli) -> ExitCode {
    let loaded = match Config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(err) => return config_failure(&err),
    };
    match cli.command {
        Command::CheckConfig => check_config(&loaded),
        Command::Doctor => doctor(&loaded),
        Command::Serve => with_runtime(&loaded, lifecycle::serve),
        Command::Migrate { dry_run } => with_runtime(&loaded, move |loaded| lifecycle::migrate(loaded, dry_run)),
        Command::Seed { shape, users, communities, posts, comments, votes } => {
            let base = match shape {
                SeedShape::Default => crate::db::seed::SeedSize::DEFAULT,
                SeedShape::SmallCommunity => crate::db::seed::SeedSize::SMALL_COMMUNITY,
            };
            let size = crate::db::seed::SeedSize {
                users: users.unwrap_or(base.users),
                communities: communities.unwrap_or(base.communities),
                posts: posts.unwrap_or(base.posts),
                comments: comments.unwrap_or(base.comments),
                votes: votes.unwrap_or(base.votes),
                ..base
            };
            with_runtime(&loaded, move |loaded| lifecycle::seed(loaded, size))
        }
        Command::Admin { command } => with_runtime(&loaded, move |loaded| admin(loaded, command)),
        Command::Queue { command } => queue_command(&loaded, &command.op()),
        Command::Dr { command: DrCommand::Enable { socket_dir, restart } } => {
            with_runtime(&loaded, move |loaded| lifecycle::dr_enable(loaded, socket_dir, restart))
        }
        Command::Dr { command: DrCommand::Backup { drill } } => {
            with_runtime(&loaded, move |loaded| lifecycle::dr_backup(loaded, drill))
        }
        Command::Backup { verify: _, drill: true, when_due } => {
            with_runtime(&loaded, move |loaded| lifecycle::drill(loaded, when_due))
        }
        Command::Backup { verify, .. } => with_runtime(&loaded, move |loaded| lifecycle::backup(loaded, verify)),
        Command::Restore { archive, to_time, to_latest, force } => {
            use crate::backup::pitr::Target;
            match (archive, to_time, to_latest) {
                (Some(archive), _, _) => {
                    with_runtime(&loaded, move |loaded| lifecycle::restore(loaded, archive, force))
                }
                (None, Some(at), _) => {
                    with_runtime(&loaded, move |loaded| lifecycle::restore_to(loaded, Target::Time(at), force))
                }
                (None, None, _) => {
                    with_runtime(&loaded, move |loaded| lifecycle::restore_to(loaded, Target::Latest, force))
                }
            }
        }
    }
}

/// Runs a queue command on the queue directly, or through the running daemon's control socket
/// when the daemon holds the queue.
fn queue_command(loaded: &Loaded, op: &crate::queue::control::QueueOp) -> ExitCode {
    use crate::queue::{Queue, QueueError, control};
    let state_dir = loaded.config.paths.resolved_state_dir();
    let result = match Queue::open(&state_dir.join("queue")) {
        Ok(queue) => control::execute(&queue, op).and_then(|out| {
            queue.flush_blocking().map_err(|err| err.to_string())?;
            Ok(out)
        }),
        Err(QueueError::Locked { .. }) => {
            let socket = control::socket_path(&state_dir);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime.map(|rt| rt.block_on(control::request(&socket, op))) {
                Ok(Ok(answer)) => answer,
                Ok(Err(err)) | Err(err) => Err(format!(
                    "the queue is in use by the running daemon, and its control socket {} does not answer: {err}",
                    socket.display()
                )),
            }
        }
        Err(err) => Err(err.to_string()),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("agora: {error}");
            ExitCode::FAILURE
        }
    }
}

fn doctor(loaded: &Loaded) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("agora: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let checks = runtime.block_on(async {
        let url = match loaded.config.database_url() {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                let root = loaded.config.paths.resolved_state_dir().join("postgres");
                crate::db::cluster::PrivateCluster::running_url(&root, lifecycle::PRIVATE_DATABASE).await
            }
        };
        crate::doctor::run(loaded, url.as_deref()).await
    });
    for check in &checks {
        println!("{}", check.line());
    }
    let failed = checks.iter().filter(|c| c.level == crate::doctor::Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == crate::doctor::Level::Warn).count();
    println!("\n{} checks: {failed} failed, {warned} to look at", checks.len());
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn config_failure(err: &ConfigError) -> ExitCode {
    eprintln!("agora: {err}");
    ExitCode::from(EXIT_CONFIG)
}

fn check_config(loaded: &Loaded) -> ExitCode {
    let source = loaded.file.as_ref().map_or_else(
        || format!("built-in defaults ({DEFAULT_CONFIG_PATH} does not exist)"),
        |path| path.display().to_string(),
    );
    eprintln!("agora: configuration OK: {source}");
    for (key, var) in &loaded.env_overrides {
        eprintln!("agora:   {key} set by {var}");
    }
    print!("{}", loaded.config.masked_toml());
    ExitCode::SUCCESS
}

/// Sets up logging and tracing, then runs `work` on a multi-threaded runtime whose
/// `block_on` keeps the top-level future on this (the main) thread.
fn with_runtime<F, Fut>(loaded: &Loaded, work: F) -> ExitCode
where
    F: FnOnce(Loaded) -> Fut,
    Fut: std::future::Future<Output = Result<(), lifecycle::RunError>>,
{
    let telemetry = match telemetry::init(&loaded.config.log, &loaded.config.tracing) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("agora: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("agora: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(work(loaded.clone()));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "agora stopped with an error");
            eprintln!("agora: {err}");
            match err {
                lifecycle::RunError::Start(crate::app::StartError::Config(_)) => ExitCode::from(EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// `agora admin …`: applies pending migrations, then runs the task on one connection.
async fn admin(loaded: Loaded, command: AdminCommand) -> Result<(), lifecycle::RunError> {
    use crate::error::AppError;
    use crate::service::admin::{self, Role};

    let target = lifecycle::database_target(&loaded).await?;
    crate::db::migrations::run_pending(&target.url).await.map_err(crate::app::StartError::from)?;
    let mut conn = crate::db::ops::connect(&target.url).await.map_err(crate::app::StartError::Database)?;
    let role = |role: RoleArg, community: Option<String>| -> Result<Role, AppError> {
        match (role, community) {
            (RoleArg::Admin, None) => Ok(Role::Admin),
            (RoleArg::Moderator, Some(name)) => crate::domain::CommunityName::parse(&name)
                .map(Role::Moderator)
                .map_err(|e| AppError::bad_request(format!("--community: {e}"))),
            (RoleArg::Admin, Some(_)) => Err(AppError::bad_request("admin is site-wide: drop --community")),
            (RoleArg::Moderator, None) => Err(AppError::bad_request("moderator needs --community NAME")),
        }
    };
    match command {
        AdminCommand::CreateUser { username, email, admin: make_admin } => {
            let password = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line.trim_end_matches(['\r', '\n']).to_owned())
            })
            .await
            .map_err(AppError::internal)?
            .map_err(|err| AppError::bad_request(format!("cannot read the password from standard input: {err}")))?;
            let id = admin::create_user(&mut conn, &username, &email, &password, make_admin).await?;
            println!("created user {username} (id {id}){}", if make_admin { " as site administrator" } else { "" });
        }
        AdminCommand::Grant { username, role: r, community } => {
            admin::set_role(&mut conn, &username, &role(r, community)?, true).await?;
            println!("granted");
        }
        AdminCommand::Revoke { username, role: r, community } => {
            admin::set_role(&mut conn, &username, &role(r, community)?, false).await?;
            println!("revoked");
        }
        AdminCommand::VerifyAuditLog => match admin::verify_audit_log(&mut conn).await? {
            None => println!("audit log intact"),
            Some(id) => {
                return Err(AppError::bad_request(format!(
                    "audit log broken at entry {id}: it or the entry before it was altered or deleted"
                ))
                .into());
            }
        },
    }
    drop(conn);
    drop(target);
    Ok(())
}

/// An RFC 3339 moment (`2026-12-01T10:43:00Z`, or with an offset).
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|err| format!("`{text}` is not an RFC 3339 time such as 2026-12-01T10:43:00Z: {err}"))
}
