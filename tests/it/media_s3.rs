//! `media.storage = "s3"` against a real S3-compatible server started by the test
//! (`moto_server`, PyPI `moto[server]`, on loopback): images land in the bucket, two daemons
//! sharing it serve each other's uploads, and deleting the last upload empties it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{TestDb, eventually, spawn_app_on};
use crate::media::images;

/// A moto S3 server on a free loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    async fn start() -> Self {
        crate::harness::install_crypto_provider();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let venv = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/agora-moto/bin/moto_server");
        let program = if venv.is_file() { venv } else { std::path::PathBuf::from("moto_server") };
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = endpoint.clone();
        eventually(Duration::from_secs(30), "moto_server to answer", || {
            let probe = probe.clone();
            async move { reqwest::get(&probe).await.ok().map(drop) }
        })
        .await;
        Self { child, endpoint }
    }

    async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint)).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    }

    /// Whether the bucket holds `name`, asked with a signed request of the test's own.
    async fn object_status(&self, bucket: &str, name: &str) -> StatusCode {
        use object_store::ObjectStoreExt;
        let client = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("testing-key")
            .with_secret_access_key("testing-secret")
            .with_allow_http(true)
            .build()
            .unwrap();
        match client.head(&object_store::path::Path::from(name)).await {
            Ok(_) => StatusCode::OK,
            Err(object_store::Error::NotFound { .. }) => StatusCode::NOT_FOUND,
            Err(err) => panic!("head {name}: {err}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_live_in_the_bucket_and_every_daemon_serves_them() {
    let moto = Moto::start().await;
    moto.create_bucket("agora-media").await;
    let s3 = |config: &mut agora::config::Config| {
        config.media.storage = agora::config::MediaStorage::S3;
        config.media.s3_endpoint = moto.endpoint.clone();
        config.media.s3_bucket = "agora-media".into();
        config.media.s3_access_key_id = "testing-key".into();
        config.media.s3_secret_access_key = "testing-secret".into();
    };
    let db = TestDb::new().await;
    let url = db.url.clone();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("key").display().to_string();
    let first = spawn_app_on(db, |config| {
        s3(config);
        config.auth.signing_key_file = key_file.clone();
    })
    .await;
    let second = spawn_app_on(TestDb::unmanaged(url), |config| {
        s3(config);
        config.auth.signing_key_file = key_file.clone();
    })
    .await;
    let token = first.token_for("ann").await;
    let upload = first.uploaded(&token, images::png(700, 400)).await;
    assert_eq!(upload["status"], "ready", "{upload}");
    let original = upload["urls"]["original"].as_str().unwrap().to_owned();
    let name = original.trim_start_matches("/media/").to_owned();
    assert_eq!(moto.object_status("agora-media", &name).await, StatusCode::OK, "the image is in the bucket");
    let w640 = upload["urls"]["w640"].as_str().unwrap().trim_start_matches("/media/").to_owned();
    assert_eq!(moto.object_status("agora-media", &w640).await, StatusCode::OK);
    assert!(!first.state_dir.path().join("media").exists(), "nothing is stored locally");
    // The other daemon, which never saw the upload, serves it from the bucket.
    let served = second.media(&original).await;
    assert_eq!(served, first.media(&original).await);

    let deleted =
        first.send_as(reqwest::Method::DELETE, &format!("/api/v1/uploads/{}", upload["id"]), None, &token).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(moto.object_status("agora-media", &name).await, StatusCode::NOT_FOUND, "the bucket is emptied");
    assert_eq!(moto.object_status("agora-media", &w640).await, StatusCode::NOT_FOUND);
    assert_eq!(second.get(&original).await.status(), StatusCode::NOT_FOUND);
}
