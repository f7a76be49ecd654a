//! The durable job queue on its own: retries with backoff, dead letters and the operator's
//! retry, priorities, deduplication, and the depth metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora::config::QueueConfig;
use agora::metrics::Metrics;
use agora::queue::worker::{self, Handler, JobError, Jobs};
use agora::queue::{Enqueued, Job, JobKind, JobState, NewJob, Queue};
use futures_util::future::BoxFuture;

/// Records every attempt; fails the first `failures` attempts of each job (all when `None`).
#[derive(Default)]
struct Recorder {
    failures: Option<u32>,
    delay: Duration,
    attempts: Mutex<Vec<(u64, JobKind, u32, Instant)>>,
}

/// The handler the dispatcher owns, sharing the recorder with the test.
struct Shared(Arc<Recorder>);

impl Handler for Shared {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let this = self.0.clone();
        Box::pin(async move {
            this.attempts.lock().unwrap().push((job.id, job.kind, job.attempts, Instant::now()));
            tokio::time::sleep(this.delay).await;
            match this.failures {
                Some(n) if job.attempts > n => Ok(()),
                _ => Err(JobError::Retry(format!("attempt {} fails on purpose", job.attempts))),
            }
        })
    }
}

fn fast_config() -> QueueConfig {
    QueueConfig {
        poll_interval_ms: 20,
        backoff_base_ms: 200,
        backoff_max_seconds: 5,
        ..agora::config::Config::defaults().expect("the built-in defaults").queue
    }
}

