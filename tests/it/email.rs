//! Email against a real SMTP server on loopback (aiosmtpd): welcome, password reset, reply and
//! mention notifications, unsubscribe links, and retries while the server refuses or is down.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agora::config::{Config, SmtpSecurity};
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, metric, spawn_app_with};

/// The SMTP server of one test; stops when dropped.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
}

fn python() -> &'static str {
    // Debian's interpreter has python3-aiosmtpd; a pyenv or venv python3 on PATH may not.
    if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" }
}

impl SmtpSink {
    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// Starts a server on `port` (or a free one).
    pub fn start_on(port: Option<u16>) -> Self {
        Self::launch(port, None)
    }

    /// Starts a server that speaks TLS (`starttls` or `tls`) with this certificate and key.
    pub fn start_tls(security: &str, cert: &std::path::Path, key: &std::path::Path) -> Self {
        Self::launch(None, Some((security, cert, key)))
    }

    fn launch(port: Option<u16>, tls: Option<(&str, &std::path::Path, &std::path::Path)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut command = Command::new(python());
        command.arg(script).arg(dir.path()).arg(port.unwrap_or(0).to_string());
        if let Some((security, cert, key)) = tls {
            command.arg(security).arg(cert).arg(key);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP sink did not start: {line:?}"));
        Self { child, port, dir }
    }

    /// `accept`, `refuse` or `delay SECONDS`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.path().join("mode"), mode).unwrap();
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Value> {
        self.messages().into_iter().filter(|m| m["rcpt_tos"][0] == address).collect()
    }

    /// Configures `config` to send through this server, retrying fast.
    pub fn configure(&self, config: &mut Config) {
        configure_smtp(config, self.port);
    }
}

/// Sends email to 127.0.0.1:`port` without TLS, with fast retries.
pub fn configure_smtp(config: &mut Config, port: u16) {
    config.email.smtp_host = "127.0.0.1".into();
    config.email.smtp_port = port;
    config.email.smtp_security = SmtpSecurity::None;
    config.email.timeout_seconds = 5;
    config.email.from = "Agora <agora@agora.test>".into();
    config.queue.poll_interval_ms = 50;
    config.queue.backoff_base_ms = 300;
    config.queue.email_max_attempts = 10;
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn first_message_to(sink: &SmtpSink, address: &str) -> Value {
    eventually(Duration::from_secs(15), &format!("an email to {address}"), || async {
        sink.to(address).into_iter().next()
    })
    .await
}

#[tokio::test]
async fn the_welcome_email_arrives_with_text_and_html_parts() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(|config| sink.configure(config)).await;
    app.register("alice").await;
    let message = first_message_to(&sink, "alice@example.com").await;
    assert_eq!(message["subject"], "Welcome to Agora, alice");
    assert_eq!(message["from"], "Agora <agora@agora.test>");
    assert_eq!(message["content_type"], "multipart/alternative");
    assert!(message["text"].as_str().unwrap().contains("Hi alice"));
    let html = message["html"].as_str().unwrap();
    assert!(html.contains("<a href=\"http://localhost:8080/\""), "{html}");
    assert!(message["list_unsubscribe"].is_null(), "account emails are not notifications");
    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_emails_total{outcome=\"sent\",template=\"welcome\"}"), 1.0);
    app.stop().await;
}

