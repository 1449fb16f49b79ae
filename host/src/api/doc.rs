//! What the OpenAPI document says beyond each handler's own annotation:
//! the error body, the sets of values some handlers check as plain
//! strings, and the error responses that follow from how a route is built
//! (filled in by [`StandardErrors`], so no route can forget one).
//!
//! Generated clients and schema fuzzers take the document at its word: an
//! undocumented status, a missing path parameter or a field typed `object`
//! that can be `null` breaks them, so the document must say all of it.

use serde::Serialize;
use utoipa::{
    IntoParams, Modify, ToSchema,
    openapi::{
        ContentBuilder, OpenApi, RefOr, Response,
        path::Operation,
        schema::Ref,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub detail: String,
}

/// The names `algorithm` accepts: `recommend::algorithms::NAMES` (a test
/// keeps the two equal).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Hybrid,
    Collaborative,
    ContentBased,
    Ease,
    ItemKnn,
    UserKnn,
    Popularity,
}

/// How `hybrid` combines its models: `recengine_models::models::HybridMethod::name`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HybridMethod {
    Weighted,
    Rank,
    Cascade,
}

/// The interaction types the service records:
/// `store::interactions::INTERACTION_TYPES` (a test keeps the two equal).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InteractionType {
    View,
    Click,
    Share,
    Like,
    AddToCart,
    Rating,
    Purchase,
}

/// The kinds of business rule, as `rule_types` names them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Filter,
    Boost,
    Rerank,
    Promote,
}

// The path parameters, declared once. The handlers take them as
// `ApiPath<i64>` / `ApiPath<String>`; these structs exist for the document.
// Ids start at 1; a smaller one parses and is simply not found (404).

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserId {
    /// The user's id.
    #[param(minimum = 1)]
    pub user_id: i64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemId {
    /// The item's id.
    #[param(minimum = 1)]
    pub item_id: i64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserItemIds {
    /// The user's id.
    #[param(minimum = 1)]
    pub user_id: i64,
    /// The item's id.
    #[param(minimum = 1)]
    pub item_id: i64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunId {
    /// The run's id (`run_id` of a trigger's answer).
    #[param(minimum = 1)]
    pub id: i64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's name; another name is 404.
    #[param(inline)]
    pub name: crate::jobs::JobName,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BundleName {
    /// The bundle's name (from its manifest).
    #[param(min_length = 1)]
    pub name: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UploadDigest {
    /// The upload's id: the archive's hex SHA-256.
    #[param(min_length = 1)]
    pub digest: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RuleName {
    /// The rule's name.
    #[param(min_length = 1)]
    pub name: String,
}

/// Declares the `bearer` security scheme the protected routes name.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Adds the error responses every route of a given shape can return, and
/// gives every error response the `{"detail"}` body:
/// - a route that needs a token: 401 (no, bad, expired or revoked token);
/// - a route with a JSON body: 413 (over `MAX_BODY_BYTES`), 415 (not
///   `Content-Type: application/json`) and 422 (does not parse or
///   validate); a route with parameters: 422;
/// - every `/api/v1` route: 429 (only the probes and the docs are exempt
///   from rate limiting) and 503 (the database is unreachable).
///
/// Route-specific statuses (400, 403, 404, 409) stay in each annotation.
pub struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_standard_errors(op, api);
            }
        }
    }
}

fn add_standard_errors(op: &mut Operation, api: bool) {
    let needs_token = op
        .security
        .as_ref()
        .is_some_and(|s| !s.is_empty() && !s.contains(&SecurityRequirement::default()));
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json"));
    let any_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());

    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if needs_token {
        wanted.push((
            "401",
            "Not authenticated: no token, or a bad, expired or revoked one",
        ));
    }
    if any_body {
        wanted.push(("413", "The body is over the size limit"));
    }
    if json_body {
        wanted.push(("415", "The body is not `Content-Type: application/json`"));
    }
    if json_body || has_params {
        wanted.push(("422", "The body, path or query does not parse or validate"));
    }
    if api {
        wanted.push(("429", "Rate limited; `Retry-After` says when to try again"));
        wanted.push(("503", "The database is unavailable"));
    }
    for (status, description) in wanted {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }

    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if response.description.is_empty() {
            response.description = default_description(status).to_string();
        }
        if response.content.is_empty() {
            response.content.insert(
                "application/json".to_string(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
        }
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "400" => "Bad request (e.g. a duplicate)",
        "401" => "Not authenticated",
        "403" => "The caller's role does not allow this",
        "404" => "Not found",
        "409" => "Conflicts with the current state",
        "413" => "The body is over the size limit",
        "415" => "Unsupported content type",
        "422" => "Does not validate",
        "429" => "Rate limited",
        "503" => "A dependency is unavailable",
        _ => "Error",
    }
}
