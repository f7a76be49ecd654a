//! Operator commands on the queue (`agora queue …`). sled lets one process open the queue, so
//! while the daemon runs the command is sent over a Unix socket in the state directory
//! (`control.sock`, mode 0600: only Agora's user may use it) and the daemon runs it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{JobState, Queue, QueueError};

/// One operator command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum QueueOp {
    /// Counts by kind and state, and the oldest ready job's age.
    Stats,
    /// Jobs in a state, oldest first.
    List {
        /// `ready`, `delayed`, `leased` or `dead`.
        state: String,
        /// Most jobs to show.
        limit: usize,
    },
    /// Move one dead job back to ready with fresh attempts.
    Retry {
        /// The job id.
        id: u64,
    },
    /// Move every dead job back to ready.
    RetryAll,
    /// Delete every dead job.
    PurgeDead,
    /// Write the queue as JSON lines to a file (for `agora backup` while the daemon runs).
    Export {
        /// The file to write.
        path: String,
    },
}

/// The control socket of a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

fn parse_state(name: &str) -> Option<JobState> {
    JobState::ALL.into_iter().find(|state| state.as_str() == name)
}

/// Runs `op` on `queue` and returns what to print, or the error to show.
pub fn execute(queue: &Queue, op: &QueueOp) -> Result<String, String> {
    let fail = |err: QueueError| err.to_string();
    match op {
        QueueOp::Stats => {
            let stats = queue.stats().map_err(fail)?;
            let mut out = format!(
                "{:<10} {:>9} {:>9} {:>9} {:>9} {:>14}\n",
                "kind", "ready", "delayed", "leased", "dead", "oldest ready"
            );
            for (kind, s) in stats {
                out.push_str(&format!(
                    "{:<10} {:>9} {:>9} {:>9} {:>9} {:>13.1}s\n",
                    kind.as_str(),
                    s.ready,
                    s.delayed,
                    s.leased,
                    s.dead,
                    s.oldest_ready_seconds
                ));
            }
            out.push_str(&format!("storage: {} bytes\n", queue.size_on_disk()));
            Ok(out)
        }
        QueueOp::List { state, limit } => {
            let state =
                parse_state(state).ok_or_else(|| format!("unknown state `{state}`: ready, delayed, leased or dead"))?;
            let jobs = queue.list(state, *limit).map_err(fail)?;
            let mut out = String::new();
            for (job, state) in &jobs {
                let enqueued = chrono::DateTime::from_timestamp_millis(i64::try_from(job.enqueued_at_ms).unwrap_or(0))
                    .map_or_else(String::new, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                out.push_str(&format!(
                    "{id}\t{kind}\t{state}\tattempts {attempts}/{max}\tenqueued {enqueued}",
                    id = job.id,
                    kind = job.kind.as_str(),
                    state = state.as_str(),
                    attempts = job.attempts,
                    max = job.max_attempts,
                ));
                if let Some(error) = &job.last_error {
                    out.push_str(&format!("\tlast error: {error}"));
                }
                out.push('\n');
            }
            if jobs.is_empty() {
                out.push_str(&format!("no {} jobs\n", state.as_str()));
            }
            Ok(out)
        }
        QueueOp::Retry { id } => queue.retry_dead(*id).map(|()| format!("job {id} is ready again\n")).map_err(fail),
        QueueOp::RetryAll => queue.retry_all_dead().map(|n| format!("{n} dead jobs are ready again\n")).map_err(fail),
        QueueOp::PurgeDead => queue.purge_dead().map(|n| format!("{n} dead jobs deleted\n")).map_err(fail),
        QueueOp::Export { path } => {
            let mut file = std::fs::File::create(path).map_err(|err| format!("{path}: {err}"))?;
            let count = queue.export(&mut file).map_err(fail)?;
            file.sync_all().map_err(|err| format!("{path}: {err}"))?;
            Ok(format!("{count} entries exported\n"))
        }
    }
}

/// Serves operator commands on `path` until the task is aborted. `wake` is told after a
/// command that may have made jobs ready.
pub fn serve(
    path: PathBuf,
    queue: Queue,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    let listener = tokio::net::UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let queue = queue.clone();
            let wake = wake.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut reader = BufReader::new(read.take(4096));
                let answer = match reader.read_line(&mut line).await {
                    Ok(_) => match serde_json::from_str::<QueueOp>(&line) {
                        Ok(op) => {
                            tracing::info!(?op, "queue command from the control socket");
                            let result = tokio::task::spawn_blocking(move || execute(&queue, &op)).await;
                            wake.notify_one();
                            match result {
                                Ok(Ok(text)) => format!("ok\n{text}"),
                                Ok(Err(error)) => format!("error\n{error}\n"),
                                Err(err) => format!("error\n{err}\n"),
                            }
                        }
                        Err(err) => format!("error\nbad command: {err}\n"),
                    },
                    Err(err) => format!("error\n{err}\n"),
                };
                let _ = write.write_all(answer.as_bytes()).await;
                let _ = write.shutdown().await;
            });
        }
    }))
}

/// Sends `op` to the daemon listening on `path`; `Ok` carries what to print, `Err` the error.
pub async fn request(path: &Path, op: &QueueOp) -> std::io::Result<Result<String, String>> {
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    let mut line = serde_json::to_string(op).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(match answer.split_once('\n') {
        Some(("ok", text)) => Ok(text.to_owned()),
        Some((_, error)) => Err(error.trim_end().to_owned()),
        None => Err(format!("unexpected answer from the daemon: {answer}")),
    })
}
