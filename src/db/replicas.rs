//! Read replicas: how far behind the primary each one is, whether it may serve a read, and
//! the probe that keeps both current.
//!
//! Lag is measured by WAL position, never by `now() - pg_last_xact_replay_timestamp()` (that
//! grows while the primary is idle). Each probe round records the primary's current LSN with
//! the instant the round started; a replica whose replay LSN has reached a recorded LSN holds
//! every commit made before that instant. So a replica is *caught up to* an instant, its lag in
//! seconds is how long ago that instant was, and a read that must see the changes made up to
//! some instant (the reader's own write, or a change the response cache has already
//! invalidated) can tell exactly which replicas may serve it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the probe measures the primary and every replica.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long one probe query may take before its server counts as unreachable (generous: on a
/// saturated machine the probe task itself may wait for a core).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a replica taken out for failing stays out before it is tried again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// A metrics label for a database URL: host, port and database, never the user or password.
pub fn server_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').map_or((rest, ""), |(a, q)| (a, q));
    let (authority, database) = before_query.split_once('/').map_or((before_query, ""), |(a, d)| (a, d));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let socket = query.split('&').find_map(|pair| pair.strip_prefix("host="));
    let host = match socket {
        Some(dir) => percent_decode(dir),
        None if host_port.is_empty() => "localhost".to_owned(),
        None if host_port.starts_with('[') || host_port.contains(':') => percent_decode(host_port),
        None => format!("{}:5432", percent_decode(host_port)),
    };
    if database.is_empty() { host } else { format!("{host}/{}", percent_decode(database)) }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The primary's WAL positions recorded by recent probe rounds, oldest first.
#[derive(Debug)]
pub struct PrimaryHistory {
    rounds: VecDeque<(Instant, u64)>,
    capacity: usize,
}

impl PrimaryHistory {
    /// Enough rounds to tell lags up to `max_lag` (and twice that, to report how far over it is).
    pub fn new(max_lag: Duration) -> Self {
        let rounds_per_lag = max_lag.as_millis() / PROBE_INTERVAL.as_millis().max(1);
        let capacity = usize::try_from(rounds_per_lag.saturating_mul(2)).unwrap_or(usize::MAX).clamp(16, 4096);
        Self { rounds: VecDeque::with_capacity(capacity), capacity }
    }

    /// Records that the primary's current LSN was `lsn` at a round started at `at`.
    pub fn record(&mut self, at: Instant, lsn: u64) {
        if self.rounds.len() == self.capacity {
            self.rounds.pop_front();
        }
        self.rounds.push_back((at, lsn));
    }

    /// The newest recorded LSN of the primary.
    pub fn newest_lsn(&self) -> Option<u64> {
        self.rounds.back().map(|&(_, lsn)| lsn)
    }

    /// How a replica that has replayed up to `replayed` stands, measured `now`.
    pub fn position(&self, replayed: u64, now: Instant) -> Position {
        let Some(&(_, newest)) = self.rounds.back() else {
            return Position { caught_up_to: None, lag: Duration::ZERO, lag_bytes: 0 };
        };
        let lag_bytes = newest.saturating_sub(replayed);
        let caught_up_to = self.rounds.iter().rev().find(|&&(_, lsn)| lsn <= replayed).map(|&(at, _)| at);
        let lag = if lag_bytes == 0 {
            Duration::ZERO
        } else {
            // Behind every recorded round: at least as old as the oldest one.
            let since = caught_up_to.or_else(|| self.rounds.front().map(|&(at, _)| at)).unwrap_or(now);
            now.saturating_duration_since(since)
        };
        Position { caught_up_to, lag, lag_bytes }
    }
}

/// Where a replica's replay stands against the primary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// The newest probe round whose primary LSN the replica has replayed: it holds every commit
    /// made before this instant.
    pub caught_up_to: Option<Instant>,
    /// How far behind the primary the replica's state is in time (0 when it has replayed all).
    pub lag: Duration,
    /// How far behind it is in WAL bytes.
    pub lag_bytes: u64,
}

/// Whether a replica serves reads, as the probe and failed queries decide.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Not measured yet: serves nothing until the first probe.
    Unprobed,
    /// Serving reads.
    In,
    /// Taken out, with the reason (shown in `/health/ready` and the log).
    Out(String),
}

/// What Agora knows about one replica.
#[derive(Debug, Clone)]
pub struct Health {
    /// In or out.
    pub standing: Standing,
    /// The last measured position.
    pub position: Position,
    /// A replica taken out by a failed query is not probed again before this.
    pub retry_at: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            standing: Standing::Unprobed,
            position: Position { caught_up_to: None, lag: Duration::ZERO, lag_bytes: 0 },
            retry_at: None,
        }
    }
}

impl Health {
    /// Whether this replica may serve a read that must see every commit made before `fresh_since`
    /// (`None`: any state within the lag limit will do). With the primary down, any replica
    /// still in serves: nothing newer can be had.
    pub fn may_serve(&self, fresh_since: Option<Instant>, primary_down: bool) -> bool {
        if self.standing != Standing::In {
            return false;
        }
        match fresh_since {
            None => true,
            Some(_) if primary_down => true,
            Some(required) => self.position.caught_up_to.is_some_and(|caught_up| caught_up >= required),
        }
    }

