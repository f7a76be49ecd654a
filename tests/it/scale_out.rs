//! Several daemons on one database behind a real HAProxy, configured from the example shipped
//! in `packaging/haproxy.cfg`: a user registers through one and signs in through the other,
//! tokens work everywhere, and a post made through one is read through the other at once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestApp, eventually};

/// HAProxy in the foreground on `port`, balancing over `backends`; killed on drop.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The shipped example with its listen address and server lines replaced.
fn proxy_config(port: u16, backends: &[&TestApp]) -> String {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/haproxy.cfg")).unwrap();
    let mut config = String::new();
    for line in example.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("server ") {
            continue;
        }
        if trimmed == "bind :80" {
            config.push_str(&format!("    bind 127.0.0.1:{port}\n"));
            continue;
        }
        config.push_str(line);
        config.push('\n');
    }
    for (n, app) in backends.iter().enumerate() {
        let address = app.base.trim_start_matches("http://");
        config.push_str(&format!("    server agora{} {address}\n", n + 1));
    }
    config
}

fn start_proxy(config: &str, dir: &std::path::Path) -> Proxy {
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let check = Command::new("haproxy").arg("-c").arg("-f").arg(&path).output().expect("haproxy (apt install haproxy)");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let child =
        Command::new("haproxy").arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).spawn().expect("start haproxy");
    Proxy(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_behind_haproxy_share_users_tokens_and_writes() {
    let (a, b, keys) = crate::harness::two_daemons().await;
    for app in [&a, &b] {
        eventually(Duration::from_secs(5), "each daemon to hear the other", || async {
            (crate::harness::metric(&app.scrape().await, "agora_cache_peer_daemons") == 1.0).then_some(())
        })
        .await;
    }
    let port = free_port();
    let _proxy = start_proxy(&proxy_config(port, &[&a, &b]), keys.path());
    let proxy = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(10), "the proxy to see both daemons healthy", || async {
        // Round robin over two healthy servers: consecutive requests reach both.
        let mut served = 0;
        for _ in 0..4 {
            if proxy.get(format!("{base}/health/ready")).send().await.ok()?.status() == 200 {
                served += 1;
            }
        }
        (served == 4).then_some(())
    })
    .await;

    // Registered on a, signed in on b; each token works on the other daemon.
    let registered = a.register("ann").await;
    let a_token = registered["access_token"].as_str().unwrap().to_owned();
    let login = b.post_json("/api/v1/auth/login", &json!({"login": "ann", "password": "password123"}), None).await;
    assert_eq!(login.status(), 200);
    let b_token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(b.get_as("/api/v1/me", &a_token).await.status(), 200, "a's token on b");
    assert_eq!(a.get_as("/api/v1/me", &b_token).await.status(), 200, "b's token on a");

    // Through the proxy: every request lands on either daemon, and each sees every write.
    let created = proxy
        .post(format!("{base}/api/v1/communities"))
        .bearer_auth(&a_token)
        .json(&json!({"name": "town", "title": "Town"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for app in [&a, &b] {
        assert_eq!(app.get("/api/v1/posts?community=town&sort=new").await.status(), 200, "warm both caches");
    }
    for n in 0..6 {
        let title = format!("post {n}");
        let post = proxy
            .post(format!("{base}/api/v1/communities/town/posts"))
            .bearer_auth(&b_token)
            .json(&json!({"title": title}))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 201);
        for app in [&a, &b] {
            eventually(Duration::from_secs(1), "the post on both daemons within a second", || async {
                let listing: Value = app.get("/api/v1/posts?community=town&sort=new").await.json().await.ok()?;
                (listing["items"][0]["title"] == title.as_str()).then_some(())
            })
            .await;
        }
        // Two reads through the proxy land on both daemons (round robin), and the next write on
        // the other one than this write.
        for _ in 0..2 {
            let listing = proxy.get(format!("{base}/api/v1/posts?community=town&sort=new")).send().await.unwrap();
            let through_proxy: Value = listing.json().await.unwrap();
            assert_eq!(through_proxy["items"][0]["title"], title.as_str());
        }
    }
    let served_by = |scrape: &str| crate::harness::metric(scrape, "agora_posts_created_total");
    let (on_a, on_b) = (served_by(&a.scrape().await), served_by(&b.scrape().await));
    assert_eq!(on_a + on_b, 6.0);
    assert!(on_a >= 1.0 && on_b >= 1.0, "the proxy spread the writes: {on_a} on a, {on_b} on b");
    b.stop().await;
    a.stop().await;
}
