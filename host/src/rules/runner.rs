//! The one way a request goes through the rules: one snapshot of the rule
//! set for the whole request (a swap mid-request changes nothing), at most
//! `RULE_CONCURRENCY` requests' pipelines at once, and the bundle in
//! shadow, if any, compared beside it off the response path.
//!
//! Where a pipeline runs: rule calls are synchronous, bounded by their
//! deadlines. A set of small components that import no WASI, whose
//! pipelines have lately taken under [`INLINE_BUDGET_MICROS`] (the
//! built-ins: ~0.15 ms), runs on the request's own thread; handing it to
//! the blocking pool and back cost more than running it (two thread
//! switches a request). Any other set (an interpreted rule, a kept
//! instance, a rule that imports WASI, whose synchronous bindings block on
//! a runtime of their own and so cannot run on an async worker, or a
//! pipeline that has become slow, e.g. a rule running into its deadline)
//! runs on the blocking pool, so it never stalls the async workers. A rule that starts to time out
//! stalls a worker at most for the requests that measure it: one deadline
//! raises the average past the budget at once.
//!
//! Why the bound: rules are pure CPU work and their deadline is wall-clock.
//! With more pipelines running than cores they only take turns, each
//! call's wall time stretches by the number of pipelines sharing a core,
//! and slow rules (an interpreted Python or JavaScript one) miss their
//! deadline under load though each would finish well within it. Waiting
//! for a turn happens before any rule starts, so it does not count against
//! a deadline; the queue is bounded by the server's connection limit.
//!
//! A request's steps: [`Runner::rule_set`] (the snapshot), [`Runner::plan`]
//! (what to gather for it), [`Runner::run`] on the gathered subject, and,
//! when promote rules asked for items, [`Runner::place`] once the caller
//! has looked them up.

use std::{
    borrow::Cow,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use recengine_rules_sdk::Kind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    bundle::BundleManager,
    input::{InputPlan, Subject, rows::RowSource},
    pipeline::{self, PipelineOutput},
    registry::{RuleRegistry, RuleSet},
};
use crate::error::{AppError, AppResult};

/// Who a live answer was for, so the shadow can compare its own answer
/// with the `top_n` served.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub user_id: i64,
    pub top_n: usize,
}

/// Cheap to clone: three handles.
#[derive(Clone)]
pub struct Runner {
    registry: Arc<RuleRegistry>,
    bundles: Arc<BundleManager>,
    /// One permit per pipeline allowed to run at once.
    turns: Arc<Semaphore>,
}

impl Runner {
    /// `concurrency`: how many requests' pipelines may run at once (at
    /// least one).
    pub fn new(
        registry: Arc<RuleRegistry>,
        bundles: Arc<BundleManager>,
        concurrency: usize,
    ) -> Self {
        Self {
            registry,
            bundles,
            turns: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Waits for a pipeline's turn. The permit moves into the blocking
    /// task, so it is held until the rules have run even if the request
    /// is dropped meanwhile (a client gone does not stop a started call).
    async fn turn(&self) -> AppResult<OwnedSemaphorePermit> {
        self.turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AppError::Internal(e.into()))
    }

    /// The rule set one request uses from start to end.
    pub fn rule_set(&self) -> Arc<RuleSet> {
        self.registry.snapshot()
    }

    /// What to gather for a request on `set`: its rules' inputs (borrowed:
    /// no copy on the request path), and the shadow bundle's when there is
    /// one, so the shadow sees what it declared too.
    pub fn plan<'a>(&self, set: &'a RuleSet) -> Cow<'a, InputPlan> {
        let Some(shadow) = self.bundles.shadow() else {
            return Cow::Borrowed(&set.plan);
        };
        let mut plan = set.plan.clone();
        for rule in shadow.rule_set(set).rules.iter().filter(|r| r.enabled) {
            plan.add(&rule.compiled.metadata.inputs);
        }
        Cow::Owned(plan)
    }

    /// Whether a request on `set` may read its candidates' item inputs
    /// from kept rows ([`Runner::run`]'s `rows`): not when a 0.1 rule reads
    /// them from the subject, nor when a bundle in shadow needs a subject
    /// with everything it declared.
    pub fn rows_allowed(&self, set: &RuleSet) -> bool {
        !set.has_legacy && self.bundles.shadow().is_none()
    }

    /// Runs `subject` through `set` (only `kinds`, when given); `rows`, when
    /// [`Runner::rows_allowed`], hold the candidates' item inputs. With
    /// `served`, a bundle in shadow sees the same subject; a dry run passes
    /// `None` and leaves the shadow's report alone.
    pub async fn run(
        &self,
        set: Arc<RuleSet>,
        subject: Subject,
        rows: Option<Vec<Arc<dyn RowSource>>>,
        kinds: Option<Vec<Kind>>,
        served: Option<Served>,
    ) -> AppResult<PipelineOutput> {
        let registry = self.registry.clone();
        // What the shadow needs is copied only when there is one (a shadow
        // put in place after the request chose rows waits for the next).
        let served = served.filter(|_| rows.is_none());
        let shadow = served.and_then(|served| {
            self.bundles
                .shadow()
                .map(|shadow| (shadow, served, subject.clone(), set.clone(), kinds.clone()))
        });
        let live = set.clone();
        let out = self
            .on_turn(&set, move || {
                pipeline::run(
                    &registry,
                    &live,
                    &subject,
                    rows.as_deref(),
                    kinds.as_deref(),
                    "",
                )
            })
            .await?;
        if let Some((shadow, served, subject, set, kinds)) = shadow {
            let shown = out.list.ids.iter().copied().take(served.top_n).collect();
            shadow.evaluate(
                self.registry.clone(),
                &set,
                subject,
                kinds,
                served.user_id,
                shown,
                served.top_n,
            );
        }
        Ok(out)
    }

    /// Vets and places what promote rules asked for within the first
    /// `shown` positions; `found` holds the promoted items that exist,
    /// gathered for [`Runner::plan`].
    pub async fn place(
        &self,
        set: Arc<RuleSet>,
        mut out: PipelineOutput,
        found: Subject,
        shown: usize,
    ) -> AppResult<PipelineOutput> {
        let registry = self.registry.clone();
        let live = set.clone();
        self.on_turn(&set, move || {
            pipeline::place_promotions(&registry, &live, &mut out, &found, shown, "");
            out
        })
        .await
    }

    /// Runs `work` (rule calls on `set`) once it is a pipeline's turn:
    /// inline when the set is cheap enough, on the blocking pool otherwise
    /// (see the module's notes), keeping the set's average up to date.
    async fn on_turn<T: Send + 'static>(
        &self,
        set: &Arc<RuleSet>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let turn = self.turn().await?;
        let timed = {
            let set = set.clone();
            move || {
                let _turn = turn;
                let started = Instant::now();
                let out = work();
                record(&set, started.elapsed().as_micros() as u64);
                out
            }
        };
        if set.small_only && set.recent_micros.load(Ordering::Relaxed) < INLINE_BUDGET_MICROS {
            return Ok(timed());
        }
        tokio::task::spawn_blocking(timed)
            .await
            .map_err(|e| AppError::Internal(e.into()))
    }
}

/// A pipeline whose moving average stays under this many microseconds
/// runs on the request's own thread.
pub const INLINE_BUDGET_MICROS: u64 = 1_000;

/// Moves the set's average an eighth of the way to `micros`.
fn record(set: &RuleSet, micros: u64) {
    let old = set.recent_micros.load(Ordering::Relaxed);
    let new = old - old / 8 + micros / 8;
    set.recent_micros.store(new, Ordering::Relaxed);
}
