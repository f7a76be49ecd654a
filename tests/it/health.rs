use std::time::Duration;

use agora::db::cluster::{ClusterOptions, PrivateCluster};

use crate::harness::{TestDb, eventually, spawn_app, spawn_app_on, world_traversable_tempdir};

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn readiness_reports_every_check() {
    let app = spawn_app().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "up");
    assert_eq!(body["checks"]["disk"], "ok");
    assert_eq!(body["checks"]["replicas"], serde_json::json!({}));
    app.stop().await;
}

#[tokio::test]
async fn request_id_is_echoed_when_sent_and_made_up_otherwise() {
    let app = spawn_app().await;
    let echoed =
        app.client.get(format!("{}/health/live", app.base)).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let unusable = app
        .client
        .get(format!("{}/health/live", app.base))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    let generated = unusable.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID replaces an unusable id: {generated}");
    app.stop().await;
}

/// The database goes away and comes back: readiness follows without restarting Agora.
#[tokio::test]
async fn readiness_follows_the_database_down_and_back_up() {
    let dir = world_traversable_tempdir("agora-ready-");
    let root = dir.path().join("pg");
    let options = ClusterOptions { throwaway: true, max_connections: 20, ..ClusterOptions::default() };
    // Started on this test's thread, which outlives the cluster.
    let mut cluster = PrivateCluster::start(&root, &options).expect("start a cluster");
    agora::db::create_database_if_missing(&cluster.url("postgres"), "agora").await.expect("create database");
    let db = TestDb::unmanaged(cluster.url("agora"));
    let app = spawn_app_on(db, |config| config.database.health_timeout_ms = 500).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    cluster.stop().expect("stop the database");
    let body: serde_json::Value = eventually(Duration::from_secs(20), "readiness to fail", || async {
        let response = app.get("/health/ready").await;
        if response.status() == 503 { response.json().await.ok() } else { None }
    })
    .await;
    assert_eq!(body["status"], "unready");
    assert_eq!(body["checks"]["database"], "down");
    assert_eq!(app.get("/health/live").await.status(), 200, "liveness does not depend on the database");
    // Browser users get a page that says so, not a bare error.
    let page = app.get("/p/1").await;
    assert_eq!(page.status(), 503);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Temporarily unavailable"));

    let cluster = PrivateCluster::start(&root, &options).expect("restart the database");
    eventually(Duration::from_secs(20), "readiness to recover", || async {
        (app.get("/health/ready").await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(app.get("/").await.status(), 200, "pages serve again");
    app.stop().await;
    drop(cluster);
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_no_cors_grant() {
    let app = spawn_app().await;
    let responses = [
        app.get("/health/live").await,
        app.get("/api/v1/posts").await,
        app.get("/no/such/page").await,
        app.client
            .get(format!("{}/api/v1/posts", app.base))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    ];
    for response in responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "strict-origin-when-cross-origin");
        assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
        assert!(headers["permissions-policy"].to_str().unwrap().contains("camera=()"));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(!headers.contains_key("access-control-allow-origin"), "CORS is closed by default");
    }
    app.stop().await;
}

/// A client that sends its request head one byte per second (slowloris) is cut off once the
/// head timeout passes, while other clients are served meanwhile.
#[tokio::test]
async fn a_slow_client_is_cut_off_while_others_are_served() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::harness::spawn_app_with(|config| config.server.client_request_timeout_ms = 2000).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaa" {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        // Meanwhile a normal client is served at once.
        assert_eq!(app.get("/health/live").await.status(), 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        cut_off || answer.starts_with("HTTP/1.1 408") || matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the slow client must be answered 408 or disconnected, got {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(6), "cut off soon after the 2 s head timeout");
    app.stop().await;
}

#[tokio::test]
async fn text_responses_are_compressed_as_the_client_accepts() {
    let app = spawn_app().await;
    app.token_for("alice").await;
    for (accept, expected) in
        [("br", Some("br")), ("gzip", Some("gzip")), ("gzip;q=0.5, br", Some("br")), ("identity", None)]
    {
        let response = app
            .client
            .get(format!("{}/api/v1/openapi.json", app.base))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let encoding = response.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(encoding.as_deref(), expected, "Accept-Encoding: {accept}");
        assert!(response.headers()["vary"].to_str().unwrap().to_lowercase().contains("accept-encoding"));
    }
    let plain = app.get("/api/v1/openapi.json").await;
    assert!(plain.headers().get("content-encoding").is_none(), "nothing is compressed unasked");

    // Token-bearing answers stay uncompressed whatever the client accepts (BREACH).
    let login = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("accept-encoding", "gzip, br")
        .json(&serde_json::json!({"login": "alice", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.headers().get("content-encoding").is_none());
    assert!(login.json::<serde_json::Value>().await.unwrap()["access_token"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn compressed_error_bodies_decode() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/api/v1/posts/abc", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let bytes = response.bytes().await.unwrap();
    let mut decoded = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut decoded).unwrap();
    let problem: serde_json::Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(problem["code"], "bad_request");
    app.stop().await;
}

#[tokio::test]
async fn unix_socket_listeners_serve_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agora.sock");
    let path = socket.clone();
    let app = crate::harness::spawn_app_with(move |config| {
        config.server.listen.push(agora::config::ListenAddr::Unix(path));
    })
    .await;
    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: agora\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    app.stop().await;
}
