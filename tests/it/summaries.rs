//! AI summaries against real HTTP servers on loopback that speak the OpenAI chat completions
//! and Anthropic messages wire formats: the primary answers, the breaker opens and the
//! secondary answers, both down gives the extractive summary, and the breaker recovers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually, metric, spawn_app_with};

/// How a fake provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Answer,
    Fail,
    Hang,
}

/// One request a fake provider received.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: std::collections::BTreeMap<String, String>,
    body: Value,
}

/// A provider server: records each request and answers in its provider's real format.
struct FakeProvider {
    base: String,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    server: actix_web::dev::ServerHandle,
}

impl FakeProvider {
    async fn start(anthropic: bool) -> Self {
        let behaviour = Arc::new(Mutex::new(Behaviour::Answer));
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let (b, r) = (behaviour.clone(), requests.clone());
        let server = HttpServer::new(move || {
            let (b, r) = (b.clone(), r.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (b, r) = (b.clone(), r.clone());
                async move { answer(anthropic, &b, &r, req, &body).await }
            }))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let base = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { base, behaviour, requests, server: handle }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn last(&self) -> Recorded {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

/// The comment ids cited in a prompt, like `[c12]`.
fn ids_in(prompt: &str) -> Vec<String> {
    prompt.split("[c").skip(1).filter_map(|rest| rest.split(']').next()).map(str::to_owned).collect()
}

async fn answer(
    anthropic: bool,
    behaviour: &Mutex<Behaviour>,
    requests: &Mutex<Vec<Recorded>>,
    req: HttpRequest,
    body: &[u8],
) -> HttpResponse {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let headers = req.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
    requests.lock().unwrap().push(Recorded { path: req.path().to_owned(), headers, body: body.clone() });
    let current = *behaviour.lock().unwrap();
    if current == Behaviour::Hang {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    if current == Behaviour::Fail {
        return if anthropic {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(529).unwrap())
                .json(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
        } else {
            HttpResponse::InternalServerError().json(json!({"error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error", "param": null, "code": null}}))
        };
    }
    let prompt =
        if anthropic { body["messages"][0]["content"].as_str() } else { body["messages"][1]["content"].as_str() };
    let cited = ids_in(prompt.unwrap_or_default()).into_iter().next().unwrap_or_default();
    let text = format!("People discuss tomatoes [c{cited}]. Most say it is not too late.");
    if anthropic {
        HttpResponse::Ok().json(json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": body["model"], "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 120, "output_tokens": 30}
        }))
    } else {
        HttpResponse::Ok().json(json!({
            "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_764_000_000, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }))
    }
}

/// A post with three comments; returns (post id, comment ids).
async fn thread(app: &TestApp, token: &str, title: &str) -> (i64, Vec<i64>) {
    let community = json!({"name": "gardening", "title": "Gardening"});
    let _ = app.post_json("/api/v1/communities", &community, Some(token)).await;
    let post = json!({"title": title, "body": "Is it too late to plant tomatoes in November in a cold greenhouse?"});
    let response = app.post_json("/api/v1/communities/gardening/posts", &post, Some(token)).await;
    let post_id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for body in [
        "Tomatoes need warmth, so planting tomatoes in November only works with a heated greenhouse.",
        "I planted tomatoes in a cold greenhouse in November and the tomatoes did not grow at all.",
        "My cat likes sitting in the greenhouse window all day long.",
    ] {
        let response =
            app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &json!({"body": body}), Some(token)).await;
        ids.push(response.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    (post_id, ids)
}

/// Asks for the summary until it is ready; the first answer must be 202 pending.
async fn summary_of(app: &TestApp, token: &str, post_id: i64) -> Value {
    let first = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), token).await;
    assert_eq!(first.status(), 202);
    assert_eq!(first.json::<Value>().await.unwrap(), json!({"status": "pending"}));
    eventually(Duration::from_secs(20), "a ready summary", || async {
        let response = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), token).await;
        (response.status() == 200).then_some(())?;
        Some(response.json::<Value>().await.unwrap())
    })
    .await
}

