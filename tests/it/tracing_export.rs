//! OTLP/HTTP export against a real receiver on loopback: a server span with the HTTP semantic
//! convention attributes, a child database span, and the same trace id in the log line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::harness::{Daemon, TestDb, eventually};

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn receive(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            HttpResponse::Ok().content_type("application/x-protobuf").body(Vec::<u8>::new())
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

/// A minimal OTLP/HTTP traces receiver (protobuf), as a collector would run it.
fn start_receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let data = web::Data::new(received.clone());
    let server =
        HttpServer::new(move || App::new().app_data(data.clone()).route("/v1/traces", web::post().to(receive)))
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}/v1/traces"), received, handle)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

fn all_spans(received: &Received) -> Vec<Span> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_exports_a_server_span_with_a_database_child_and_logs_its_trace_id() {
    let (endpoint, received, receiver) = start_receiver();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("AGORA_TRACING__ENABLED", "true".to_owned()),
        ("AGORA_TRACING__ENDPOINT", endpoint),
        ("OTEL_SERVICE_NAME", "agora-under-test".to_owned()),
    ];
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    daemon.wait_ready(Duration::from_secs(60)).await;

    let inbound_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/posts/42", daemon.base))
        .header("traceparent", format!("00-{inbound_trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Stopping flushes the batch exporter.
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0), "{}", daemon.log());

    let server_span = exported_span(&received, "GET /api/v1/posts/{id}").await;
    let trace_id = hex(&server_span.trace_id);
    assert_eq!(trace_id, inbound_trace, "the inbound traceparent is continued");
    assert_eq!(attribute(&server_span, "http.request.method"), Some(&Value::StringValue("GET".into())));
    assert_eq!(attribute(&server_span, "http.route"), Some(&Value::StringValue("/api/v1/posts/{id}".into())));
    assert_eq!(attribute(&server_span, "http.response.status_code"), Some(&Value::IntValue(404)));

    let spans = all_spans(&received);
    let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
    let db_span = spans
        .iter()
        .find(|s| s.name == "posts.view_by_id" && descends_from(s, &server_span, &spans))
        .unwrap_or_else(|| panic!("no database span below the request span among {names:?}"));
    assert_eq!(db_span.trace_id, server_span.trace_id);
    assert_eq!(attribute(db_span, "db.system.name"), Some(&Value::StringValue("postgresql".into())));

    let resource_names: Vec<_> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.resource_spans.iter())
        .filter_map(|rs| rs.resource.as_ref())
        .flat_map(|r| r.attributes.iter())
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| kv.value.as_ref().and_then(|v| v.value.clone()))
        .collect();
    assert!(resource_names.contains(&Value::StringValue("agora-under-test".into())), "OTEL_SERVICE_NAME is honoured");

    let log_line = daemon
        .log_lines()
        .into_iter()
        .find(|line| line["message"] == "request completed" && line["http.route"] == "/api/v1/posts/{id}")
        .unwrap_or_else(|| panic!("no request log line in:\n{}", daemon.log()));
    assert_eq!(log_line["trace_id"], trace_id.as_str());
    assert_eq!(log_line["span_id"], hex(&server_span.span_id).as_str());
    assert!(log_line["request_id"].is_string());
    receiver.stop(false).await;
}

/// The first exported span named `name`, waiting for the exporter's batch.
async fn exported_span(received: &Received, name: &str) -> Span {
    eventually(Duration::from_secs(10), &format!("the span `{name}`"), || {
        let spans = all_spans(received);
        async move { spans.into_iter().find(|s| s.name == name) }
    })
    .await
}

/// Whether `span`'s chain of parents reaches `ancestor`.
fn descends_from(span: &Span, ancestor: &Span, spans: &[Span]) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        parent = spans.iter().find(|s| s.span_id == parent).map(|s| s.parent_span_id.clone()).unwrap_or_default();
    }
    false
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A queued job's span joins the trace of the request that queued it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_span_continues_the_trace_of_the_request_that_queued_it() {
    let (endpoint, received, receiver) = start_receiver();
    let sink = crate::email::SmtpSink::start();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AGORA_DATABASE__URL", db.url.clone()),
        ("AGORA_TRACING__ENABLED", "true".to_owned()),
        ("AGORA_TRACING__ENDPOINT", endpoint),
        ("AGORA_EMAIL__SMTP_HOST", "127.0.0.1".to_owned()),
        ("AGORA_EMAIL__SMTP_PORT", sink.port.to_string()),
        ("AGORA_EMAIL__SMTP_SECURITY", "none".to_owned()),
        ("AGORA_QUEUE__POLL_INTERVAL_MS", "50".to_owned()),
    ];
    let mut daemon = Daemon::serve(&env, dir.path().join("agora.log"));
    daemon.wait_ready(Duration::from_secs(60)).await;
    let inbound_trace = "0af7651916cd43dd8448eb211c80319c";
    let body = serde_json::json!({"username": "traced", "email": "traced@example.com", "password": "password123"});
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", daemon.base))
        .header("traceparent", format!("00-{inbound_trace}-b7ad6b7169203331-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    eventually(Duration::from_secs(15), "the welcome email", || async {
        (!sink.to("traced@example.com").is_empty()).then_some(())
    })
    .await;
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, Some(0), "{}", daemon.log());

    let job_span = exported_span(&received, "job email").await;
    assert_eq!(hex(&job_span.trace_id), inbound_trace, "the job continues the request's trace");
    assert_eq!(attribute(&job_span, "job.kind"), Some(&Value::StringValue("email".into())));
    let spans = all_spans(&received);
    let request_span = spans.iter().find(|s| s.name == "POST /api/v1/auth/register").expect("the request span");
    assert!(descends_from(&job_span, request_span, &spans), "the job hangs below the request");
    receiver.stop(false).await;
}
