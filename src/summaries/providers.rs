//! The LLM providers on the wire: OpenAI-compatible chat completions and Anthropic messages.

use std::time::Duration;

use serde_json::{Value, json};

/// The two wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `POST {base}/chat/completions` with a bearer key.
    OpenAi,
    /// `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// `openai` or `anthropic`: the metric label and the `provider` of a summary.
    pub name: &'static str,
    /// The wire format.
    pub wire: Wire,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// API key; may be empty for local OpenAI-compatible servers.
    pub api_key: crate::config::Secret,
    /// The model.
    pub model: String,
    /// US dollars per input token.
    pub input_price: f64,
    /// US dollars per output token.
    pub output_price: f64,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Tokens read.
    pub input_tokens: u32,
    /// Tokens written.
    pub output_tokens: u32,
}

/// Why a call failed, for logs and the breaker.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connection failed.
    #[error("unreachable: {0}")]
    Transport(String),
    /// The provider answered with an error status; `message` is from its error body.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The provider's error message.
        message: String,
    },
    /// The answer did not have the documented shape.
    #[error("unexpected answer: {0}")]
    Malformed(String),
}

impl Provider {
    /// The cost of a completion in US dollars.
    pub fn cost(&self, completion: &Completion) -> f64 {
        f64::from(completion.input_tokens) * self.input_price + f64::from(completion.output_tokens) * self.output_price
    }

    /// Sends `system` and `user` prompts and returns the completion.
    pub async fn complete(
        &self,
        client: &reqwest::Client,
        system: &str,
        user: &str,
        max_tokens: u32,
        timeout: Duration,
    ) -> Result<Completion, CallError> {
        let (url, body) = match self.wire {
            Wire::OpenAi => (
                format!("{}/chat/completions", self.base_url),
                json!({
                    "model": self.model,
                    "max_tokens": max_tokens,
                    "temperature": 0.2,
                    "messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": user},
                    ],
                }),
            ),
            Wire::Anthropic => (
                format!("{}/v1/messages", self.base_url),
                json!({
                    "model": self.model,
                    "max_tokens": max_tokens,
                    "system": system,
                    "messages": [{"role": "user", "content": user}],
                }),
            ),
        };
        let mut request = client
            .post(&url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).map_err(|err| CallError::Malformed(err.to_string()))?);
        request = match self.wire {
            Wire::OpenAi if self.api_key.is_empty() => request,
            Wire::OpenAi => request.header("authorization", format!("Bearer {}", self.api_key.expose())),
            Wire::Anthropic => {
                request.header("x-api-key", self.api_key.expose()).header("anthropic-version", "2023-06-01")
            }
        };
        let response = request.send().await.map_err(|err| {
            if err.is_timeout() { CallError::Timeout(timeout) } else { CallError::Transport(err.to_string()) }
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|err| {
            if err.is_timeout() { CallError::Timeout(timeout) } else { CallError::Transport(err.to_string()) }
        })?;
        let answer: Value = serde_json::from_slice(&bytes).map_err(|err| {
            if status.is_success() {
                CallError::Malformed(err.to_string())
            } else {
                CallError::Status {
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                }
            }
        })?;
        if !status.is_success() {
            // Both providers put the message at error.message.
            let message = answer["error"]["message"].as_str().unwrap_or("no error message").to_owned();
            return Err(CallError::Status { status: status.as_u16(), message });
        }
        let (text, input, output) = match self.wire {
            Wire::OpenAi => (
                answer["choices"][0]["message"]["content"].as_str(),
                answer["usage"]["prompt_tokens"].as_u64(),
                answer["usage"]["completion_tokens"].as_u64(),
            ),
            Wire::Anthropic => (
                answer["content"]
                    .as_array()
                    .and_then(|blocks| blocks.iter().find(|b| b["type"] == "text"))
                    .and_then(|b| b["text"].as_str()),
                answer["usage"]["input_tokens"].as_u64(),
                answer["usage"]["output_tokens"].as_u64(),
            ),
        };
        let text = text
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CallError::Malformed("no text in the answer".to_owned()))?;
        Ok(Completion {
            text: text.to_owned(),
            input_tokens: u32::try_from(input.unwrap_or(0)).unwrap_or(u32::MAX),
            output_tokens: u32::try_from(output.unwrap_or(0)).unwrap_or(u32::MAX),
        })
    }
}
