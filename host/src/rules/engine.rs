//! The Wasm sandbox.
//!
//! One `wasmtime::Engine` per process; each component is compiled once
//! while something uses it (cached by the SHA-256 of its bytes, weakly: a
//! component no rule set, shadow or activation holds any more is freed, so
//! refused uploads cannot grow the cache) and linked once (`InstancePre`).
//! Every call gets a fresh store and instance from the pooling allocator, so
//! no state carries from one user's request to another's, and runs under:
//! - a wall-clock deadline (epoch interruption on a 1 ms tick), so an
//!   infinite loop costs one deadline, not a worker thread;
//! - a memory cap (`StoreLimits`, trapping on a failed grow), so a rule
//!   cannot exhaust the host's memory;
//! - WASI with nothing granted: no preopened directories, no environment or
//!   arguments, no sockets, stdout discarded, stderr kept (bounded) for the
//!   panic message, and clocks fixed to the request's "now".

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::{Duration, Instant},
};

use recengine_rules_sdk as sdk;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
    component::{Component, Linker, ResourceTable},
};
use wasmtime_wasi::{
    WasiCtx, WasiCtxView, WasiView,
    p2::pipe::{MemoryOutputPipe, SinkOutputStream},
};

use super::bindings::{Rule, RulePre, recengine::rules::types as wit};

/// The deadline of a rule's `metadata` call at load.
const LOAD_DEADLINE: Duration = Duration::from_secs(1);

/// Limits every call runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget for one call (instantiation included).
    pub deadline: Duration,
    /// Linear memory a rule may grow to.
    pub memory_bytes: usize,
    /// Largest candidate list handed to a rule.
    pub max_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(25),
            memory_bytes: 32 << 20,
            max_candidates: 5_000,
        }
    }
}

/// How much of a failing rule's stderr (its panic message) is kept.
const STDERR_CAPTURE: usize = 4096;
/// The epoch tick: deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(1);
/// Parallel instances the pool keeps slots for; more waits are not needed
/// because each call holds its instance for microseconds.
const POOL_INSTANCES: u32 = 1000;

/// Why a call failed. Each cause is counted separately.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Timeout,
    OutOfMemory,
    /// A trap: a panic (`unreachable`), a stack overflow, a bad memory access.
    Trap(String),
    /// The rule returned an error string.
    RuleError(String),
    /// The outcome broke the kind's contract.
    Contract(String),
    /// The request was larger than the limits allow.
    InputTooLarge(usize),
    /// Instantiation failed for another reason.
    Instantiate(String),
}

impl Failure {
    /// A short, low-cardinality name for metrics and the trace.
    pub fn cause(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::OutOfMemory => "out_of_memory",
            Failure::Trap(_) => "trap",
            Failure::RuleError(_) => "rule_error",
            Failure::Contract(_) => "contract",
            Failure::InputTooLarge(_) => "input_too_large",
            Failure::Instantiate(_) => "instantiate",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => write!(f, "exceeded its deadline"),
            Failure::OutOfMemory => write!(f, "exceeded its memory limit"),
            Failure::Trap(m) => write!(f, "trapped: {m}"),
            Failure::RuleError(m) => write!(f, "returned an error: {m}"),
            Failure::Contract(m) => write!(f, "broke its contract: {m}"),
            Failure::InputTooLarge(n) => write!(f, "{n} candidates exceed the limit"),
            Failure::Instantiate(m) => write!(f, "could not be instantiated: {m}"),
        }
    }
}

/// Per-store state: the WASI context (granting nothing) and the limits.
pub struct RuleState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for RuleState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled, linked component and what it says about itself.
pub struct CompiledRule {
    pub digest: String,
    pub metadata: sdk::Metadata,
    pre: RulePre<RuleState>,
}

impl fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledRule")
            .field("name", &self.metadata.name)
            .field("digest", &self.digest)
            .finish()
    }
}

pub struct RuleEngine {
    engine: Engine,
    linker: Linker<RuleState>,
    limits: Limits,
    /// By digest. Weak: the rule sets (active, shadow, in preparation) own
    /// the compiled code, so the cache holds exactly what they use and is
    /// bounded by them; dead entries are swept on every insert.
    cache: Mutex<HashMap<String, Weak<CompiledRule>>>,
}

