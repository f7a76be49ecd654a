//! Measures the rate limiter under a flood of distinct clients: resident memory and keys kept
//! after 1, 2 and 3 million distinct addresses, with the cap set to one million keys (the
//! default, `rate_limits.max_tracked_clients`, is 100,000).
//!
//!     cargo run --release --example rate_limit_memory

use std::time::{Duration, Instant};

use agora::config::Quota;
use agora::edge::rate_limit::RateLimiter;

#[path = "support/memory.rs"]
mod memory;
use memory::rss_mib;

#[tokio::main]
async fn main() {
    let limiter = RateLimiter::new(1_000_000, Duration::from_secs(60));
    let quota = Quota { requests: 20, period: Duration::from_secs(60) };
    println!("start: RSS {:.0} MiB", rss_mib());
    let started = Instant::now();
    for million in 1..=3u32 {
        for i in 0..1_000_000u32 {
            let ip = (million << 24) ^ i;
            limiter
                .check(format!("api:ip:{}.{}.{}.{}", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255), quota)
                .await;
        }
        println!(
            "{million}M distinct clients: {} keys kept, RSS {:.0} MiB, {:.1} s",
            limiter.key_count().await,
            rss_mib(),
            started.elapsed().as_secs_f64()
        );
    }
}