fn configure(config: &mut agora::config::Config, openai: &FakeProvider, anthropic: &FakeProvider) {
    let s = &mut config.summaries;
    s.primary = "openai".into();
    s.secondary = "anthropic".into();
    s.openai_base_url = format!("{}/v1", openai.base);
    s.openai_api_key = "sk-test-openai".into();
    s.openai_model = "gpt-test".into();
    s.anthropic_base_url = anthropic.base.clone();
    s.anthropic_api_key = "sk-ant-test".into();
    s.anthropic_model = "claude-test".into();
    s.call_timeout_seconds = 1;
    s.breaker_min_calls = 2;
    s.breaker_open_seconds = 2;
    config.queue.poll_interval_ms = 50;
    config.queue.backoff_base_ms = 100;
}

#[tokio::test]
async fn the_primary_answers_in_the_openai_format_and_its_citations_become_source_ids() {
    let (openai, anthropic) = (FakeProvider::start(false).await, FakeProvider::start(true).await);
    let app = spawn_app_with(|config| configure(config, &openai, &anthropic)).await;
    let token = app.token_for("alice").await;
    let (post_id, comment_ids) = thread(&app, &token, "Tomatoes in November?").await;
    let summary = summary_of(&app, &token, post_id).await;
    assert_eq!(summary["status"], "ready");
    assert_eq!(summary["provider"], "openai");
    assert_eq!(summary["summary"], "People discuss tomatoes. Most say it is not too late.");
    let sources: Vec<i64> = serde_json::from_value(summary["source_comment_ids"].clone()).unwrap();
    assert_eq!(sources.len(), 1);
    assert!(comment_ids.contains(&sources[0]));
    assert!(summary["generated_at"].is_string());

    let Recorded { path, headers, body } = openai.last();
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(headers["authorization"], "Bearer sk-test-openai");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    let prompt = body["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("Tomatoes in November?") && comment_ids.iter().all(|id| prompt.contains(&format!("[c{id}]")))
    );
    assert_eq!(openai.calls(), 1, "queued once however often it is asked");
    assert_eq!(anthropic.calls(), 0);

    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_llm_calls_total{outcome=\"success\",provider=\"openai\"}"), 1.0);
    assert_eq!(metric(&scrape, "agora_llm_tokens_total{direction=\"input\",provider=\"openai\"}"), 100.0);
    assert!(metric(&scrape, "agora_llm_cost_usd_total{provider=\"openai\"}") > 0.0);
    assert_eq!(metric(&scrape, "agora_summaries_requests_total{result=\"hit\"}"), 1.0);
    assert_eq!(metric(&scrape, "agora_queue_jobs_enqueued_total{kind=\"summary\"}"), 1.0);
    app.stop().await;
    openai.server.stop(false).await;
    anthropic.server.stop(false).await;
}

#[tokio::test]
async fn a_failing_primary_opens_its_breaker_the_secondary_answers_and_the_primary_recovers() {
    let (openai, anthropic) = (FakeProvider::start(false).await, FakeProvider::start(true).await);
    openai.set(Behaviour::Fail);
    let app = spawn_app_with(|config| configure(config, &openai, &anthropic)).await;
    let token = app.token_for("alice").await;

    // Two failures (the breaker's minimum) open it; both summaries come from the secondary.
    for n in 0..2 {
        let (post_id, _) = thread(&app, &token, &format!("Failing primary {n}")).await;
        let summary = summary_of(&app, &token, post_id).await;
        assert_eq!(summary["provider"], "anthropic");
    }
    let Recorded { path, headers, body } = anthropic.last();
    assert_eq!(path, "/v1/messages");
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(body["model"], "claude-test");
    assert!(body["system"].as_str().unwrap().contains("summarize"));
    assert_eq!(body["messages"][0]["role"], "user");
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
    assert_eq!(openai.calls(), 2);
    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_llm_breaker_state{provider=\"openai\"}"), 1.0, "open");

    // While open, the primary is not called at all.
    let (post_id, _) = thread(&app, &token, "Breaker open").await;
    assert_eq!(summary_of(&app, &token, post_id).await["provider"], "anthropic");
    assert_eq!(openai.calls(), 2);
    assert!(
        metric(&app.scrape().await, "agora_summaries_fallbacks_total{provider=\"openai\",reason=\"breaker_open\"}")
            >= 1.0
    );

    // After the open period, one probe goes through; the primary is healthy again and closes it.
    openai.set(Behaviour::Answer);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (post_id, _) = thread(&app, &token, "Half open").await;
    assert_eq!(summary_of(&app, &token, post_id).await["provider"], "openai");
    assert_eq!(metric(&app.scrape().await, "agora_llm_breaker_state{provider=\"openai\"}"), 0.0, "closed");
    app.stop().await;
}

