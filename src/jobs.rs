//! The job handlers of the running daemon: each queued kind mapped to the code that does it.

use actix_web::web;
use futures_util::future::BoxFuture;

use crate::app::AppState;
use crate::queue::worker::{Handler, JobError};
use crate::queue::{Job, JobKind};

/// Runs jobs against the app's state.
pub struct AppJobs {
    /// The state handlers use.
    pub state: web::Data<AppState>,
}

impl Handler for AppJobs {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let state = self.state.clone();
        Box::pin(async move {
            match job.kind {
                JobKind::Email => crate::email::run(&state, job.payload).await,
                JobKind::Summary => crate::summaries::run(&state, &state.summarizer, job.payload).await,
            }
        })
    }
}
