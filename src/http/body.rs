//! The JSON body of a request, which must be an object: serde would otherwise also read a
//! struct from an array of its fields (`[null, null]`), which the API document does not allow.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldError};

/// A request body read as a JSON object into `T` (malformed JSON, a wrong media type and an
/// oversize body are answered by the JSON configuration's error handler).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            if !value.is_object() {
                return Err(invalid("must be a JSON object").into());
            }
            serde_json::from_value(value).map(JsonBody).map_err(|err| invalid(&err.to_string()).into())
        })
    }
}

fn invalid(message: &str) -> AppError {
    AppError::validation(vec![FieldError { field: "body".into(), message: message.to_owned() }])
}