impl RuleEngine {
    pub fn new(limits: Limits) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            limits.memory_bytes <= MAX_MEMORY_CEILING,
            "the rule memory limit may be at most {MAX_MEMORY_CEILING} bytes"
        );
        let engine = shared_engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| wasm_error(e, "linking WASI into the rule linker"))?;
        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Compiles (or fetches from the cache) a component, reads its metadata
    /// in the sandbox, and checks its SDK version.
    pub fn load(&self, bytes: &[u8]) -> anyhow::Result<Arc<CompiledRule>> {
        let digest = hex(&Sha256::digest(bytes));
        if let Some(hit) = self
            .cache
            .lock()
            .expect("not poisoned")
            .get(&digest)
            .and_then(Weak::upgrade)
        {
            return Ok(hit);
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| wasm_error(e, "not a valid WebAssembly component"))?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(|e| {
            wasm_error(
                e,
                "the component imports something the host does not provide",
            )
        })?;
        let pre = RulePre::new(instance_pre).map_err(|e| {
            wasm_error(
                e,
                "the component does not implement the recengine:rules/rule world",
            )
        })?;
        let metadata = self
            .read_metadata(&pre)
            .map_err(|f| anyhow::anyhow!("reading its metadata failed: {f}"))?;
        check_sdk_version(&metadata.sdk_version)?;
        check_params(&metadata)?;
        let compiled = Arc::new(CompiledRule {
            digest: digest.clone(),
            metadata,
            pre,
        });
        let mut cache = self.cache.lock().expect("not poisoned");
        cache.retain(|_, rule| rule.strong_count() > 0);
        cache.insert(digest, Arc::downgrade(&compiled));
        Ok(compiled)
    }

    /// How many compiled components are alive (in use somewhere).
    pub fn compiled_components(&self) -> usize {
        self.cache
            .lock()
            .expect("not poisoned")
            .values()
            .filter(|rule| rule.strong_count() > 0)
            .count()
    }

    fn store(&self, now_ms: i64, limits: &Limits) -> (Store<RuleState>, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = WasiCtx::builder()
            .stdout(SinkOutputStream)
            .stderr(stderr.clone())
            .wall_clock(FixedClock(now_ms))
            .build();
        let state = RuleState {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // The deadline must be armed before instantiation: a new store's is
        // zero, and instantiation runs guest code.
        let ticks = (limits.deadline.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, stderr)
    }

    fn instantiate(
        &self,
        pre: &RulePre<RuleState>,
        now_ms: i64,
        limits: &Limits,
    ) -> Result<(Store<RuleState>, Rule, MemoryOutputPipe), Failure> {
        let (mut store, stderr) = self.store(now_ms, limits);
        let rule = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&e, &stderr, true))?;
        Ok((store, rule, stderr))
    }

    /// At load, off the request path: a busy machine must not turn a slow
    /// first call into a refused rule (or a service that cannot start), so
    /// the deadline is at least `LOAD_DEADLINE`; a rule that loops in
    /// `metadata` is still stopped.
    fn read_metadata(&self, pre: &RulePre<RuleState>) -> Result<sdk::Metadata, Failure> {
        let limits = Limits {
            deadline: self.limits.deadline.max(LOAD_DEADLINE),
            ..self.limits
        };
        let (mut store, rule, stderr) = self.instantiate(pre, 0, &limits)?;
        let m = rule
            .call_metadata(&mut store)
            .map_err(|e| classify(&e, &stderr, false))?;
        Ok(metadata_from_wit(m))
    }

    /// Calls the rule's `apply` in a fresh instance, under the engine's
    /// limits.
    pub fn apply(
        &self,
        rule: &CompiledRule,
        request: &wit::Request,
    ) -> Result<sdk::Outcome, Failure> {
        self.apply_within(rule, request, &self.limits)
    }

    /// `apply` under tighter limits (a bundle may set them per rule; they
    /// never exceed the engine's).
    pub fn apply_within(
        &self,
        rule: &CompiledRule,
        request: &wit::Request,
        limits: &Limits,
    ) -> Result<sdk::Outcome, Failure> {
        let n = request.candidates.ids.len();
        if n > limits.max_candidates {
            return Err(Failure::InputTooLarge(n));
        }
        let (mut store, instance, stderr) =
            self.instantiate(&rule.pre, request.context.now_ms, limits)?;
        match instance.call_apply(&mut store, request) {
            Ok(Ok(outcome)) => Ok(match outcome {
                wit::Outcome::Dropped(v) => sdk::Outcome::Dropped(v),
                wit::Outcome::Rescored(v) => sdk::Outcome::Rescored(v),
                wit::Outcome::Reordered(v) => sdk::Outcome::Reordered(v),
            }),
            Ok(Err(message)) => Err(Failure::RuleError(truncate(message, 500))),
            Err(e) => Err(classify(&e, &stderr, false)),
        }
    }
}

/// Maps a wasmtime error to a failure cause.
fn classify(err: &wasmtime::Error, stderr: &MemoryOutputPipe, instantiating: bool) -> Failure {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => Failure::Timeout,
            Trap::UnreachableCodeReached => {
                let text = String::from_utf8_lossy(&stderr.contents())
                    .trim()
                    .to_string();
                Failure::Trap(if text.is_empty() {
                    "panicked".into()
                } else {
                    truncate(text, 500)
                })
            }
            other => Failure::Trap(other.to_string()),
        };
    }
    // A failed memory grow under `trap_on_grow_failure` surfaces as an
    // error whose root cause is the limiter's, not a `Trap`.
    let chain = chain_text(err);
    if chain.contains("memory") && (chain.contains("limit") || chain.contains("grow")) {
        return Failure::OutOfMemory;
    }
    if instantiating {
        Failure::Instantiate(truncate(chain, 500))
    } else {
        Failure::Trap(truncate(chain, 500))
    }
}

