//! Use cases, one function each: permissions, one transaction, cache invalidation. Handlers,
//! jobs and the CLI all call these; nothing here knows about HTTP.

pub mod accounts;
pub mod admin;
pub mod cache;
pub mod cache_sync;
pub mod comments;
pub mod communities;
pub mod context;
pub mod health;
pub mod idempotency;
pub mod inbox;
pub mod media;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod posts;
pub mod reader;
pub mod users;
pub mod viewer;

/// Counts the database units of work a future makes (the pages report it per view).
pub use crate::db::count_queries as count_db_work;
pub use context::{Caches, Context};
