//! Names in paths and queries, parsed at the edge: a name no community or user could have is
//! simply not found, and services only ever see valid names.

use crate::domain::{CommunityName, Username};
use crate::error::AppError;

/// The community a path or query names, or 404.
pub fn community(text: &str) -> Result<CommunityName, AppError> {
    CommunityName::lookup(text).ok_or_else(|| AppError::not_found("community"))
}

/// An optional `community` query parameter, or 404 when it names none.
pub fn optional_community(text: Option<&str>) -> Result<Option<CommunityName>, AppError> {
    text.map(community).transpose()
}

/// The user a path or body names, or 404.
pub fn user(text: &str) -> Result<Username, AppError> {
    Username::parse(text).map_err(|_| AppError::not_found("user"))
}
