//! Settings of a PostgreSQL server Agora does not run (the packaged system server), read and
//! changed as that server's own OS user through `psql` over its Unix socket (peer
//! authentication, as Debian sets it up): what `agora dr enable` needs. Agora's own role
//! cannot do this, and should not be able to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::db::cluster::RunAs;
use crate::db::ops::DirectConn;

/// The settings `agora dr enable` reads.
pub const ARCHIVING_SETTINGS: [&str; 7] = [
    "data_directory",
    "config_file",
    "server_version_num",
    "wal_level",
    "archive_mode",
    "archive_command",
    "archive_timeout",
];

/// What a restore drill runs as Agora's role.
const DRILL_FUNCTIONS: [&str; 2] = ["pg_create_restore_point(text)", "pg_switch_wal()"];

/// Why the server could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `psql` could not run, or the server refused.
    #[error("psql as {user}: {detail}")]
    Psql {
        /// The OS user psql ran as.
        user: String,
        /// What it said.
        detail: String,
    },
    /// A setting's name is not one Agora changes.
    #[error("refusing to change {0}: not an archiving setting")]
    NotArchivingSetting(String),
}

/// One server setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value in effect (in the setting's base unit, as `pg_settings` shows it).
    pub value: String,
    /// Changed in the configuration, but in effect only after a restart.
    pub pending_restart: bool,
    /// The value the configuration files give it, when they do (what a restart or reload
    /// brings into effect).
    pub configured: Option<String>,
}

impl Setting {
    /// The value once the configuration is in effect.
    pub fn intended(&self) -> &str {
        self.configured.as_deref().unwrap_or(&self.value)
    }
}

/// Where a server listens, as it says itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Its port.
    pub port: u16,
    /// When its postmaster started: tells two connections apart as the same server or not.
    pub started: String,
}

/// Asks the server its port and start time (any role may; its socket directories only a
/// superuser may read).
pub async fn location_of(conn: &mut DirectConn) -> diesel::QueryResult<Location> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        port: i32,
        #[diesel(sql_type = diesel::sql_types::Text)]
        started: String,
    }
    let row: Row =
        diesel::sql_query("SELECT current_setting('port')::int AS port, pg_postmaster_start_time()::text AS started")
            .get_result(conn.pg())
            .await?;
    Ok(Location { port: u16::try_from(row.port).unwrap_or(5432), started: row.started })
}

/// The database and role a connection uses.
pub async fn session_of(conn: &mut DirectConn) -> diesel::QueryResult<(String, String)> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        database: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        role: String,
    }
    let row: Row = diesel::sql_query("SELECT current_database()::text AS database, current_user::text AS role")
        .get_result(conn.pg())
        .await?;
    Ok((row.database, row.role))
}

/// A server reached as its OS user.
#[derive(Debug, Clone)]
pub struct ServerAdmin {
    psql: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    user: RunAs,
    role: String,
}

impl ServerAdmin {
    /// The server listening on `socket_dir`/`port`, administered as `user` (the owner of its
    /// socket), who connects as the role of the same name.
    pub fn new(bindir: &Path, socket_dir: &Path, port: u16, user: RunAs) -> Result<Self, AdminError> {
        let role = user.name().ok_or_else(|| AdminError::Psql {
            user: user.uid.to_string(),
            detail: "no such user in /etc/passwd".into(),
        })?;
        Ok(Self { psql: bindir.join("psql"), socket_dir: socket_dir.to_path_buf(), port, user, role })
    }

    /// The OS user (and role) this administers as.
    pub fn role(&self) -> &str {
        &self.role
    }

    fn query(&self, sql: &str) -> Result<String, AdminError> {
        self.query_in("postgres", sql)
    }

    fn query_in(&self, database: &str, sql: &str) -> Result<String, AdminError> {
        let mut psql = Command::new(&self.psql);
        psql.args(["-X", "-q", "-A", "-t", "-F", "\u{1f}", "-v", "ON_ERROR_STOP=1", "-d", database])
            .arg("-h")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string(), "-U", &self.role, "-c", sql])
            .stdin(Stdio::null());
        self.user.apply(&mut psql);
        let failed = |detail: String| AdminError::Psql { user: self.role.clone(), detail };
        let output = psql.output().map_err(|err| failed(format!("running {}: {err}", self.psql.display())))?;
        if !output.status.success() {
            return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The archiving settings, by name.
    pub fn settings(&self) -> Result<BTreeMap<String, Setting>, AdminError> {
        let names = ARCHIVING_SETTINGS.map(|n| format!("'{n}'")).join(",");
        // The last line of the configuration files that sets a name wins, as in PostgreSQL.
        let text = self.query(&format!(
            "SELECT s.name, s.setting, s.pending_restart, coalesce(f.setting, '\u{1e}') FROM pg_settings s \
             LEFT JOIN LATERAL (SELECT setting FROM pg_file_settings f WHERE f.name = s.name \
             AND (f.error IS NULL OR f.error = 'setting could not be applied') \
             ORDER BY f.seqno DESC LIMIT 1) f ON true WHERE s.name IN ({names})"
        ))?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\u{1f}');
                let (name, value, pending, file) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
                let configured = (file != "\u{1e}").then(|| file.to_owned());
                Some((
                    name.to_owned(),
                    Setting { value: value.to_owned(), pending_restart: pending == "t", configured },
                ))
            })
            .collect())
    }

    /// `ALTER SYSTEM SET name = value` (written to `postgresql.auto.conf`) for one of the
    /// archiving settings.
    pub fn alter_system(&self, name: &str, value: &str) -> Result<(), AdminError> {
        if !ARCHIVING_SETTINGS.contains(&name)
            || matches!(name, "data_directory" | "config_file" | "server_version_num")
        {
            return Err(AdminError::NotArchivingSetting(name.to_owned()));
        }
        self.query(&format!("ALTER SYSTEM SET {name} = '{}'", value.replace('\'', "''"))).map(drop)
    }

    /// Lets `role` run the functions a restore drill needs in `database` (marking a named
    /// restore point and ending the WAL segment that holds it), which only superusers may by
    /// default; the ones it could not run before.
    pub fn grant_drill_functions(&self, database: &str, role: &str) -> Result<Vec<&'static str>, AdminError> {
        let literal = role.replace('\'', "''");
        let identifier = role.replace('"', "\"\"");
        let mut granted = Vec::new();
        for function in DRILL_FUNCTIONS {
            let has = self
                .query_in(database, &format!("SELECT has_function_privilege('{literal}', '{function}', 'EXECUTE')"))?;
            if has.trim() != "t" {
                self.query_in(database, &format!("GRANT EXECUTE ON FUNCTION {function} TO \"{identifier}\""))?;
                granted.push(function);
            }
        }
        Ok(granted)
    }

    /// When the server's postmaster started (see [`Location::started`]).
    pub fn postmaster_started(&self) -> Result<String, AdminError> {
        Ok(self.query("SELECT pg_postmaster_start_time()::text")?.trim().to_owned())
    }

    /// Makes the server read its configuration again.
    pub fn reload(&self) -> Result<(), AdminError> {
        self.query("SELECT pg_reload_conf()").map(drop)
    }
}
