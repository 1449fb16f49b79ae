//! Extractors that answer bad input the way the API promises: a JSON
//! `{"detail"}` with a 4xx, never axum's plain-text rejections.
//!
//! Status codes follow the FastAPI service the clients were written for:
//! a body, query or path that does not parse or validate is 422; a body
//! over the size limit is 413; a body without a JSON content type is 415.

use axum::{
    extract::{
        FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// Types that check their own values after parsing.
pub trait Validate {
    fn validate(&self) -> Result<(), String>;
}

/// A JSON body, parsed then validated.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        value.validate().map_err(AppError::Validation)?;
        Ok(Self(value))
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            AppError::Validation(format!("Invalid request body: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            AppError::Validation(format!("Malformed JSON body: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => AppError::Rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected a body with Content-Type: application/json".into(),
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::Rejected(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large".into(),
        ),
        other => AppError::Rejected(other.status(), other.body_text()),
    }
}

/// Query parameters, parsed then validated.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|e: QueryRejection| {
                    AppError::Validation(format!("Invalid query parameters: {}", e.body_text()))
                })?;
        value.validate().map_err(AppError::Validation)?;
        Ok(Self(value))
    }
}

/// Path parameters; a non-numeric id is 422, as in the FastAPI service.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| {
                AppError::Validation(format!("Invalid path parameter: {}", e.body_text()))
            })?;
        Ok(Self(value))
    }
}

/// `skip` / `limit` pagination shared by every list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Rows to skip (default 0).
    #[serde(default)]
    pub skip: i64,
    /// Rows to return, 1 to 1000 (default 100).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

pub const MAX_PAGE_SIZE: i64 = 1000;

fn default_limit() -> i64 {
    100
}

impl Validate for Pagination {
    fn validate(&self) -> Result<(), String> {
        if self.skip < 0 {
            return Err("skip must be greater than or equal to 0".into());
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.limit) {
            return Err(format!("limit must be between 1 and {MAX_PAGE_SIZE}"));
        }
        Ok(())
    }
}

impl From<Pagination> for crate::store::Page {
    fn from(p: Pagination) -> Self {
        crate::store::Page {
            skip: p.skip,
            limit: p.limit,
        }
    }
}
