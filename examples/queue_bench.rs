//! Measures the job queue: durable enqueue rate (one flush per job, and batched), end-to-end
//! throughput of no-op jobs through the dispatcher, and resident memory with 1M queued jobs.
//!
//!     cargo run --release --example queue_bench [DIR]
//!
//! DIR (default: a temporary directory) holds the sled files; use a directory on the disk the
//! state directory lives on, since durable enqueue is bound by its fsync latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agora::config::QueueConfig;
use agora::metrics::Metrics;
use agora::queue::worker::{self, Handler, JobError, Jobs};
use agora::queue::{Job, JobKind, NewJob, Queue};
use futures_util::future::BoxFuture;

#[path = "support/memory.rs"]
mod memory;
use memory::rss_mib;

struct Noop(Arc<AtomicU64>);

impl Handler for Noop {
    fn run(&self, _job: Job) -> BoxFuture<'static, Result<(), JobError>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

fn email(n: u64) -> NewJob {
    NewJob::new(JobKind::Email, serde_json::json!({"template": "welcome", "user_id": n}))
}

#[tokio::main]
async fn main() {
    let scratch = tempfile::tempdir().ok();
    let dir = std::env::args().nth(1).map(std::path::PathBuf::from).unwrap_or_else(|| {
        scratch.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_else(|| std::path::PathBuf::from("queue-bench"))
    });
    let defaults = agora::config::Config::defaults().unwrap_or_else(|err| panic!("{err}")).queue;
    let config = Arc::new(QueueConfig { workers: 16, email_concurrency: 16, poll_interval_ms: 10, ..defaults });
    let open = |name: &str| {
        let queue = Queue::open_with_cache(&dir.join(name), config.cache_mib).unwrap_or_else(|err| panic!("{err}"));
        Jobs::new(queue, config.clone(), Metrics::new().unwrap_or_else(|err| panic!("{err}")))
    };

    // 1. Durable enqueue, one job per call (each call flushes to disk before it returns).
    let jobs = open("single");
    let n = 2_000;
    let started = Instant::now();
    for i in 0..n {
        jobs.enqueue(email(i)).await.unwrap_or_else(|err| panic!("{err}"));
    }
    let secs = started.elapsed().as_secs_f64();
    println!("enqueue, one flush per job:   {n} jobs in {secs:.2} s = {:.0} jobs/s", n as f64 / secs);

    // 1b. The same from 64 concurrent producers (what concurrent requests do).
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let jobs = jobs.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    jobs.enqueue(email(t * 1000 + i)).await.unwrap_or_else(|err| panic!("{err}"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap_or_else(|err| panic!("{err}"));
    }
    let secs = started.elapsed().as_secs_f64();
    println!("enqueue, 64 producers:        6400 jobs in {secs:.2} s = {:.0} jobs/s", 6400.0 / secs);

    // 2. Batched enqueue (one flush per 1,000 jobs).
    let started = Instant::now();
    for batch in 0..100u64 {
        jobs.enqueue_many((0..1000).map(|i| email(batch * 1000 + i)).collect())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let secs = started.elapsed().as_secs_f64();
    println!("enqueue, batches of 1,000:    100000 jobs in {secs:.2} s = {:.0} jobs/s", 100_000.0 / secs);

    // 3. End to end: drain everything queued above through the dispatcher with a no-op handler.
    let queued = 2_000 + 6_400 + 100_000u64;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers = worker::start(&jobs, Arc::new(Noop(done.clone())), Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("{err}"));
    while done.load(Ordering::Relaxed) < queued {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "end to end (lease, run, complete): {queued} no-op jobs in {secs:.2} s = {:.0} jobs/s",
        queued as f64 / secs
    );
    workers.stop(Duration::from_secs(5)).await;
    drop(jobs);

    // 4. Memory with one million queued jobs.
    let jobs = open("million");
    let before = rss_mib();
    let started = Instant::now();
    for batch in 0..1000u64 {
        jobs.enqueue_many((0..1000).map(|i| email(batch * 1000 + i)).collect())
            .await
            .unwrap_or_else(|err| panic!("{err}"));
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = jobs.queue().stats().unwrap_or_else(|err| panic!("{err}"));
    println!(
        "1M queued in {secs:.1} s: ready {}, RSS {before:.0} MiB before, {:.0} MiB after, {:.0} MiB on disk",
        stats[&JobKind::Email].ready,
        rss_mib(),
        jobs.queue().size_on_disk() as f64 / 1_048_576.0
    );
    let started = Instant::now();
    jobs.queue().stats().unwrap_or_else(|err| panic!("{err}"));
    println!("stats over 1M jobs: {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
}