    /// The text `/health/ready` shows.
    pub fn describe(&self) -> String {
        match &self.standing {
            Standing::Unprobed => "out: not measured yet".to_owned(),
            Standing::In => format!("up, lag {:.1} s", self.position.lag.as_secs_f64()),
            Standing::Out(reason) => format!("out: {reason}"),
        }
    }

    /// The outcome of a probe that reached the replica: in when it is a replica within
    /// `max_lag`, out with the reason otherwise. `position` is `None` while the primary
    /// cannot be measured (the last position is kept and the lag is not judged).
    pub fn probed(&mut self, in_recovery: bool, position: Option<Position>, max_lag: Duration) {
        self.retry_at = None;
        if let Some(position) = position {
            self.position = position;
        }
        self.standing = if !in_recovery {
            Standing::Out("not in recovery: it was promoted, or it is not a replica".to_owned())
        } else if self.position.lag > max_lag {
            Standing::Out(format!(
                "lag {:.1} s is over database.max_replica_lag ({} s)",
                self.position.lag.as_secs_f64(),
                max_lag.as_secs_f64()
            ))
        } else {
            Standing::In
        };
    }

    /// Takes the replica out after a failure; it is probed again after [`RETRY_AFTER_FAILURE`].
    pub fn failed(&mut self, reason: String, now: Instant) {
        self.standing = Standing::Out(reason);
        self.retry_at = Some(now + RETRY_AFTER_FAILURE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_never_carry_credentials() {
        assert_eq!(server_name("postgres://agora:secret@db.example:5433/agora"), "db.example:5433/agora");
        assert_eq!(server_name("postgres://agora@db.example/agora?sslmode=require"), "db.example:5432/agora");
        assert_eq!(server_name("postgres://agora@%2Frun%2Fpostgresql/agora"), "/run/postgresql:5432/agora");
        assert_eq!(server_name("postgres://postgres@localhost/agora?host=/tmp/pg/run"), "/tmp/pg/run/agora");
        assert_eq!(server_name("postgresql://u:p@[::1]:5432/db"), "[::1]:5432/db");
    }

    #[test]
    fn lag_is_how_long_ago_the_replica_was_caught_up() {
        let start = Instant::now();
        let mut history = PrimaryHistory::new(Duration::from_secs(5));
        assert_eq!(history.position(0, start).caught_up_to, None);
        for (i, lsn) in [100, 200, 300, 400].into_iter().enumerate() {
            history.record(start + PROBE_INTERVAL * u32::try_from(i).unwrap_or(0), lsn);
        }
        let now = start + PROBE_INTERVAL * 4;
        let current = history.position(400, now);
        assert_eq!((current.lag, current.lag_bytes), (Duration::ZERO, 0));
        assert_eq!(current.caught_up_to, Some(start + PROBE_INTERVAL * 3));
        let behind = history.position(250, now);
        assert_eq!(behind.caught_up_to, Some(start + PROBE_INTERVAL));
        assert_eq!(behind.lag, PROBE_INTERVAL * 3);
        assert_eq!(behind.lag_bytes, 150);
        let far_behind = history.position(50, now);
        assert_eq!(far_behind.caught_up_to, None);
        assert_eq!(far_behind.lag, PROBE_INTERVAL * 4, "at least as old as the oldest round");
    }

    #[test]
    fn an_idle_primary_does_not_make_a_replica_lag() {
        let start = Instant::now();
        let mut history = PrimaryHistory::new(Duration::from_secs(5));
        for i in 0..100u32 {
            history.record(start + PROBE_INTERVAL * i, 500);
        }
        let position = history.position(500, start + PROBE_INTERVAL * 100);
        assert_eq!(position.lag, Duration::ZERO);
    }

    #[test]
    fn a_replica_serves_reads_it_has_caught_up_to() {
        let start = Instant::now();
        let mut health = Health::default();
        assert!(!health.may_serve(None, false), "unmeasured replicas serve nothing");
        let position = Position { caught_up_to: Some(start), lag: Duration::from_millis(300), lag_bytes: 10 };
        health.probed(true, Some(position), Duration::from_secs(5));
        assert!(health.may_serve(None, false));
        assert!(health.may_serve(Some(start), false));
        assert!(!health.may_serve(Some(start + Duration::from_millis(1)), false), "a newer write needs the primary");
        assert!(health.may_serve(Some(start + Duration::from_millis(1)), true), "unless the primary is down");
        let lagging = Position { caught_up_to: Some(start), lag: Duration::from_secs(6), lag_bytes: 10 };
        health.probed(true, Some(lagging), Duration::from_secs(5));
        assert!(!health.may_serve(None, false));
        assert!(health.describe().starts_with("out: lag 6.0 s"), "{}", health.describe());
        health.probed(false, None, Duration::from_secs(5));
        assert!(health.describe().contains("not in recovery"));
        health.failed("connection refused".into(), start);
        assert_eq!(health.describe(), "out: connection refused");
    }
}
