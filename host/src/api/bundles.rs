//! `/api/v1/rules/bundles`: upload, status, history, rollback and removal
//! of rule bundles. Ops or admin only.

use axum::{
    Json,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use super::{
    doc::{BundleName, UploadDigest},
    extract::{ApiJson, ApiPath, ApiQuery, Validate},
};
use crate::{
    AppState,
    auth::extract::Ops,
    error::{AppError, AppResult},
    rules::admin::policy_name,
    rules::bundle::{
        ActivationReport, BundleError, LocalState, shadow::ShadowReport, uploads::UploadProgress,
    },
    store::{
        bundles::{self, EventView, RevisionView},
        users::User,
    },
};

pub fn router(max_bundle_bytes: usize) -> OpenApiRouter<AppState> {
    // A bundle may be larger than an ordinary JSON body; the size check
    // with a clear reason happens in `unpack`.
    let bundle_limit = DefaultBodyLimit::max(max_bundle_bytes + 1);
    OpenApiRouter::new()
        .routes(routes!(upload, list).layer(bundle_limit))
        .routes(routes!(uploads))
        .routes(routes!(upload_progress))
        .routes(routes!(start_shadow, shadow_report, stop_shadow).layer(bundle_limit))
        .routes(routes!(promote_shadow))
        .routes(routes!(status, remove))
        .routes(routes!(history))
        .routes(routes!(rollback))
}

impl From<BundleError> for AppError {
    fn from(e: BundleError) -> Self {
        match e {
            BundleError::Refused(refusal) => AppError::Validation(refusal.to_string()),
            BundleError::NotFound => AppError::not_found("Bundle"),
            e @ BundleError::Busy => AppError::TooManyRequests {
                detail: e.to_string(),
                retry_after_secs: 5,
            },
            e @ BundleError::InFlight(_) => AppError::Conflict(e.to_string()),
            BundleError::Database(d) => AppError::from(d),
        }
    }
}

fn actor(caller: &User) -> String {
    format!("user:{}", caller.id)
}

/// Whether the caller asked not to wait (RFC 7240's `Prefer:
/// respond-async`, among any other preferences).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

fn upload_location(digest: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/v1/rules/bundles/uploads/{digest}"))
        .expect("a hex digest is a valid header value")
}

/// Uploads a bundle (`.tar.gz`, as built by `recengine rules pack`) and
/// activates it: 201 with the activation once it is live, or 422 with the
/// reason when it is refused (the active rules are then unchanged).
/// Compiling an interpreted (Python, JavaScript) component takes 10-20 s
/// on two cores; with `Prefer: respond-async` the answer is at once, 202
/// with the upload's progress, and `Location` is where to follow it.
/// Uploads take turns; 429 when four are already waiting.
#[utoipa::path(post, path = "/api/v1/rules/bundles", tag = "bundles",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A `.tar.gz` bundle (any content type is accepted)"),
    params(("Prefer" = Option<String>, Header,
        description = "`respond-async`: answer 202 at once and activate in the background")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = ActivationReport),
        (status = 202, body = UploadProgress, description = "Taken; follow `Location`"),
        (status = 403), (status = 409), (status = 413), (status = 422), (status = 429)))]
pub async fn upload(
    State(state): State<AppState>,
    Ops(caller): Ops,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let asynchronous = prefers_async(&headers);
    let (upload, taken) = match state.bundles.receive(&body).await {
        Ok(upload) => (upload, true),
        // The same archive again while it is on its way: an async caller
        // is answered with the first one's progress.
        Err(BundleError::InFlight(upload)) if asynchronous => (*upload, false),
        Err(e) => return Err(e.into()),
    };
    let digest = upload.digest.clone();
    let actor = actor(&caller);
    if asynchronous {
        if taken {
            let state = state.clone();
            let digest = digest.clone();
            tokio::spawn(async move {
                let outcome = state
                    .bundles
                    .activate_received(body.to_vec(), &digest, &actor)
                    .await;
                match outcome {
                    Ok(_) => state.recommendations_changed().await,
                    Err(e) => tracing::warn!(%digest, error = %e, "bundle upload refused"),
                }
            });
        }
        let mut response = (StatusCode::ACCEPTED, Json(upload)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::LOCATION, upload_location(&digest));
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
        return Ok(response);
    }
    let report = state
        .bundles
        .activate_received(body.to_vec(), &digest, &actor)
        .await?;
    state.recommendations_changed().await;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// The uploads on their way on this replica and the last ones done, newest
/// first (at most 32).
#[utoipa::path(get, path = "/api/v1/rules/bundles/uploads", tag = "bundles",
    security(("bearer" = [])),
    responses((status = 200, body = [UploadProgress]), (status = 403)))]