fn open(dir: &std::path::Path, config: QueueConfig) -> (Jobs, Metrics) {
    let metrics = Metrics::new().unwrap();
    let jobs = Jobs::new(Queue::open(&dir.join("queue")).unwrap(), Arc::new(config), metrics.clone());
    (jobs, metrics)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn counter(metrics: &Metrics, name: &str) -> f64 {
    let text = metrics.render().unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l.contains("kind=\"email\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn a_job_that_fails_twice_completes_on_the_third_attempt_after_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, metrics) = open(dir.path(), fast_config());
    let recorder = Arc::new(Recorder { failures: Some(2), ..Recorder::default() });
    let workers = worker::start(&jobs, Arc::new(Shared(recorder.clone())), Duration::from_secs(5)).unwrap();
    jobs.enqueue(NewJob::new(JobKind::Email, serde_json::json!({"n": 1}))).await.unwrap();

    wait_until("three attempts", Duration::from_secs(10), || recorder.attempts.lock().unwrap().len() == 3).await;
    wait_until("completion", Duration::from_secs(5), || counter(&metrics, "agora_queue_jobs_completed_total") == 1.0)
        .await;
    let attempts = recorder.attempts.lock().unwrap().clone();
    assert_eq!(attempts.iter().map(|a| a.2).collect::<Vec<_>>(), vec![1, 2, 3]);
    // Equal jitter: retry n waits at least half of 200 ms × 2^(n−1).
    assert!(attempts[1].3 - attempts[0].3 >= Duration::from_millis(100), "first backoff");
    assert!(attempts[2].3 - attempts[1].3 >= Duration::from_millis(200), "second backoff doubles");
    assert_eq!(counter(&metrics, "agora_queue_jobs_retried_total"), 2.0);
    assert_eq!(counter(&metrics, "agora_queue_jobs_failed_total"), 2.0);
    assert_eq!(counter(&metrics, "agora_queue_jobs_dead_lettered_total"), 0.0);
    let stats = jobs.queue().stats().unwrap()[&JobKind::Email];
    assert_eq!((stats.ready, stats.delayed, stats.leased, stats.dead), (0, 0, 0, 0), "nothing left behind");
    workers.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_job_that_always_fails_is_dead_lettered_and_the_operator_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, metrics) = open(dir.path(), fast_config());
    let recorder = Arc::new(Recorder { failures: None, ..Recorder::default() });
    let workers = worker::start(&jobs, Arc::new(Shared(recorder.clone())), Duration::from_secs(5)).unwrap();
    let id = jobs.enqueue(NewJob::new(JobKind::Email, serde_json::json!({"n": 2}))).await.unwrap().id();
    wait_until("dead letter", Duration::from_secs(10), || {
        counter(&metrics, "agora_queue_jobs_dead_lettered_total") == 1.0
    })
    .await;
    workers.stop(Duration::from_secs(2)).await;
    assert_eq!(recorder.attempts.lock().unwrap().len(), 3, "3 attempts by default");
    let dead = jobs.queue().list(JobState::Dead, 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0.last_error.as_deref(), Some("attempt 3 fails on purpose"));
    drop((jobs, dead));

    // The operator sees it and retries it with the CLI (the queue is not held by a daemon).
    let state_dir = dir.path().display().to_string();
    let config_path = dir.path().join("agora.toml");
    std::fs::write(&config_path, "").unwrap();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["queue"])
            .args(args)
            .env("AGORA_PATHS__STATE_DIR", &state_dir)
            .env("AGORA_CONFIG", &config_path)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, listing) = cli(&["dead"]);
    assert!(ok && listing.contains(&format!("{id}\temail\tdead")) && listing.contains("fails on purpose"), "{listing}");
    let (ok, stats) = cli(&["stats"]);
    assert!(ok && stats.lines().any(|l| l.starts_with("email") && l.split_whitespace().nth(4) == Some("1")), "{stats}");
    let (ok, _) = cli(&["retry", "999999"]);
    assert!(!ok, "retrying an unknown job fails");
    let (ok, out) = cli(&["retry", &id.to_string()]);
    assert!(ok, "{out}");

    let (jobs, metrics) = open(dir.path(), fast_config());
    let recorder = Arc::new(Recorder { failures: Some(0), ..Recorder::default() });
    let workers = worker::start(&jobs, Arc::new(Shared(recorder.clone())), Duration::from_secs(5)).unwrap();
    wait_until("completion after retry", Duration::from_secs(5), || {
        counter(&metrics, "agora_queue_jobs_completed_total") == 1.0
    })
    .await;
    assert_eq!(recorder.attempts.lock().unwrap()[0].2, 1, "fresh attempts after an operator retry");
    workers.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_summary_queued_behind_ten_thousand_emails_starts_within_one_lease_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let config = QueueConfig { workers: 2, email_concurrency: 2, summary_concurrency: 2, ..fast_config() };
    let (jobs, _metrics) = open(dir.path(), config);
    let emails = (0..10_000).map(|n| NewJob::new(JobKind::Email, serde_json::json!({"n": n}))).collect();
    let queued = jobs.enqueue_many(emails).await.unwrap();
    assert!(queued.iter().all(|o| matches!(o, Enqueued::New(_))));
    let recorder = Arc::new(Recorder { failures: Some(0), delay: Duration::from_millis(50), ..Recorder::default() });
    let workers = worker::start(&jobs, Arc::new(Shared(recorder.clone())), Duration::from_secs(5)).unwrap();
    wait_until("emails flowing", Duration::from_secs(5), || recorder.attempts.lock().unwrap().len() >= 6).await;

    let started_before = recorder.attempts.lock().unwrap().len();
    jobs.enqueue(NewJob::new(JobKind::Summary, serde_json::json!({"post_id": 1}))).await.unwrap();
    wait_until("the summary", Duration::from_secs(5), || {
        recorder.attempts.lock().unwrap().iter().any(|a| a.1 == JobKind::Summary)
    })
    .await;
    let attempts = recorder.attempts.lock().unwrap().clone();
    let summary_at = attempts.iter().position(|a| a.1 == JobKind::Summary).unwrap();
    // Both workers may have been mid-email; the first slot that frees takes the summary.
    assert!(
        summary_at <= started_before + 1,
        "summary started {} jobs after it was queued",
        summary_at - started_before
    );
    assert!(jobs.queue().stats().unwrap()[&JobKind::Email].ready > 9_000, "the emails are still waiting");
    workers.stop(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_dedup_key_queues_a_job_once_while_it_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, _metrics) = open(dir.path(), fast_config());
    let job = || NewJob::new(JobKind::Summary, serde_json::json!({"post_id": 7})).dedup("summary:7:abc");
    let first = jobs.enqueue(job()).await.unwrap();
    let second = jobs.enqueue(job()).await.unwrap();
    assert!(matches!(first, Enqueued::New(_)));
    assert_eq!(second, Enqueued::Duplicate(first.id()));
    assert_eq!(jobs.queue().stats().unwrap()[&JobKind::Summary].ready, 1);

    let recorder = Arc::new(Recorder { failures: Some(0), ..Recorder::default() });
    let workers = worker::start(&jobs, Arc::new(Shared(recorder.clone())), Duration::from_secs(5)).unwrap();
    wait_until("the job", Duration::from_secs(5), || jobs.queue().stats().unwrap()[&JobKind::Summary].ready == 0).await;
    wait_until("completion", Duration::from_secs(5), || !jobs.queue().is_pending("summary:7:abc").unwrap()).await;
    assert!(matches!(jobs.enqueue(job()).await.unwrap(), Enqueued::New(_)), "done jobs free their key");
    workers.stop(Duration::from_secs(2)).await;
}

/// Many requests enqueue at once: every enqueue returns (group commit, no lost wake-up) and
/// every job is there. (sled's own `flush_async` deadlocks under exactly this load.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_producers_all_get_durable_enqueues() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, _metrics) = open(dir.path(), fast_config());
    let producers: Vec<_> = (0..32)
        .map(|p| {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    jobs.enqueue(NewJob::new(JobKind::Email, serde_json::json!({"p": p, "i": i}))).await.unwrap();
                }
            })
        })
        .collect();
    let all = futures_util::future::join_all(producers);
    tokio::time::timeout(Duration::from_secs(30), all).await.expect("every enqueue returns");
    assert_eq!(jobs.queue().stats().unwrap()[&JobKind::Email].ready, 640);
}
