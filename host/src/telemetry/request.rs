//! Per-request plumbing: the request id and the access log line.
//!
//! The request id is the client's `X-Request-ID` when it sent a sane one, a
//! fresh UUID otherwise; it is echoed on the response and attached (through
//! a span) to every log line written while serving the request.

use std::time::Instant;

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id we echo; anything longer (or not
/// printable ASCII) is replaced, so a client cannot stuff the logs.
const MAX_CLIENT_REQUEST_ID: usize = 128;

/// Handlers that know who is calling put this in the response extensions,
/// so the access log line can name the user.
#[derive(Clone, Copy, Debug)]
pub struct AuthenticatedUser(pub i64);

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_CLIENT_REQUEST_ID
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header = HeaderValue::from_str(&request_id).expect("validated as visible ASCII");
    req.headers_mut().insert(REQUEST_ID.clone(), header.clone());

    let method = req.method().clone();
    let url = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let span = tracing::info_span!("request", request_id = %request_id);

    let mut response = next.run(req).instrument(span.clone()).await;
    response.headers_mut().insert(REQUEST_ID.clone(), header);

    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status_code = response.status().as_u16();
    let user_id = response
        .extensions()
        .get::<AuthenticatedUser>()
        .map(|u| u.0);
    let _entered = span.enter();
    tracing::info!(
        target: "recengine::access",
        method = %method,
        url = %url,
        status_code,
        duration_ms = (duration_ms * 1000.0).round() / 1000.0,
        user_id,
        "request completed"
    );
    response
}