#[tokio::test]
async fn the_reset_email_carries_a_working_one_time_link() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(|config| sink.configure(config)).await;
    app.register("bob").await;
    let response = app.post_json("/api/v1/auth/password-reset", &json!({"email": "bob@example.com"}), None).await;
    assert_eq!(response.status(), 202);
    let reset = eventually(Duration::from_secs(15), "the reset email", || async {
        sink.to("bob@example.com").into_iter().find(|m| m["subject"] == "Reset your Agora password")
    })
    .await;
    let text = reset["text"].as_str().unwrap();
    let link = text.lines().find(|l| l.starts_with("http://localhost:8080/reset-password?token=")).unwrap();
    assert!(reset["html"].as_str().unwrap().contains(&link.replace('&', "&amp;")), "the HTML part has the same link");
    assert!(text.contains("expires in 1 hour"));
    let token = link.split("token=").nth(1).unwrap();
    let confirm = json!({"token": token, "new_password": "a-new-password-1"});
    assert_eq!(app.post_json("/api/v1/auth/password-reset/confirm", &confirm, None).await.status(), 204);
    assert_eq!(app.post_json("/api/v1/auth/password-reset/confirm", &confirm, None).await.status(), 400, "one time");
    let login = json!({"login": "bob", "password": "a-new-password-1"});
    assert_eq!(app.post_json("/api/v1/auth/login", &login, None).await.status(), 200);

    // Unknown addresses get the same answer and no email.
    let response = app.post_json("/api/v1/auth/password-reset", &json!({"email": "nobody@example.com"}), None).await;
    assert_eq!(response.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn a_refusing_server_makes_the_job_retry_until_it_accepts() {
    let sink = SmtpSink::start();
    sink.set_mode("refuse");
    let app = spawn_app_with(|config| sink.configure(config)).await;
    app.register("carol").await;
    eventually(Duration::from_secs(15), "a retried email job", || async {
        let scrape = app.scrape().await;
        (metric(&scrape, "agora_queue_jobs_retried_total{kind=\"email\"}") >= 2.0).then_some(())
    })
    .await;
    assert!(sink.to("carol@example.com").is_empty());
    let scrape = app.scrape().await;
    assert!(metric(&scrape, "agora_emails_total{outcome=\"failed\",template=\"welcome\"}") >= 1.0, "{scrape}");
    sink.set_mode("accept");
    let message = first_message_to(&sink, "carol@example.com").await;
    assert_eq!(message["subject"], "Welcome to Agora, carol");
    app.stop().await;
}

#[tokio::test]
async fn a_server_that_is_down_loses_no_email() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = spawn_app_with(|config| configure_smtp(config, port)).await;
    app.register("dave").await;
    eventually(Duration::from_secs(15), "a failed attempt", || async {
        let scrape = app.scrape().await;
        (metric(&scrape, "agora_queue_jobs_failed_total{kind=\"email\"}") >= 1.0).then_some(())
    })
    .await;
    let sink = SmtpSink::start_on(Some(port));
    let message = first_message_to(&sink, "dave@example.com").await;
    assert_eq!(message["subject"], "Welcome to Agora, dave");
    app.stop().await;
}

async fn post_in(app: &TestApp, token: &str) -> i64 {
    let community = json!({"name": "gardening", "title": "Gardening"});
    let _ = app.post_json("/api/v1/communities", &community, Some(token)).await;
    let post = json!({"title": "Tomatoes in November?", "body": "Is it too late to plant?"});
    let response = app.post_json("/api/v1/communities/gardening/posts", &post, Some(token)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn replies_and_mentions_notify_until_the_user_unsubscribes_by_link() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(|config| sink.configure(config)).await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    app.token_for("carol").await;
    let post_id = post_in(&app, &alice).await;

    let reply = json!({"body": "Not too late under glass. Ask u/carol, she grows them."});
    let response = app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &reply, Some(&bob)).await;
    assert_eq!(response.status(), 201);
    let comment_id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let notice = eventually(Duration::from_secs(15), "the reply email", || async {
        sink.to("alice@example.com").into_iter().find(|m| m["subject"].as_str().unwrap().contains("replied"))
    })
    .await;
    assert_eq!(notice["subject"], "bob replied to you in “Tomatoes in November?”");
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("Not too late under glass"));
    assert!(text.contains(&format!("http://localhost:8080/p/{post_id}#c{comment_id}")), "the comment on its page");
    assert!(text.contains("http://localhost:8080/unsubscribe?token="), "people get the page that asks first");
    assert_eq!(notice["list_unsubscribe_post"], "List-Unsubscribe=One-Click");
    let mention = eventually(Duration::from_secs(15), "the mention email", || async {
        sink.to("carol@example.com").into_iter().find(|m| m["subject"].as_str().unwrap().contains("mentioned"))
    })
    .await;
    assert_eq!(mention["subject"], "bob mentioned you in “Tomatoes in November?”");
    assert!(
        sink.to("bob@example.com").iter().all(|m| m["subject"].as_str().unwrap().starts_with("Welcome")),
        "never about oneself"
    );

    // The unsubscribe link works without signing in, and only for its own topic.
    let link = notice["list_unsubscribe"].as_str().unwrap().trim_matches(['<', '>']).to_owned();
    let link = link.replace("http://localhost:8080", &app.base);
    let response = app.client.post(&link).body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["topic"], "replies");
    assert_eq!(
        body["notification_settings"],
        json!({"email_on_reply": false, "email_on_mention": true, "email_on_message": true})
    );
    let tampered = format!("{}x", link);
    assert_eq!(app.client.get(&tampered).send().await.unwrap().status(), 400);

    let replies_before = sink.to("alice@example.com").len();
    let again = json!({"body": "Also: cover them at night."});
    assert_eq!(app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &again, Some(&bob)).await.status(), 201);
    // The job runs and decides not to send: wait for it to complete, then check.
    eventually(Duration::from_secs(15), "the second reply job", || async {
        let scrape = app.scrape().await;
        (metric(&scrape, "agora_queue_jobs_completed_total{kind=\"email\"}") >= 6.0).then_some(())
    })
    .await;
    assert_eq!(sink.to("alice@example.com").len(), replies_before, "alice turned reply emails off");
    app.stop().await;
}

