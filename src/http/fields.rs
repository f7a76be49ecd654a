//! Collecting every invalid field of a request into one 422 answer.

use crate::error::{AppError, FieldError};

/// Collects field errors so one response names every invalid field.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// The parsed value, or `None` after recording why `field` is invalid.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|err| self.0.push(FieldError { field: field.into(), message: err.to_string() })).ok()
    }

    /// The value when every field was valid, else a 422 naming all invalid fields.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, AppError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(AppError::validation(self.0)),
        }
    }
}
