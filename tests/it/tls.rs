//! HTTPS: HTTP/2 over rustls, HSTS, the plain-HTTP redirect, and certificate reload without
//! dropping connections.

use std::path::Path;

use crate::harness::spawn_app_with;

fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn new_certificate(dir: &Path, name: &str) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (certified.cert.pem().into_bytes(), cert, key)
}

#[tokio::test]
async fn https_speaks_http2_with_hsts_and_plain_http_is_redirected() {
    let app = spawn_app_with(|config| {
        config.tls.self_signed = true;
        config.tls.redirect_listen = "127.0.0.1:0".into();
    })
    .await;
    let port = app.app().public_addrs()[0].port();
    let pem = std::fs::read(app.state_dir.path().join("tls/self-signed.crt")).unwrap();
    let client = client_trusting(&pem);
    let response = client.get(format!("https://localhost:{port}/api/v1/posts")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN negotiates h2");
    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    let expiry = app.scrape().await;
    assert!(!expiry.contains("agora_tls_certificate_expiry_timestamp_seconds 0\n"), "the expiry is exported");

    let redirect_port = app.app().redirect_addr().unwrap().port();
    let plain = client.get(format!("http://localhost:{redirect_port}/api/v1/posts?sort=new")).send().await.unwrap();
    assert_eq!(plain.status(), 308);
    assert_eq!(plain.headers()["location"], format!("https://localhost:{port}/api/v1/posts?sort=new").as_str());
    assert!(!plain.headers().contains_key("strict-transport-security"), "HSTS only over HTTPS");
    let health = client.get(format!("http://localhost:{redirect_port}/health/live")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health checks answer on plain HTTP");
    app.stop().await;
}

#[tokio::test]
async fn a_new_certificate_is_served_to_new_handshakes_and_a_corrupt_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first_pem, cert, key) = new_certificate(dir.path(), "first");
    let (cert_path, key_path) = (cert.display().to_string(), key.display().to_string());
    let app = spawn_app_with(move |config| {
        config.tls.cert = cert_path;
        config.tls.key = key_path;
    })
    .await;
    let port = app.app().public_addrs()[0].port();
    let url = format!("https://localhost:{port}/health/live");
    let kept_alive = client_trusting(&first_pem);
    assert_eq!(kept_alive.get(&url).send().await.unwrap().status(), 200);

    let (second_pem, second_cert, second_key) = new_certificate(dir.path(), "second");
    std::fs::copy(&second_cert, &cert).unwrap();
    std::fs::copy(&second_key, &key).unwrap();
    app.app().reload_tls().unwrap();
    assert_eq!(kept_alive.get(&url).send().await.unwrap().status(), 200, "the open connection keeps working");
    assert_eq!(
        client_trusting(&second_pem).get(&url).send().await.unwrap().status(),
        200,
        "new handshakes get the new one"
    );
    assert!(client_trusting(&first_pem).get(&url).send().await.is_err(), "the old certificate is no longer served");

    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n").unwrap();
    assert!(app.app().reload_tls().is_err(), "a corrupt replacement is refused");
    assert_eq!(
        client_trusting(&second_pem).get(&url).send().await.unwrap().status(),
        200,
        "and the last good one serves on"
    );
    let metrics = app.scrape().await;
    assert!(metrics.contains(r#"agora_tls_reloads_total{outcome="success"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"agora_tls_reloads_total{outcome="failure"} 1"#));
    app.stop().await;
}

/// `kill -HUP` on the running daemon reloads the certificate while a client holds a
/// keep-alive connection.
#[tokio::test]
async fn sighup_reloads_the_certificate_of_the_running_daemon() {
    let db = crate::harness::TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (first_pem, cert, key) = new_certificate(dir.path(), "first");
    let env = [
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("AGORA_TLS__CERT", cert.display().to_string()),
        ("AGORA_TLS__KEY", key.display().to_string()),
        ("AGORA_SERVER__SHUTDOWN_GRACE_SECONDS", "2".to_owned()),
    ];
    let mut daemon = crate::harness::Daemon::serve(&env, dir.path().join("agora.log"));
    daemon.wait_ready(std::time::Duration::from_secs(60)).await;
    let url = format!("{}/health/live", daemon.base.replace("http://127.0.0.1", "https://localhost"));
    let kept_alive = client_trusting(&first_pem);
    assert_eq!(kept_alive.get(&url).send().await.unwrap().status(), 200);

    let (second_pem, second_cert, second_key) = new_certificate(dir.path(), "second");
    std::fs::copy(&second_cert, &cert).unwrap();
    std::fs::copy(&second_key, &key).unwrap();
    daemon.signal(libc::SIGHUP);
    crate::harness::eventually(std::time::Duration::from_secs(10), "the reload", || {
        let log = daemon.log();
        async move { log.contains("TLS certificate reloaded").then_some(()) }
    })
    .await;
    assert_eq!(kept_alive.get(&url).send().await.unwrap().status(), 200, "the open connection completes");
    assert_eq!(client_trusting(&second_pem).get(&url).send().await.unwrap().status(), 200);
    assert!(client_trusting(&first_pem).get(&url).send().await.is_err());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(std::time::Duration::from_secs(30)).await, Some(0), "{}", daemon.log());
}
