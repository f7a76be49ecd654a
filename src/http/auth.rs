//! Who is calling: the `CurrentUser` extractor checks the bearer token on every request that
//! asks for it.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use crate::edge::HttpState;
use crate::edge::caller::{access_claims, bearer_token};
use crate::error::AppError;
use crate::service::accounts::{self, Authenticated};

/// A signed-in caller. A handler taking this answers 401 `unauthorized` to anyone else.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser(pub Authenticated);

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<HttpState>>().cloned();
        let has_token = bearer_token(req).is_some();
        let claims = state.as_ref().and_then(|state| access_claims(req, &state.auth));
        Box::pin(async move {
            let state = state.ok_or_else(|| AppError::internal(MissingState))?;
            if !has_token {
                return Err(AppError::unauthorized("sign in: send Authorization: Bearer <access_token>"));
            }
            let claims = claims.ok_or_else(|| AppError::unauthorized("the access token is invalid or expired"))?;
            accounts::authenticate(&state, &claims).await.map(CurrentUser)
        })
    }
}

/// The app state was not registered: a wiring bug, never a client error.
#[derive(Debug, thiserror::Error)]
#[error("application state is missing from the request")]
struct MissingState;

/// A caller who may or may not be signed in. No `Authorization` header is anonymous; a header
/// with a bad token is still a 401, so a client never silently loses its identity.
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<Authenticated>);

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if req.headers().contains_key(header::AUTHORIZATION) {
            let user = CurrentUser::from_request(req, payload);
            Box::pin(async move { user.await.map(|u| MaybeUser(Some(u.0))) })
        } else {
            Box::pin(async { Ok(MaybeUser(None)) })
        }
    }
}
