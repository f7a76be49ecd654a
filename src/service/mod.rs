//! Use cases, one function each: permissions, one transaction, cache invalidation. Handlers,
//! jobs and the CLI all call these; nothing here knows about HTTP.

pub mod accounts;
pub mod admin;
pub mod comments;
pub mod communities;
pub mod health;
pub mod moderation;
pub mod notifications;
pub mod posts;
pub mod users;