pub async fn uploads(State(state): State<AppState>, _: Ops) -> Json<Vec<UploadProgress>> {
    Json(state.bundles.uploads.list())
}

/// One upload's progress: queued, preparing (components compiled so far),
/// active (with the activation) or refused (with the reason).
#[utoipa::path(get, path = "/api/v1/rules/bundles/uploads/{digest}", tag = "bundles",
    params(UploadDigest), security(("bearer" = [])),
    responses((status = 200, body = UploadProgress), (status = 403), (status = 404)))]
pub async fn upload_progress(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(digest): ApiPath<String>,
) -> AppResult<Json<UploadProgress>> {
    state
        .bundles
        .uploads
        .get(&digest)
        .map(Json)
        .ok_or_else(|| AppError::not_found("Upload"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleSummary {
    pub name: String,
    /// The fleet's active revision (the database); `null` once deleted.
    pub active_revision: Option<String>,
    /// What this replica runs.
    pub running_revision: Option<String>,
    pub generation: i64,
    /// Set when this replica refused the active revision (e.g. unsigned,
    /// while `BUNDLE_PUBLIC_KEYS` requires signatures): its rules do not
    /// run here although the fleet lists it as active.
    pub refused_revision: Option<String>,
    /// This replica's last refusal for this bundle, with its reason.
    pub last_error: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/rules/bundles", tag = "bundles",
    security(("bearer" = [])),
    responses((status = 200, body = [BundleSummary]), (status = 403)))]
pub async fn list(State(state): State<AppState>, _: Ops) -> AppResult<Json<Vec<BundleSummary>>> {
    let local = state.bundles.local_state();
    let rows = bundles::active(&state.db).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                let here = local.get(&r.name);
                BundleSummary {
                    running_revision: here.and_then(|l| l.revision.clone()),
                    refused_revision: here.and_then(|l| l.refused_revision.clone()),
                    last_error: here.and_then(|l| l.last_error.clone()),
                    name: r.name,
                    active_revision: r.revision,
                    generation: r.generation,
                }
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleRuleState {
    pub name: String,
    pub kind: String,
    pub priority: i32,
    pub enabled: bool,
    pub failure_policy: &'static str,
    pub calls: u64,
    pub failures: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BundleStatus {
    pub name: String,
    pub active_revision: Option<String>,
    /// This replica: running revision, last success, last error.
    pub replica: LocalState,
    pub rules: Vec<BundleRuleState>,
    pub revisions: Vec<RevisionView>,
    /// Uploads of this bundle on their way on this replica (queued or
    /// compiling), with their progress.
    pub uploads: Vec<UploadProgress>,
}

#[utoipa::path(get, path = "/api/v1/rules/bundles/{name}", tag = "bundles", params(BundleName),
    security(("bearer" = [])),
    responses((status = 200, body = BundleStatus), (status = 403), (status = 404)))]
pub async fn status(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(name): ApiPath<String>,
) -> AppResult<Json<BundleStatus>> {
    let revisions = bundles::revisions(&state.db, &name).await?;
    let replica = state.bundles.local_state().remove(&name);
    let uploads = state.bundles.uploads.in_flight_for(&name);
    if revisions.is_empty() && replica.is_none() && uploads.is_empty() {
        return Err(AppError::not_found("Bundle"));
    }
    let active = bundles::active(&state.db)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .and_then(|r| r.revision);
    let set = state.rules.snapshot();
    let rules = set
        .rules
        .iter()
        .filter(|r| r.source.is_bundle(&name))
        .map(|r| {
            let counters = state.rules.counters(r.name());
            BundleRuleState {
                name: r.name().to_string(),
                kind: r.compiled.metadata.kind.as_str().to_string(),
                priority: r.priority,
                enabled: r.enabled,
                failure_policy: policy_name(r.policy),
                calls: counters.calls(),
                failures: counters.failures().values().sum(),
            }
        })
        .collect();
    Ok(Json(BundleStatus {
        name,
        active_revision: active,
        replica: replica.unwrap_or_default(),
        rules,
        revisions,
        uploads,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// 1 to 1000 (default 100), newest first.
    #[serde(default = "hundred")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: i64,
}

fn hundred() -> i64 {
    100
}

impl Validate for HistoryParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.limit) {
            return Err("limit must be between 1 and 1000".into());
        }
        Ok(())
    }
}

#[utoipa::path(get, path = "/api/v1/rules/bundles/{name}/history", tag = "bundles",
    params(BundleName, HistoryParams), security(("bearer" = [])),
    responses((status = 200, body = [EventView]), (status = 403)))]
