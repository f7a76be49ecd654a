//! The job handlers of the running daemon: each queued kind mapped to the code that does it.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::queue::worker::{Handler, JobError};
use crate::queue::{Job, JobKind};
use crate::service::Context;

/// Runs jobs against the service context.
pub struct AppJobs {
    /// The context handlers use.
    pub ctx: Arc<Context>,
}

impl Handler for AppJobs {
    fn run(&self, job: Job) -> BoxFuture<'static, Result<(), JobError>> {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            match job.kind {
                JobKind::Email => crate::email::run(&ctx, job.payload).await,
                JobKind::Summary => crate::summaries::run(&ctx, &ctx.summarizer, job.payload).await,
            }
        })
    }
}