#[tokio::test]
async fn a_private_message_is_emailed_and_a_blockers_notifications_are_not() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(|config| sink.configure(config)).await;
    let alice = app.token_for("alice").await;
    let bob = app.token_for("bob").await;
    let sent = app.post_json("/api/v1/messages", &json!({"to": "alice", "body": "Seeds for you?"}), Some(&bob)).await;
    assert_eq!(sent.status(), 201);
    let notice = eventually(Duration::from_secs(15), "the message email", || async {
        sink.to("alice@example.com").into_iter().find(|m| m["subject"] == "bob sent you a message")
    })
    .await;
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("Seeds for you?") && text.contains("http://localhost:8080/messages/bob"), "{text}");
    assert!(notice["list_unsubscribe"].as_str().is_some_and(|l| l.contains("/api/v1/unsubscribe?token=")));

    // Alice blocks Bob: his reply to her post brings her no email (and no inbox item).
    let post_id = post_in(&app, &alice).await;
    let blocked = app.send_as(reqwest::Method::PUT, "/api/v1/me/blocks/users/bob", None, &alice).await;
    assert_eq!(blocked.status(), 204);
    let reply = json!({"body": "Try a cold frame."});
    assert_eq!(app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &reply, Some(&bob)).await.status(), 201);
    // A message from Alice to Bob still goes: the block is hers, not his.
    let back = app.post_json("/api/v1/messages", &json!({"to": "bob", "body": "Thanks"}), Some(&alice)).await;
    assert_eq!(back.status(), 201);
    eventually(Duration::from_secs(15), "the message to bob", || async {
        sink.to("bob@example.com").into_iter().find(|m| m["subject"] == "alice sent you a message")
    })
    .await;
    assert!(
        sink.to("alice@example.com").iter().all(|m| !m["subject"].as_str().unwrap_or_default().contains("replied")),
        "no reply email from a blocked user"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_email_off_nothing_is_queued_and_readiness_says_so() {
    let app = spawn_app_with(|_| {}).await;
    app.register("erin").await;
    let response = app.post_json("/api/v1/auth/password-reset", &json!({"email": "erin@example.com"}), None).await;
    assert_eq!(response.status(), 202);
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["email"], "off: no email.smtp_host configured");
    assert_eq!(ready["checks"]["queue"], "ok");
    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_queue_jobs_enqueued_total{kind=\"email\"}"), 0.0);
    app.stop().await;
}

/// Runs `agora queue stats` against the daemon's state directory; returns the email row's
/// (ready, delayed, leased, dead).
fn email_queue_stats(state_dir: &std::path::Path, config: &std::path::Path) -> (u64, u64, u64, u64) {
    let output = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["queue", "stats"])
        .env("AGORA_CONFIG", config)
        .env("AGORA_PATHS__STATE_DIR", state_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    let row: Vec<u64> = text
        .lines()
        .find(|l| l.starts_with("email"))
        .map(|l| l.split_whitespace().skip(1).take(4).filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    (row[0], row[1], row[2], row[3])
}

/// The environment of a daemon that sends email through `sink` and retries fast, plus `extra`.
fn daemon_env(
    db: &crate::harness::TestDb,
    state_dir: &std::path::Path,
    sink: &SmtpSink,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("AGORA_PATHS__STATE_DIR", state_dir.display().to_string()),
        ("AGORA_RATE_LIMITS__ENABLED", "false".to_owned()),
        ("AGORA_EMAIL__SMTP_HOST", "127.0.0.1".to_owned()),
        ("AGORA_EMAIL__SMTP_PORT", sink.port.to_string()),
        ("AGORA_EMAIL__SMTP_SECURITY", "none".to_owned()),
        ("AGORA_QUEUE__POLL_INTERVAL_MS", "50".to_owned()),
        ("AGORA_QUEUE__BACKOFF_BASE_MS", "300".to_owned()),
    ];
    env.extend(extra.iter().map(|(key, value)| (*key, (*value).to_owned())));
    env
}

