//! The jobs of the daemon: one serde enum of every payload the queue carries, with the inputs
//! it holds. The running app maps each to its handler (`app::AppJobs`).

use serde::{Deserialize, Serialize};

pub use crate::email::EmailJob;
use crate::queue::{Job, JobKind, NewJob};

/// The input of a summary job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryJob {
    /// The post whose thread is summarized.
    pub post_id: i64,
}

/// The input of an image job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageJob {
    /// The upload to process.
    pub upload_id: i64,
}

/// What a queued job does, with its input. The queue stores the kind beside the input's JSON
/// (the same bytes as before this enum existed), so queues written by earlier versions run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Send an email.
    Email(EmailJob),
    /// Summarize a thread.
    Summary(SummaryJob),
    /// Process an uploaded image.
    Image(ImageJob),
}

impl Payload {
    /// The queue kind (its priority and concurrency).
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Email(_) => JobKind::Email,
            Self::Summary(_) => JobKind::Summary,
            Self::Image(_) => JobKind::Image,
        }
    }

    /// The job to enqueue.
    pub fn into_job(self) -> Result<NewJob, serde_json::Error> {
        let kind = self.kind();
        let input = match self {
            Self::Email(email) => serde_json::to_value(email)?,
            Self::Summary(summary) => serde_json::to_value(summary)?,
            Self::Image(image) => serde_json::to_value(image)?,
        };
        Ok(NewJob::new(kind, input))
    }

    /// The payload of a leased job.
    pub fn of(job: &Job) -> Result<Self, serde_json::Error> {
        let input = job.payload.clone();
        Ok(match job.kind {
            JobKind::Email => Self::Email(serde_json::from_value(input)?),
            JobKind::Summary => Self::Summary(serde_json::from_value(input)?),
            JobKind::Image => Self::Image(serde_json::from_value(input)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_keeps_its_kind_and_input_through_the_queue_format() {
        let payloads = [
            Payload::Email(EmailJob::Reply { recipient_id: 7, comment_id: 9 }),
            Payload::Summary(SummaryJob { post_id: 42 }),
        ];
        for payload in payloads {
            let new = payload.clone().into_job().expect("encodes");
            let job = Job {
                id: 1,
                kind: new.kind,
                payload: new.payload,
                attempts: 1,
                max_attempts: 3,
                dedup_key: None,
                traceparent: None,
                enqueued_at_ms: 0,
                last_error: None,
            };
            assert_eq!(Payload::of(&job).expect("decodes"), payload);
        }
        let summary = Payload::Summary(SummaryJob { post_id: 42 }).into_job().expect("encodes");
        assert_eq!(summary.payload, serde_json::json!({"post_id": 42}), "the stored input is unchanged");
    }
}