#[tokio::test]
async fn with_both_providers_down_readers_get_the_extractive_summary() {
    let (openai, anthropic) = (FakeProvider::start(false).await, FakeProvider::start(true).await);
    openai.set(Behaviour::Hang);
    anthropic.set(Behaviour::Fail);
    let app = spawn_app_with(|config| configure(config, &openai, &anthropic)).await;
    let token = app.token_for("alice").await;
    let (post_id, comment_ids) = thread(&app, &token, "Tomatoes in November?").await;
    let summary = summary_of(&app, &token, post_id).await;
    assert_eq!(summary["provider"], "extractive");
    let text = summary["summary"].as_str().unwrap();
    assert!(text.contains("tomatoes"), "{text}");
    let sources: Vec<i64> = serde_json::from_value(summary["source_comment_ids"].clone()).unwrap();
    assert!(!sources.is_empty() && sources.iter().all(|id| comment_ids.contains(id)));
    assert!(!sources.contains(&comment_ids[2]), "the off-topic comment is not drawn on");
    let scrape = app.scrape().await;
    assert_eq!(metric(&scrape, "agora_llm_calls_total{outcome=\"timeout\",provider=\"openai\"}"), 1.0);
    assert_eq!(metric(&scrape, "agora_llm_calls_total{outcome=\"error\",provider=\"anthropic\"}"), 1.0);
    assert_eq!(metric(&scrape, "agora_summaries_generated_total{provider=\"extractive\"}"), 1.0);
    app.stop().await;
}

#[tokio::test]
async fn summaries_are_cached_regenerated_on_material_change_limited_per_day_and_can_be_switched_off() {
    let app = spawn_app_with(|config| {
        config.summaries.daily_limit_per_user = 2;
        config.summaries.regenerate_after_comments = 2;
        config.queue.poll_interval_ms = 50;
    })
    .await;
    let token = app.token_for("alice").await;
    let (post_id, _) = thread(&app, &token, "Tomatoes in November?").await;
    let first = summary_of(&app, &token, post_id).await;
    assert_eq!(first["provider"], "extractive", "the built-in summarizer is the default");

    // One new comment is not a material change: the cached summary is served as it is.
    let comment = json!({"body": "Tomatoes from seed in November will sulk until spring."});
    app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &comment, Some(&token)).await;
    let again = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), &token).await.json::<Value>().await.unwrap();
    assert_eq!(again["generated_at"], first["generated_at"]);

    // A second one is: the old summary keeps serving while a new one is made (quota: 2 of 2).
    app.post_json(&format!("/api/v1/posts/{post_id}/comments"), &comment, Some(&token)).await;
    let stale = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), &token).await;
    assert_eq!(stale.status(), 200);
    eventually(Duration::from_secs(20), "the regenerated summary", || async {
        let now = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), &token).await.json::<Value>().await.ok()?;
        (now["generated_at"] != first["generated_at"]).then_some(())
    })
    .await;

    // The third new summary of the day is refused.
    let (other, _) = thread(&app, &token, "Peppers").await;
    let refused = app.get_as(&format!("/api/v1/posts/{other}/summary"), &token).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "rate_limited");

    // A community can switch summaries off.
    let off = json!({"summaries_enabled": false});
    let response = app.send_as(reqwest::Method::PATCH, "/api/v1/communities/gardening", Some(off), &token).await;
    assert_eq!(response.status(), 200);
    let response = app.get_as(&format!("/api/v1/posts/{post_id}/summary"), &token).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "summaries_disabled");
    assert_eq!(app.get("/api/v1/posts/999999/summary").await.status(), 404);
    app.stop().await;
}
