//! Reading a `multipart/form-data` body, as the upload API and the pages' image forms send
//! it: the `file` part streamed to disk (`service::media::Receiving`, which enforces the size
//! limit as it goes), the other parts kept as short text fields.

use std::collections::HashMap;

use actix_multipart::{Multipart, MultipartError};
use futures_util::StreamExt;

use crate::error::{AppError, ErrorCode};
use crate::service::Context;
use crate::service::media::Receiving;

/// The longest text field kept (a post's body is the longest a form sends).
const MAX_TEXT_FIELD: usize = 64 * 1024;

/// A read multipart form.
pub struct MultipartForm {
    /// The text fields by name (the first of each name).
    pub fields: HashMap<String, String>,
    /// The `file` part, when it was sent and not empty of a name.
    pub file: Option<Receiving>,
}

impl MultipartForm {
    /// A text field, or "".
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// A checkbox: present and not empty.
    pub fn checked(&self, name: &str) -> bool {
        !self.text(name).is_empty()
    }
}

fn multipart_error(err: MultipartError) -> AppError {
    match err {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => {
            AppError::new(ErrorCode::UnsupportedMediaType, "the body must be multipart/form-data")
        }
        other => AppError::new(ErrorCode::BadRequest, format!("the multipart body does not parse: {other}")),
    }
}

/// Reads the whole form. A browser sends an empty `file` part (no file name, no bytes) when
/// no file was chosen: that counts as no file.
pub async fn read(ctx: &Context, multipart: &mut Multipart) -> Result<MultipartForm, AppError> {
    let mut form = MultipartForm { fields: HashMap::new(), file: None };
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" && form.file.is_none() {
            let chosen = field.content_disposition().and_then(|d| d.get_filename()).is_none_or(|f| !f.is_empty());
            let mut receiving = Receiving::start(ctx).await?;
            while let Some(chunk) = field.next().await {
                receiving.write(&chunk.map_err(multipart_error)?).await?;
            }
            // A browser's "no file chosen" is an empty part without a file name; an API client's
            // empty file is still a file (refused as no image).
            if chosen || receiving.received() > 0 {
                form.file = Some(receiving);
            }
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if text.len() + chunk.len() > MAX_TEXT_FIELD {
                return Err(AppError::new(ErrorCode::PayloadTooLarge, format!("the field `{name}` is too long")));
            }
            text.extend_from_slice(&chunk);
        }
        let text =
            String::from_utf8(text).map_err(|_| AppError::bad_request(format!("the field `{name}` is not UTF-8")))?;
        form.fields.entry(name).or_insert(text);
    }
    Ok(form)
}
