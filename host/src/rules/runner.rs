//! The one way a request goes through the rules: the active rule set, one
//! snapshot of it for the whole request (a swap mid-request changes
//! nothing), run on the blocking pool (rule calls are synchronous and
//! bounded by their deadline, so a slow rule never stalls the async
//! workers), and the bundle in shadow, if any, compared beside it off the
//! response path.

use std::sync::Arc;

use recengine_rules_sdk::{self as sdk, Kind};

use super::{
    bundle::BundleManager,
    pipeline::{self, PipelineOutput},
    registry::RuleRegistry,
};
use crate::error::{AppError, AppResult};

/// Who a live answer was for, so the shadow can compare its own answer
/// with the `top_n` served.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub user_id: i64,
    pub top_n: usize,
}

/// Cheap to clone: two handles.
#[derive(Clone)]
pub struct Runner {
    registry: Arc<RuleRegistry>,
    bundles: Arc<BundleManager>,
}

impl Runner {
    pub fn new(registry: Arc<RuleRegistry>, bundles: Arc<BundleManager>) -> Self {
        Self { registry, bundles }
    }

    /// Runs `request` through the active rules (only `kinds`, when given).
    /// With `served`, a bundle in shadow sees the same request; a dry run
    /// passes `None` and leaves the shadow's report alone.
    pub async fn run(
        &self,
        request: sdk::Request,
        kinds: Option<Vec<Kind>>,
        served: Option<Served>,
    ) -> AppResult<PipelineOutput> {
        let registry = self.registry.clone();
        let set = registry.snapshot();
        // What the shadow needs is copied only when there is one.
        let shadow = served.and_then(|served| {
            self.bundles
                .shadow()
                .map(|shadow| (shadow, served, request.clone(), set.clone(), kinds.clone()))
        });
        let out = tokio::task::spawn_blocking(move || {
            pipeline::run(&registry, &set, request, kinds.as_deref())
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        if let Some((shadow, served, request, set, kinds)) = shadow {
            let shown = out
                .candidates
                .ids
                .iter()
                .copied()
                .take(served.top_n)
                .collect();
            shadow.evaluate(
                self.registry.clone(),
                &set,
                request,
                kinds,
                served.user_id,
                shown,
                served.top_n,
            );
        }
        Ok(out)
    }
}