pub async fn history(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(name): ApiPath<String>,
    ApiQuery(p): ApiQuery<HistoryParams>,
) -> AppResult<Json<Vec<EventView>>> {
    Ok(Json(bundles::history(&state.db, &name, p.limit).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Any revision uploaded before.
    pub revision: String,
}

impl Validate for RollbackRequest {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

#[utoipa::path(post, path = "/api/v1/rules/bundles/{name}/rollback", tag = "bundles", params(BundleName),
    request_body = RollbackRequest, security(("bearer" = [])),
    responses((status = 200, body = ActivationReport), (status = 403), (status = 404), (status = 422)))]
pub async fn rollback(
    State(state): State<AppState>,
    Ops(caller): Ops,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> AppResult<Json<ActivationReport>> {
    let report = state
        .bundles
        .rollback(&name, &body.revision, &actor(&caller))
        .await?;
    state.recommendations_changed().await;
    Ok(Json(report))
}

/// Deactivates the bundle (its rules leave the set); its revisions stay
/// for history and rollback.
#[utoipa::path(delete, path = "/api/v1/rules/bundles/{name}", tag = "bundles", params(BundleName),
    security(("bearer" = [])),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    Ops(caller): Ops,
    ApiPath(name): ApiPath<String>,
) -> AppResult<StatusCode> {
    state.bundles.delete(&name, &actor(&caller)).await?;
    state.recommendations_changed().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts a bundle in shadow on this replica: it runs beside the active
/// rules on live requests and its differences are reported; responses do
/// not change.
#[utoipa::path(post, path = "/api/v1/rules/bundles/shadow", tag = "bundles",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A `.tar.gz` bundle (any content type is accepted)"),
    security(("bearer" = [])),
    responses((status = 201, body = ShadowReport), (status = 403), (status = 413), (status = 422)))]
pub async fn start_shadow(
    State(state): State<AppState>,
    Ops(caller): Ops,
    body: Bytes,
) -> AppResult<(StatusCode, Json<ShadowReport>)> {
    let report = state
        .bundles
        .start_shadow(body.to_vec(), &actor(&caller))
        .await?;
    Ok((StatusCode::CREATED, Json(report)))
}

/// How the shadow bundle's answers differ from the live ones so far.
#[utoipa::path(get, path = "/api/v1/rules/bundles/shadow", tag = "bundles",
    security(("bearer" = [])),
    responses((status = 200, body = ShadowReport), (status = 403), (status = 404)))]
pub async fn shadow_report(State(state): State<AppState>, _: Ops) -> AppResult<Json<ShadowReport>> {
    let shadow = state
        .bundles
        .shadow()
        .ok_or_else(|| AppError::not_found("Shadow bundle"))?;
    Ok(Json(shadow.report()))
}

/// Ends the shadow; answers with its final report.
#[utoipa::path(delete, path = "/api/v1/rules/bundles/shadow", tag = "bundles",
    security(("bearer" = [])),
    responses((status = 200, body = ShadowReport), (status = 403), (status = 404)))]
pub async fn stop_shadow(State(state): State<AppState>, _: Ops) -> AppResult<Json<ShadowReport>> {
    Ok(Json(
        state
            .bundles
            .stop_shadow()
            .ok_or_else(|| AppError::not_found("Shadow bundle"))?,
    ))
}

/// Activates the shadowed revision for the fleet.
#[utoipa::path(post, path = "/api/v1/rules/bundles/shadow/promote", tag = "bundles",
    security(("bearer" = [])),
    responses((status = 200, body = ActivationReport), (status = 403), (status = 404), (status = 422)))]
pub async fn promote_shadow(
    State(state): State<AppState>,
    Ops(caller): Ops,
) -> AppResult<Json<ActivationReport>> {
    let report = state.bundles.promote_shadow(&actor(&caller)).await?;
    state.recommendations_changed().await;
    Ok(Json(report))
}