/// SIGKILL with email jobs queued and leased, then a restart: every user gets their welcome
/// email, and a message that went out twice (sent, then killed before the job was recorded)
/// carries the same Message-ID, so mail clients show it once.
#[tokio::test]
async fn a_killed_daemon_loses_no_queued_or_leased_job() {
    use crate::harness::{Daemon, TestDb};
    let sink = SmtpSink::start();
    sink.set_mode("delay 3");
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let env = daemon_env(&db, &state_dir, &sink, &[("AGORA_QUEUE__EMAIL_MAX_ATTEMPTS", "10")]);
    let mut first = Daemon::serve(&env, dir.path().join("first.log"));
    first.wait_ready(Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    let users: Vec<String> = (0..6).map(|n| format!("crash_user{n}")).collect();
    for user in &users {
        let body = json!({"username": user, "email": format!("{user}@example.com"), "password": "password123"});
        let response = client.post(format!("{}/api/v1/auth/register", first.base)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201);
    }
    let config = dir.path().join("first.toml");
    eventually(Duration::from_secs(10), "leased email jobs", || async {
        let (ready, _, leased, _) = email_queue_stats(&state_dir, &config);
        (leased >= 1 && ready >= 1).then_some(())
    })
    .await;
    first.signal(libc::SIGKILL);
    assert_eq!(first.wait_exit(Duration::from_secs(10)).await, None, "killed, no exit status");

    sink.set_mode("accept");
    let mut second = Daemon::serve(&env, dir.path().join("second.log"));
    second.wait_ready(Duration::from_secs(30)).await;
    for user in &users {
        let address = format!("{user}@example.com");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let messages = loop {
            let messages = sink.to(&address);
            if !messages.is_empty() {
                break messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no welcome email to {address}; first run:\n{}\nsecond run:\n{}",
                first.log(),
                second.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut ids: Vec<&str> = messages.iter().map(|m| m["message_id"].as_str().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 1, "one message as the user sees it: {messages:?}");
    }
    eventually(Duration::from_secs(10), "an empty queue", || async {
        (email_queue_stats(&state_dir, &dir.path().join("second.toml")) == (0, 0, 0, 0)).then_some(())
    })
    .await;
    assert!(second.log().contains("jobs leased by a previous run were put back in the queue"), "{}", second.log());
    second.signal(libc::SIGTERM);
    assert_eq!(second.wait_exit(Duration::from_secs(30)).await, Some(0));
}

/// SIGTERM stops leasing, lets the running job finish within the grace period, and leaves the
/// jobs not yet started in the queue for the next start.
#[tokio::test]
async fn sigterm_lets_running_jobs_finish_and_keeps_the_rest() {
    use crate::harness::{Daemon, TestDb};
    let sink = SmtpSink::start();
    sink.set_mode("delay 2");
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let env = daemon_env(&db, &state_dir, &sink, &[("AGORA_QUEUE__EMAIL_CONCURRENCY", "1")]);
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    daemon.wait_ready(Duration::from_secs(30)).await;
    let client = reqwest::Client::new();
    for n in 0..3 {
        let body = json!({"username": format!("term_user{n}"), "email": format!("term{n}@example.com"), "password": "password123"});
        let response = client.post(format!("{}/api/v1/auth/register", daemon.base)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 201);
    }
    let config = dir.path().join("agora.toml");
    eventually(Duration::from_secs(10), "a leased email job", || async {
        (email_queue_stats(&state_dir, &config).2 == 1).then_some(())
    })
    .await;
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0), "{}", daemon.log());
    assert_eq!(sink.messages().len(), 1, "the running job finished during the grace period");
    assert_eq!(email_queue_stats(&state_dir, &config), (2, 0, 0, 0), "the others wait for the next start");
}

/// STARTTLS (required) and implicit TLS against a server whose certificate a private CA
/// signed (`email.ca_file`); a server with an untrusted certificate gets nothing.
#[tokio::test]
async fn email_goes_out_over_starttls_and_implicit_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let (ca_file, cert_file, key_file) =
        (dir.path().join("ca.pem"), dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();

    for (security, mode) in [("starttls", SmtpSecurity::Starttls), ("tls", SmtpSecurity::Tls)] {
        let sink = SmtpSink::start_tls(security, &cert_file, &key_file);
        let ca = ca_file.display().to_string();
        let app = spawn_app_with(|config| {
            sink.configure(config);
            config.email.smtp_security = mode;
            config.email.ca_file = ca.clone();
        })
        .await;
        app.register("tls_user").await;
        let message = first_message_to(&sink, "tls_user@example.com").await;
        assert_eq!(message["subject"], "Welcome to Agora, tls_user", "{security}");
        app.stop().await;
    }

    // Without the CA the certificate is not trusted: the job retries and nothing is sent.
    let sink = SmtpSink::start_tls("starttls", &cert_file, &key_file);
    let app = spawn_app_with(|config| {
        sink.configure(config);
        config.email.smtp_security = SmtpSecurity::Starttls;
    })
    .await;
    app.register("untrusting").await;
    eventually(Duration::from_secs(15), "a failed attempt", || async {
        let scrape = app.scrape().await;
        (metric(&scrape, "agora_queue_jobs_failed_total{kind=\"email\"}") >= 1.0).then_some(())
    })
    .await;
    assert!(sink.messages().is_empty());
    app.stop().await;
}
