//! A full disk is a condition, not a bug: with the state directory (and the private
//! PostgreSQL in it) on a small file system that fills up under a write load, writes answer
//! 507 with `Retry-After` (never 500), reads keep answering, nothing acknowledged is lost, and
//! writes work again once space is freed, without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Daemon, eventually, metric, world_traversable_tempdir};

/// A tmpfs of `megabytes` mounted at `path` for the test (needs root); unmounted on drop.
struct SmallFilesystem(PathBuf);

impl SmallFilesystem {
    fn mount(path: &Path, megabytes: u32) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0755"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount (the tests run as root, as CI does)");
        assert!(status.success(), "mount a tmpfs at {} (needs root)", path.display());
        Self(path.to_path_buf())
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the file system refuses more.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    let _ = file.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_without_a_restart() {
    crate::harness::install_crypto_provider();
    let dir = world_traversable_tempdir("agora-full-");
    let state = dir.path().join("state");
    let _filesystem = SmallFilesystem::mount(&state, 160);
    let env = [
        ("AGORA_PATHS__STATE_DIR", state.display().to_string()),
        ("AGORA_METRICS__LISTEN", String::new()),
        ("AGORA_RATE_LIMITS__ENABLED", "false".to_owned()),
        // The database's own refusal is what is tested here. With continuous archiving on the
        // same full disk, WAL waits for the archive and PostgreSQL stops by design once it
        // cannot write WAL (the supervisor restarts it; docs/disaster-recovery.md).
        ("AGORA_BACKUP__PITR", "false".to_owned()),
    ];
    let mut agora = Daemon::serve(&env, dir.path().join("agora.log"));
    agora.wait_ready(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let base = agora.base.clone();
    let token = crate::private_cluster::ann_in_town(&client, &base).await;
    let write = |title: String| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let response = client
                .post(format!("{base}/api/v1/communities/town/posts"))
                .bearer_auth(&token)
                .json(&json!({"title": title, "body": "x".repeat(2000)}))
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let status = response.status().as_u16();
            let code = if status == 201 {
                None
            } else {
                response.json::<Value>().await.ok().and_then(|b| b["code"].as_str().map(str::to_owned))
            };
            (status, retry_after, code)
        }
    };

    let mut acknowledged = Vec::new();
    for n in 0..5 {
        let title = format!("before {n}");
        assert_eq!(write(title.clone()).await.0, 201);
        acknowledged.push(title);
    }
    fill(&state.join("filler"));

    // Writes until the database cannot extend its files: 507, never 500.
    let mut refused = 0;
    for n in 0..400 {
        let title = format!("while full {n}");
        let (status, retry_after, code) = write(title.clone()).await;
        match status {
            201 => acknowledged.push(title),
            507 => {
                assert_eq!(retry_after.as_deref(), Some("60"));
                assert_eq!(code.as_deref(), Some("insufficient_storage"));
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            // The database restarting after it could not write its WAL: unavailable, not broken.
            503 => assert_eq!(retry_after.as_deref(), Some("5")),
            other => panic!("a write on a full disk answered {other} ({code:?}); log:\n{}", agora.log()),
        }
    }
    assert!(refused >= 5, "the disk never filled up");
    println!("disk full: {} writes acknowledged in all, then {refused} refused with 507", acknowledged.len());
    let listing = client.get(format!("{base}/api/v1/posts?community=town&sort=new&limit=100")).send().await.unwrap();
    assert_eq!(listing.status(), 200, "reads keep working");
    let page = client.get(format!("{base}/c/town")).send().await.unwrap();
    assert_eq!(page.status(), 200, "pages too");
    let ready: Value = client.get(format!("{base}/health/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["disk"], "full", "{ready}");
    let scrape = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metric(&scrape, "agora_writes_refused_disk_full_total") >= 5.0);

    std::fs::remove_file(state.join("filler")).unwrap();
    let title = "after space was freed".to_owned();
    eventually(Duration::from_secs(30), "writes to work again", || {
        let write = write(title.clone());
        async move { (write.await.0 == 201).then_some(()) }
    })
    .await;
    acknowledged.push(title);
    let stored = crate::private_cluster::titles(&client, &base).await;
    for title in &acknowledged {
        assert!(stored.contains(title), "{title} was acknowledged and is kept");
    }
    // PostgreSQL stops by design when it cannot write its WAL (with archiving on, WAL waits
    // for the archive, so a full disk can reach it); the supervisor restarted it, and this
    // same Agora process served throughout.
    assert_eq!(agora.child.try_wait().unwrap(), None, "Agora itself never stopped");
    agora.signal(libc::SIGTERM);
    assert_eq!(agora.wait_exit(Duration::from_secs(30)).await, Some(0));
}