/// Every message in an error's chain, outermost first.
fn chain_text(err: &wasmtime::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn wasm_error(err: wasmtime::Error, context: &str) -> anyhow::Error {
    anyhow::anyhow!("{context}: {}", chain_text(&err))
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SDK major.minor this host speaks; a rule built with another is
/// refused with a message naming both.
fn check_sdk_version(version: &str) -> anyhow::Result<()> {
    let ours = sdk::SDK_VERSION;
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    if major_minor(version) != major_minor(ours) {
        anyhow::bail!(
            "the rule was built with rules-sdk {version}; this host needs {}.x — rebuild it against the current SDK",
            major_minor(ours)
        );
    }
    Ok(())
}

fn check_params(m: &sdk::Metadata) -> anyhow::Result<()> {
    if m.name.is_empty()
        || m.name.len() > 64
        || !m
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        anyhow::bail!(
            "rule name {:?} must be 1-64 characters of a-z, 0-9 and _",
            m.name
        );
    }
    for p in &m.params {
        if !(p.default_value.is_finite() && (p.min..=p.max).contains(&p.default_value)) {
            anyhow::bail!("parameter {:?}: default outside min..=max", p.name);
        }
    }
    Ok(())
}

fn metadata_from_wit(m: wit::RuleMetadata) -> sdk::Metadata {
    sdk::Metadata {
        name: m.name,
        kind: match m.kind {
            wit::RuleKind::Filter => sdk::Kind::Filter,
            wit::RuleKind::Boost => sdk::Kind::Boost,
            wit::RuleKind::Rerank => sdk::Kind::Rerank,
        },
        default_priority: m.default_priority,
        description: m.description,
        params: m
            .params
            .into_iter()
            .map(|p| sdk::Param {
                name: p.name,
                description: p.description,
                default_value: p.default_value,
                min: p.min,
                max: p.max,
            })
            .collect(),
        sdk_version: m.sdk_version,
        fail_closed: m.fail_closed,
    }
}

/// Bytes of each memory (and table) reset by memset rather than returned to
/// the kernel when an instance ends.
const KEEP_RESIDENT: usize = 192 << 10;

/// The pool's per-memory ceiling; each store's own cap (`Limits`) is lower.
const MAX_MEMORY_CEILING: usize = 256 << 20;

/// The process's one engine (compiled code is tied to it) and its epoch
/// ticker. Made on first use; every `RuleEngine` shares it.
fn shared_engine() -> anyhow::Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Deep recursion traps (StackOverflow) well before the host's own stack
    // is at risk.
    config.max_wasm_stack(512 * 1024);
    // Copy the (small) data segments into each instance instead of mapping
    // them copy-on-write: with slots reset by memset (below), the CoW
    // mapping only added a write fault per touched page on every call.
    config.memory_init_cow(false);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES);
    pool.total_core_instances(POOL_INSTANCES);
    pool.total_memories(POOL_INSTANCES);
    pool.total_tables(POOL_INSTANCES);
    pool.max_memory_size(MAX_MEMORY_CEILING);
    // A fresh instance per call is the point (no state between users), so
    // slots are recycled constantly. Measured (benches/rules.rs), most of a
    // call's fixed cost was the kernel: madvise + TLB shootdowns to
    // decommit each slot, then page faults to touch it again. Resetting the
    // first pages by memset instead (rules use a small stack, see
    // builtin-rules/.cargo/config.toml) keeps a reused slot resident.
    // (Batching decommits made it worse: queued slots cannot be reused, so
    // every call faulted in a fresh one.)
    pool.linear_memory_keep_resident(KEEP_RESIDENT);
    pool.table_keep_resident(KEEP_RESIDENT);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(|e| wasm_error(e, "creating the Wasm engine"))?;
    let engine = ENGINE.get_or_init(|| {
        start_epoch_ticker(engine.clone());
        engine
    });
    Ok(engine.clone())
}

/// One thread for the whole process advances the epoch every tick.
fn start_epoch_ticker(engine: Engine) {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                next += TICK;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}

/// The wall clock a rule sees: the request's "now", so every rule of one
/// request agrees and a rule cannot use the clock to tell requests apart.
struct FixedClock(i64);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_versions_must_share_major_and_minor() {
        assert!(check_sdk_version(sdk::SDK_VERSION).is_ok());
        let err = check_sdk_version("9.9.0").unwrap_err().to_string();
        assert!(err.contains("rules-sdk 9.9.0"), "{err}");
        assert!(err.contains("rebuild"), "{err}");
    }

    #[test]
    fn bad_components_are_refused_with_a_reason() {
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let err = engine.load(b"not wasm at all").unwrap_err().to_string();
        assert!(err.contains("not a valid WebAssembly component"), "{err}");
    }
}
