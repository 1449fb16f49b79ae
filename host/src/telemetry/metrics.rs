//! Prometheus metrics at `/metrics`. Labels stay low-cardinality: route
//! templates (`/api/v1/users/{user_id}`), never raw paths or user ids.
//!
//! Two kinds: events counted where they happen (HTTP, recommendations,
//! bundle activations), and state read when scraped (caches, rules,
//! models, bundles, pools) from the counters the service keeps anyway,
//! so the hot paths do not pay twice.

use std::{sync::LazyLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::AppState;

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_progress: IntGaugeVec,
    pub recommendations: IntCounterVec,
    pub recommendation_duration: HistogramVec,
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounterVec,
    pub cache_bytes: IntGaugeVec,
    pub active_users: IntGauge,
    pub active_items: IntGauge,
    pub total_interactions: IntGauge,
    pub model_version: IntGauge,
    pub rule_calls: IntCounterVec,
    pub rule_seconds: prometheus::CounterVec,
    pub rule_items: IntCounterVec,
    pub rule_failures: IntCounterVec,
    pub bundle_activations: IntCounterVec,
    pub bundle_failures: IntCounterVec,
    pub rule_refusals: IntCounterVec,
    pub bundle_active: IntGaugeVec,
    pub shadow: prometheus::GaugeVec,
    pub db_connections: IntGaugeVec,
    pub redis_up: IntGauge,
    pub redis_commands: IntCounterVec,
    pub job_runs: IntCounterVec,
    pub job_duration: HistogramVec,
    pub job_last_success: prometheus::GaugeVec,
    pub jobs_running: IntGaugeVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

/// One set per process: every app in it (tests run several) shares them.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let rule_seconds = prometheus::CounterVec::new(
        Opts::new(
            "rule_duration_seconds_total",
            "Time spent in each rule, seconds",
        ),
        &["rule"],
    )
    .expect("valid metric");
    r.register(Box::new(rule_seconds.clone()))
        .expect("registered once");
    let shadow = prometheus::GaugeVec::new(
        Opts::new(
            "bundle_shadow",
            "Shadow evaluation: compared requests, identical lists, mean overlap, mean rank correlation, items added/dropped, errors",
        ),
        &["bundle", "revision", "measure"],
    )
    .expect("valid metric");
    r.register(Box::new(shadow.clone()))
        .expect("registered once");
    // Jobs take seconds to minutes: their own buckets.
    let job_duration = HistogramVec::new(
        HistogramOpts::new("job_duration_seconds", "Time a job run took, all attempts").buckets(
            vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
            ],
        ),
        &["job"],
    )
    .expect("valid metric");
    r.register(Box::new(job_duration.clone()))
        .expect("registered once");
    let job_last_success = prometheus::GaugeVec::new(
        Opts::new(
            "job_last_success_timestamp_seconds",
            "When each job last succeeded in this process (unix seconds)",
        ),
        &["job"],
    )
    .expect("valid metric");
    r.register(Box::new(job_last_success.clone()))
        .expect("registered once");
    Metrics {
        job_runs: counter(
            &r,
            "job_runs_total",
            "Job run outcomes: SUCCESS, FAILURE, and RETRY for each failed attempt that is retried",
            &["job", "status"],
        ),
        job_duration,
        job_last_success,
        jobs_running: gauge_vec(
            &r,
            "jobs_running",
            "Job runs in progress in this process",
            &["job"],
        ),
        http_requests: counter(
            &r,
            "http_requests_total",
            "HTTP requests",
            &["method", "route", "status"],
        ),
        http_duration: histogram(
            &r,
            "http_request_duration_seconds",
            "HTTP request latency",
            &["method", "route"],
        ),
        http_in_progress: gauge_vec(
            &r,
            "http_requests_inprogress",
            "HTTP requests being served",
            &["method", "route"],
        ),
        recommendations: counter(
            &r,
            "recommendations_generated_total",
            "Recommendation lists computed (cache hits excluded)",
            &["algorithm"],
        ),
        recommendation_duration: histogram(
            &r,
            "recommendation_generation_duration_seconds",
            "Time to compute a recommendation list, rules included",
            &["algorithm"],
        ),
        cache_hits: counter(&r, "cache_hits_total", "Cache hits", &["cache"]),
        cache_misses: counter(&r, "cache_misses_total", "Cache misses", &["cache"]),
        cache_bytes: gauge_vec(
            &r,
            "cache_bytes",
            "Bytes a cache holds in this process (bounded by CACHE_MAX_MB)",
            &["cache"],
        ),
        active_users: gauge(
            &r,
            "active_users",
            "Active user accounts (set by the update_metrics job)",
        ),
        active_items: gauge(
            &r,
            "active_items",
            "Items in the catalogue (set by the update_metrics job)",
        ),
        total_interactions: gauge(
            &r,
            "total_interactions",
            "Interactions stored (set by the update_metrics job)",
        ),
        model_version: gauge(&r, "model_version", "Version of the serving model snapshot"),
        rule_calls: counter(&r, "rule_calls_total", "Rule calls", &["rule"]),
        rule_seconds,
        rule_items: counter(
            &r,
            "rule_items_total",
            "Items a rule dropped, boosted, moved or promoted (placed in a response)",
            &["rule", "effect"],
        ),
        rule_failures: counter(
            &r,
            "rule_failures_total",
            "Rule failures",
            &["rule", "cause"],
        ),
        bundle_activations: counter(
            &r,
            "bundle_activations_total",
            "Bundle activations, rollbacks and deletions",
            &["bundle", "action"],
        ),
        bundle_failures: counter(
            &r,
            "bundle_failures_total",
            "Refused bundles, by cause",
            &["bundle", "cause"],
        ),
        rule_refusals: counter(
            &r,
            "rule_components_refused_total",
            "Components of the rules directory refused at load (not a component, \
             an unknown or malformed input declaration, a taken name, ...)",
            &["source"],
        ),
        bundle_active: gauge_vec(
            &r,
            "bundle_active_revision",
            "1 for the revision this replica runs",
            &["bundle", "revision"],
        ),
        shadow,
        db_connections: gauge_vec(
            &r,
            "db_pool_connections",
            "Database pool connections",
            &["state"],
        ),
        redis_up: gauge(
            &r,
            "redis_up",
            "1 when Redis answers (or is not configured), 0 when it does not",
        ),
        redis_commands: counter(
            &r,
            "redis_commands_total",
            "Round trips to Redis (a command, pipeline or script each), by what they were for",
            &["command"],
        ),
        registry: r,
    }
});

