//! Extractors that answer bad input the way the API promises: a JSON
//! `{"detail"}` with a 4xx, never axum's plain-text rejections.
//!
//! Status codes follow the FastAPI service the clients were written for:
//! a body, query or path that does not parse or validate is 422; a body
//! over the size limit is 413; a body without a JSON content type is 415.
//!
//! A string holding a NUL character (U+0000) is refused here, once, for
//! every route: PostgreSQL cannot store one in `TEXT` (it fails the query,
//! a 500) while SQLite stores it, so without this the two backends answered
//! the same request differently. The check is a SIMD substring search on
//! the raw body, query or path; only input that contains an escaped or
//! percent-encoded NUL is parsed a second time, to name the field.

use axum::{
    body::Bytes,
    extract::{
        FromRequest, FromRequestParts, RawPathParams, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

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
        if !json_content_type(req.headers()) {
            return Err(AppError::Rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected a body with Content-Type: application/json".into(),
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::Rejected(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body too large".into(),
                )
            } else {
                AppError::Rejected(e.status(), e.body_text())
            }
        })?;
        // A body refused only for an integer written `96.0` is parsed again
        // (see `integral_floats`).
        let value = match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(value)) => value,
            Err(JsonRejection::JsonDataError(e)) => integral_floats(&body)
                .ok_or_else(|| json_rejection(JsonRejection::JsonDataError(e)))?,
            Err(other) => return Err(json_rejection(other)),
        };
        refuse_nul_in_json(&body)?;
        value.validate().map_err(AppError::Validation)?;
        Ok(Self(value))
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` asks.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.is_char_boundary(subtype.len() - 5)
                && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// The NUL message, naming where it was found (a field name comes from
/// the client: cut to a readable length).
fn nul_refused(place: &str, field: &str) -> AppError {
    let mut end = field.len().min(120);
    while !field.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < field.len() { "..." } else { "" };
    AppError::Validation(format!(
        "{place}: {}{cut}: NUL characters (U+0000) are not allowed",
        &field[..end]
    ))
}

/// 422 naming the field if a JSON body holds a NUL in any string or key.
/// A raw NUL byte is already invalid JSON; the only way to send one is the
/// escape `\u0000`, so bodies without that sequence skip the walk.
pub fn refuse_nul_in_json(body: &[u8]) -> Result<(), AppError> {
    if memchr::memmem::find(body, br"\u0000").is_none() {
        return Ok(());
    }
    // The sequence may be an escaped backslash followed by "u0000": only
    // the parsed strings can tell.
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match nul_field(&value, String::new()) {
        Some(field) => Err(nul_refused("Invalid request body", &field)),
        None => Ok(()),
    }
}

/// The path (`a.b[2].c`) of the first string or key holding a NUL.
fn nul_field(value: &Value, path: String) -> Option<String> {
    let named = |path: &str| {
        if path.is_empty() {
            "(the body)".to_string()
        } else {
            path.to_string()
        }
    };
    match value {
        Value::String(s) => s.contains('\0').then(|| named(&path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(format!("{} (a key)", child.replace('\0', "\\u0000")))
            } else {
                nul_field(v, child)
            }
        }),
        _ => None,
    }
}

/// JSON Schema, the OpenAPI document and the FastAPI service this one
/// replaces all count `96.0` as the integer 96; serde does not. A body
/// refused for its data is parsed again with every integral float written
/// as an integer (up to 2^53, where floats stop being exact). Free-form
/// JSON in such a body (`features`, `preferences`) keeps the value, written
/// as an integer.
fn integral_floats<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn integerize(value: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        match value {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
                    *value = Value::from(f as i64);
                    true
                }
                _ => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |c, v| integerize(v) | c),
            Value::Object(map) => map.values_mut().fold(false, |c, v| integerize(v) | c),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    // Nothing to rewrite: the first refusal stands.
    integerize(&mut value).then(|| serde_json::from_value(value).ok())?
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
        if let Some(query) = parts.uri.query()
            && has_encoded_nul(query)
        {
            // Percent-decoded like the parser below decodes them.
            if let Some((key, _)) = form_urlencoded::parse(query.as_bytes())
                .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            {
                return Err(nul_refused(
                    "Invalid query parameters",
                    &key.replace('\0', "%00"),
                ));
            }
        }
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
        if has_encoded_nul(parts.uri.path())
            && let Ok(params) = RawPathParams::from_request_parts(parts, state).await
            && let Some((key, _)) = params.iter().find(|(_, v)| v.contains('\0'))
        {
            return Err(nul_refused("Invalid path parameter", key));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(e) => integral_path(parts, state).await.map(Self).ok_or_else(|| {
                let e: PathRejection = e;
                AppError::Validation(format!("Invalid path parameter: {}", e.body_text()))
            }),
        }
    }
}

/// `%00` anywhere: a NUL once decoded (a raw NUL is not a valid URI).
fn has_encoded_nul(raw: &str) -> bool {
    memchr::memmem::find(raw.as_bytes(), b"%00").is_some()
}

/// `/users/2.0` is user 2, as `96.0` in a body is 96 (see `integral_floats`):
/// the path is parsed again with integral-float segments as integers.
async fn integral_path<T, S>(parts: &mut Parts, state: &S) -> Option<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    fn integral(text: &str) -> Option<i64> {
        let (int, fraction) = text.split_once('.')?;
        if fraction.is_empty() || !fraction.bytes().all(|b| b == b'0') {
            return None;
        }
        int.parse().ok()
    }
    let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
        .await
        .ok()?;
    let mut rewritten = false;
    let mut values: Vec<serde_json::Value> = raw
        .iter()
        .map(|(_, text)| match integral(text) {
            Some(i) => {
                rewritten = true;
                i.into()
            }
            None => text
                .parse::<i64>()
                .map(Into::into)
                .unwrap_or_else(|_| text.into()),
        })
        .collect();
    if !rewritten {
        return None;
    }
    let value = if values.len() == 1 {
        values.pop()?
    } else {
        serde_json::Value::Array(values)
    };
    serde_json::from_value(value).ok()
}

/// `skip` / `limit` pagination shared by every list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Rows to skip (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub skip: i64,
    /// Rows to return, 1 to 1000 (default 100).
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 1000)]
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