/// Counts and times every request under its route template.
pub async fn track(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let m = &*METRICS;
    let in_progress = m.http_in_progress.with_label_values(&[&method, &route]);
    in_progress.inc();
    let started = Instant::now();
    let response = next.run(req).await;
    in_progress.dec();
    m.http_duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    response
}

/// Moves a counter up to `value` (the service's own monotonic counter).
fn sync(counter: &prometheus::IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

/// Reads the state-backed metrics from the service.
async fn collect(state: &AppState) {
    let m = &*METRICS;
    for (name, stats, bytes) in [
        (
            "recommendations",
            &state.rec_cache.stats,
            state.rec_cache.local_bytes(),
        ),
        (
            "user_features",
            &state.features.users.stats,
            state.features.users.local_bytes(),
        ),
        (
            "item_features",
            &state.features.items.stats,
            state.features.items.local_bytes(),
        ),
        (
            "trending",
            &state.trending_cache.stats,
            state.trending_cache.local_bytes(),
        ),
    ] {
        sync(&m.cache_hits.with_label_values(&[name]), stats.hits());
        sync(&m.cache_misses.with_label_values(&[name]), stats.misses());
        m.cache_bytes
            .with_label_values(&[name])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    // active_users, active_items and total_interactions are the
    // `update_metrics` job's: counted in the database every 5 minutes, not
    // on every scrape.
    let snapshot = state.recommender.snapshot();
    m.model_version.set(snapshot.version as i64);
    for rule in &state.rules.snapshot().rules {
        let name = rule.name();
        let c = state.rules.counters(name);
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        sync(&m.rule_calls.with_label_values(&[name]), c.calls());
        let seconds = m.rule_seconds.with_label_values(&[name]);
        let total = load(&c.total_micros) as f64 / 1e6;
        if total > seconds.get() {
            seconds.inc_by(total - seconds.get());
        }
        for (effect, value) in [
            ("dropped", load(&c.dropped)),
            ("boosted", load(&c.boosted)),
            ("moved", load(&c.moved)),
            ("promoted", load(&c.promoted)),
        ] {
            sync(&m.rule_items.with_label_values(&[name, effect]), value);
        }
        for (cause, n) in c.failures() {
            sync(&m.rule_failures.with_label_values(&[name, cause]), n);
        }
    }
    m.bundle_active.reset();
    for (bundle, local) in state.bundles.local_state() {
        if let Some(revision) = local.revision {
            m.bundle_active
                .with_label_values(&[&bundle, &revision])
                .set(1);
        }
    }
    m.shadow.reset();
    if let Some(shadow) = state.bundles.shadow() {
        let r = shadow.report();
        for (measure, value) in [
            ("compared", r.compared as f64),
            ("identical", r.identical as f64),
            ("mean_overlap", r.mean_overlap),
            ("mean_rank_correlation", r.mean_rank_correlation),
            ("items_added", r.items_added as f64),
            ("items_dropped", r.items_dropped as f64),
            ("errors", r.errors as f64),
        ] {
            m.shadow
                .with_label_values(&[&r.name, &r.revision, measure])
                .set(value);
        }
    }
    let size = i64::from(state.db.pool.size());
    let idle = state.db.pool.num_idle() as i64;
    m.db_connections.with_label_values(&["idle"]).set(idle);
    m.db_connections
        .with_label_values(&["in_use"])
        .set(size - idle);
    let redis_up = match &state.redis {
        Some(redis) => redis.ping().await,
        None => true,
    };
    m.redis_up.set(i64::from(redis_up));
}

/// `GET /metrics`: the Prometheus text format.
pub async fn scrape(State(state): State<AppState>) -> Response {
    collect(&state).await;
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
