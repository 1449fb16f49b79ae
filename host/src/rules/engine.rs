//! The Wasm sandbox.
//!
//! Two `wasmtime::Engine`s per process, sized to the guest (see
//! [`Sizing`]): small components (Rust rules, tens of KiB) and large ones
//! (interpreters such as componentize-py's and componentize-js's, whose
//! pre-initialised heap is many MiB). Each component is compiled once while
//! something uses it (cached by the SHA-256 of its bytes, weakly: a
//! component no rule set, shadow or activation holds any more is freed, so
//! refused uploads cannot grow the cache) and linked once (`InstancePre`).
//! With a compiled-code directory, the compiled form is also kept on disk,
//! keyed by that digest and the engine's fingerprint, so a restart (or
//! another replica sharing the directory) loads it instead of compiling.
//! Every call gets a fresh instance from the pooling allocator (in a store
//! shared by one request's rules, see [`Session`]), so no state carries from
//! one rule to another or from one user's request to another's, and runs
//! under:
//! - a wall-clock deadline (epoch interruption on a 1 ms tick), so an
//!   infinite loop costs one deadline, not a worker thread;
//! - a memory cap (`StoreLimits`, trapping on a failed grow), so a rule
//!   cannot exhaust the host's memory;
//! - WASI with nothing granted, for components that import it (the
//!   built-ins import nothing): no preopened directories, no environment or
//!   arguments, no sockets, stdout discarded, stderr kept (bounded) for the
//!   panic message, and clocks fixed to the request's "now".

use std::{
    collections::HashMap,
    fmt,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use recengine_rules_sdk as sdk;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, StoreLimits, StoreLimitsBuilder, Trap,
    component::{Component, Linker, ResourceTable},
};
use wasmtime_wasi::{
    WasiCtx, WasiCtxView, WasiView,
    p2::pipe::{MemoryOutputPipe, SinkOutputStream},
};

use super::{
    bindings::{v0_1, v0_2},
    input::catalogue,
};

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
    /// Calls may run in an instance an earlier call of the same rule used
    /// (a bundle's `reuse_instances`, off by default): no instantiation
    /// per call, but what the rule keeps in its globals carries from one
    /// request (and user) to the next. See [`REUSE_CALLS`].
    pub reuse_instances: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(25),
            memory_bytes: 32 << 20,
            max_candidates: 5_000,
            reuse_instances: false,
        }
    }
}

/// A reused instance serves at most this many calls, then is replaced, so
/// whatever a rule accumulates (a cache, a leak) is bounded.
pub const REUSE_CALLS: u32 = 1000;
/// Idle instances kept per rule for reuse (more run at once when needed;
/// the surplus is dropped after its call).
const REUSE_IDLE: usize = 8;

/// An instance kept for the next call of its rule.
struct Warm {
    store: Store<RuleState>,
    instance: WarmInstance,
    memory_bytes: usize,
    /// The guest's memory once instantiated, bytes.
    initial_memory: usize,
    calls: u32,
}

impl Warm {
    /// Whether the instance has used more than half of the room its cap
    /// left it after instantiation: the next calls would likely cross it.
    fn outgrown(&self) -> bool {
        let grown = self.store.data().limits.memory_bytes;
        let room = self.memory_bytes.saturating_sub(self.initial_memory);
        grown.saturating_sub(self.initial_memory) > room / 2
    }
}

enum WarmInstance {
    V0_1(v0_1::Rule),
    V0_2(v0_2::Rule),
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

/// Per-store state: the WASI context (granting nothing), built the first
/// time the guest calls a WASI function, and the limits.
pub struct RuleState {
    /// `None` until the guest first calls into WASI: most rule calls never
    /// do (the built-ins import nothing), and building a context is a
    /// fixed cost per call otherwise.
    wasi: Option<WasiCtx>,
    /// The context's stderr, kept (bounded) for a panic message.
    stderr: Option<MemoryOutputPipe>,
    /// The wall clock the context reads: the request's "now".
    clock: Arc<AtomicI64>,
    table: ResourceTable,
    limits: GrowthLimits,
}

impl RuleState {
    fn new(now_ms: i64, limits: &Limits) -> Self {
        Self {
            wasi: None,
            stderr: None,
            clock: Arc::new(AtomicI64::new(now_ms)),
            table: ResourceTable::new(),
            limits: GrowthLimits::new(limits.memory_bytes, 1),
        }
    }

    /// What the guest wrote to stderr so far.
    fn stderr(&self) -> Vec<u8> {
        self.stderr
            .as_ref()
            .map(|pipe| pipe.contents().to_vec())
            .unwrap_or_default()
    }
}

/// wasmtime's store limits, remembering how large the guest's memory has
/// grown: a reused instance whose heap keeps growing (a JavaScript engine
/// collects lazily) is retired before it reaches its cap, instead of
/// failing the call that would cross it.
struct GrowthLimits {
    limits: StoreLimits,
    /// The largest linear memory granted so far, bytes.
    memory_bytes: usize,
}

/// Core instances, tables and memories one rule's component may create.
/// Each is a pool slot; a component asking for more is refused.
const INSTANCES_PER_RULE: usize = 16;
const TABLES_PER_RULE: usize = 16;
const MEMORIES_PER_RULE: usize = 4;

impl GrowthLimits {
    /// Each memory capped at `memory_bytes`; room for `rules` rules'
    /// instances in the store.
    fn new(memory_bytes: usize, rules: usize) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(INSTANCES_PER_RULE * rules)
                .tables(TABLES_PER_RULE * rules)
                .memories(MEMORIES_PER_RULE * rules)
                .trap_on_grow_failure(true)
                .build(),
            memory_bytes: 0,
        }
    }
}

impl ResourceLimiter for GrowthLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.memory_bytes = self.memory_bytes.max(desired);
        }
        Ok(granted)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for RuleState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(|| {
            let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
            self.stderr = Some(stderr.clone());
            WasiCtx::builder()
                .stdout(SinkOutputStream)
                .stderr(stderr)
                .wall_clock(FixedClock(self.clock.clone()))
                .build()
        });
        WasiCtxView {
            ctx: wasi,
            table: &mut self.table,
        }
    }
}

/// The rule contract a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub enum Contract {
    /// `recengine:rules@0.1.0`: fixed columns, numeric parameters.
    #[serde(rename = "0.1")]
    V0_1,
    /// `recengine:rules@0.2.0`: declared inputs, typed parameters, promote.
    #[serde(rename = "0.2")]
    V0_2,
}

impl Contract {
    /// The SDK major.minor a rule of this contract reports.
    fn sdk_major_minor(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1",
            Contract::V0_2 => "0.2",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.sdk_major_minor()
    }
}

/// A linked component, by contract.
enum Pre {
    V0_1(v0_1::RulePre<RuleState>),
    V0_2(v0_2::RulePre<RuleState>),
}

/// One call's request, in the contract of the rule it is for.
pub enum Call {
    V0_1(Box<v0_1::recengine::rules::types::Request>),
    V0_2(v0_2::recengine::rules::types::Request),
}

impl Call {
    fn candidates(&self) -> usize {
        match self {
            Call::V0_1(r) => r.candidates.ids.len(),
            Call::V0_2(r) => r.ids.len(),
        }
    }

    fn now_ms(&self) -> i64 {
        match self {
            Call::V0_1(r) => r.context.now_ms,
            Call::V0_2(r) => r.now_ms,
        }
    }
}

/// Which engine a component runs in. Decided by the component's size
/// before compiling: a component's data segments (its initial memory
/// contents) are part of its bytes, so a large component is one whose
/// fresh instance has much memory to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sizing {
    /// Data segments copied into each fresh instance, the first pages of
    /// each memory slot reset by memset: cheapest for a few KiB of data.
    Small,
    /// Copy-on-write memory images: a fresh instance maps the
    /// pre-initialised heap instead of copying it, and on reuse of a pool
    /// slot only the pages the last call dirtied are reset.
    Large,
}

impl Sizing {
    /// Components of at least this many bytes are [`Sizing::Large`].
    pub const LARGE_FROM_BYTES: usize = 1 << 20;

    pub fn of(component: &[u8]) -> Self {
        if component.len() >= Self::LARGE_FROM_BYTES {
            Sizing::Large
        } else {
            Sizing::Small
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Sizing::Small => "small",
            Sizing::Large => "large",
        }
    }
}

/// How the components the engine loaded were obtained, since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Compiled from the component's bytes (Cranelift).
    pub compiled: u64,
    /// Loaded from the compiled-code directory.
    pub from_disk: u64,
}

/// A compiled, linked component and what it says about itself.
pub struct CompiledRule {
    pub digest: String,
    pub sizing: Sizing,
    /// In the current SDK's terms whatever the contract (a 0.1 rule's
    /// inputs are its fixed columns; its parameters are numbers).
    pub metadata: sdk::Metadata,
    /// Its declared inputs as `scope.name`, for traces (shared, not
    /// formatted again on every request).
    pub input_labels: Arc<[String]>,
    pub contract: Contract,
    /// Whether it imports WASI. wasmtime-wasi's synchronous bindings block
    /// on a Tokio runtime of their own, so such a rule must not be called
    /// from an async worker thread (see `runner`).
    pub imports_wasi: bool,
    pre: Pre,
    /// Instances kept for rules that opted into reuse.
    warm: Mutex<Vec<Warm>>,
}

impl fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledRule")
            .field("name", &self.metadata.name)
            .field("digest", &self.digest)
            .field("contract", &self.contract)
            .field("sizing", &self.sizing)
            .finish()
    }
}

/// One engine and the linker built on it.
struct Sandbox {
    engine: Engine,
    linker: Linker<RuleState>,
    sizing: Sizing,
    /// The engine's configuration fingerprint: compiled code is only
    /// loaded into an engine with the same one.
    fingerprint: String,
}

impl Sandbox {
    fn new(engine: Engine, sizing: Sizing) -> anyhow::Result<Self> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| wasm_error(e, "linking WASI into the rule linker"))?;
        // DefaultHasher::new() has fixed keys: the same engine build and
        // configuration give the same fingerprint across restarts. (A new
        // Rust release may change it: one recompilation, nothing worse.)
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let fingerprint = format!("{}-{:016x}", sizing.as_str(), hasher.finish());
        Ok(Self {
            engine,
            linker,
            sizing,
            fingerprint,
        })
    }
}

pub struct RuleEngine {
    small: Sandbox,
    large: Sandbox,
    limits: Limits,
    /// Where compiled components are kept across restarts; none: compiled
    /// at every start.
    compiled_dir: Option<PathBuf>,
    compiled: AtomicU64,
    from_disk: AtomicU64,
    /// By digest. Weak: the rule sets (active, shadow, in preparation) own
    /// the compiled code, so the cache holds exactly what they use and is
    /// bounded by them; dead entries are swept on every insert.
    cache: Mutex<HashMap<String, Weak<CompiledRule>>>,
}

impl RuleEngine {
    /// An engine that compiles every component it loads (tools, tests).
    pub fn new(limits: Limits) -> anyhow::Result<Arc<Self>> {
        Self::with_compiled_dir(limits, None)
    }

    /// An engine that keeps compiled components in `compiled_dir` (created
    /// if missing) and loads them from there when they match.
    pub fn with_compiled_dir(
        limits: Limits,
        compiled_dir: Option<PathBuf>,
    ) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            limits.memory_bytes <= MAX_MEMORY_CEILING,
            "the rule memory limit may be at most {MAX_MEMORY_CEILING} bytes"
        );
        if let Some(dir) = &compiled_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!(
                    "the compiled rules directory {} cannot be created: {e}",
                    dir.display()
                )
            })?;
        }
        let engines = shared_engines()?;
        Ok(Arc::new(Self {
            small: Sandbox::new(engines.small.clone(), Sizing::Small)?,
            large: Sandbox::new(engines.large.clone(), Sizing::Large)?,
            limits,
            compiled_dir,
            compiled: AtomicU64::new(0),
            from_disk: AtomicU64::new(0),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// How the components loaded so far were obtained.
    pub fn compile_stats(&self) -> CompileStats {
        CompileStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            from_disk: self.from_disk.load(Ordering::Relaxed),
        }
    }

    fn sandbox(&self, sizing: Sizing) -> &Sandbox {
        match sizing {
            Sizing::Small => &self.small,
            Sizing::Large => &self.large,
        }
    }

    /// The compiled component: from the compiled-code directory when it
    /// holds this digest for this engine's fingerprint (checked against
    /// the SHA-256 recorded beside it), compiled otherwise (and then stored
    /// there).
    fn compile(&self, sandbox: &Sandbox, bytes: &[u8], digest: &str) -> anyhow::Result<Component> {
        let stored = self
            .compiled_dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}.cwasm", sandbox.fingerprint)));
        if let Some(path) = &stored {
            match load_compiled(&sandbox.engine, path) {
                Ok(Some(component)) => {
                    self.from_disk.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        digest,
                        path = %path.display(),
                        "rule component loaded precompiled"
                    );
                    return Ok(component);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    digest,
                    path = %path.display(),
                    error = %format!("{e:#}"),
                    "a stored compiled rule component was refused; compiling it again"
                ),
            }
        }
        let started = Instant::now();
        let component = Component::new(&sandbox.engine, bytes)
            .map_err(|e| wasm_error(e, "not a valid WebAssembly component"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            digest,
            bytes = bytes.len(),
            sizing = sandbox.sizing.as_str(),
            ms = started.elapsed().as_millis() as u64,
            "rule component compiled"
        );
        if let Some(path) = &stored
            && let Err(e) = store_compiled(&component, path)
        {
            // Only a cost at the next start: the component is compiled.
            tracing::warn!(
                digest,
                path = %path.display(),
                error = %format!("{e:#}"),
                "the compiled rule component could not be stored"
            );
        }
        Ok(component)
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
        let sizing = Sizing::of(bytes);
        let sandbox = self.sandbox(sizing);
        let component = self.compile(sandbox, bytes, &digest)?;
        let instance_pre = sandbox
            .linker
            .instantiate_pre(&component)
            .map_err(|e| import_refusal(e, &component, &sandbox.engine))?;
        // The newest contract first; a component exports one world's
        // functions, so at most one matches.
        let pre = match v0_2::RulePre::new(instance_pre.clone()) {
            Ok(pre) => Pre::V0_2(pre),
            Err(newest) => match v0_1::RulePre::new(instance_pre) {
                Ok(pre) => Pre::V0_1(pre),
                Err(_) => {
                    return Err(wasm_error(
                        newest,
                        "the component implements neither recengine:rules/rule@0.2.0 nor @0.1.0",
                    ));
                }
            },
        };
        let contract = match pre {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
        };
        let metadata = self
            .read_metadata(&pre, sizing)
            .map_err(|f| anyhow::anyhow!("reading its metadata failed: {f}"))?;
        check_sdk_version(&metadata.sdk_version, contract)?;
        check_params(&metadata)?;
        if contract == Contract::V0_2 {
            catalogue::check_inputs(&metadata)
                .map_err(|e| anyhow::anyhow!("{}: {e}", metadata.name))?;
        }
        let input_labels = metadata
            .inputs
            .iter()
            .map(|i| format!("{}.{}", i.scope.as_str(), i.name))
            .collect();
        let imports_wasi = component
            .component_type()
            .imports(&sandbox.engine)
            .any(|(name, _)| name.starts_with("wasi:"));
        let compiled = Arc::new(CompiledRule {
            digest: digest.clone(),
            sizing,
            metadata,
            input_labels,
            contract,
            imports_wasi,
            pre,
            warm: Mutex::new(Vec::new()),
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

    /// A store for one call (or, in a [`Session`], several) under `limits`,
    /// its clock reading `now_ms`.
    fn store(&self, sizing: Sizing, now_ms: i64, limits: &Limits) -> Store<RuleState> {
        let mut store = Store::new(&self.sandbox(sizing).engine, RuleState::new(now_ms, limits));
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        arm_deadline(&mut store, limits);
        store
    }

    /// At load, off the request path: a busy machine must not turn a slow
    /// first call into a refused rule (or a service that cannot start), so
    /// the deadline is at least `LOAD_DEADLINE`; a rule that loops in
    /// `metadata` is still stopped.
    fn read_metadata(&self, pre: &Pre, sizing: Sizing) -> Result<sdk::Metadata, Failure> {
        let limits = Limits {
            deadline: self.limits.deadline.max(LOAD_DEADLINE),
            ..self.limits
        };
        let mut store = self.store(sizing, 0, &limits);
        let answer = match pre {
            Pre::V0_2(pre) => pre
                .instantiate(&mut store)
                .map_err(|e| (e, true))
                .and_then(|rule| {
                    rule.call_metadata(&mut store)
                        .map(metadata_from_v0_2)
                        .map_err(|e| (e, false))
                }),
            Pre::V0_1(pre) => pre
                .instantiate(&mut store)
                .map_err(|e| (e, true))
                .and_then(|rule| {
                    rule.call_metadata(&mut store)
                        .map(metadata_from_v0_1)
                        .map_err(|e| (e, false))
                }),
        };
        answer.map_err(|(e, instantiating)| {
            classify_output(&e, &store.data().stderr(), instantiating)
        })
    }

    /// Calls the rule's `apply` in a fresh instance, under `limits` (the
    /// engine's, or tighter ones a bundle set for the rule). A request that
    /// calls several rules uses a [`Session`] instead.
    pub fn apply_within(
        &self,
        rule: &CompiledRule,
        call: &Call,
        limits: &Limits,
    ) -> Result<sdk::Outcome, Failure> {
        self.session().apply(rule, call, limits)
    }

    /// The sandbox for one request's rule calls.
    pub fn session(&self) -> Session<'_> {
        Session {
            engine: self,
            shared: None,
            rules: 0,
        }
    }
}

/// The deadline counts from now: whole epoch ticks, at least one.
fn arm_deadline(store: &mut Store<RuleState>, limits: &Limits) {
    let ticks = (limits.deadline.as_millis() as u64).max(1);
    store.set_epoch_deadline(ticks);
}

/// Memory a small rule's instance may have grown to and still leave its
/// store to the request's next rule; past it the store (and the memory)
/// is freed at once, as when every call had a store of its own.
const SHARED_STORE_MEMORY: usize = 4 << 20;

/// The sandbox of one request. Its small rules share one store: the
/// store, its limiter and its clock are set up once per request instead of
/// once per rule (wasmtime's per-store setup and teardown was a large part
/// of a small rule's fixed cost). Each rule still runs in a fresh instance
/// of its own (its own linear memory and tables; nothing of another rule's
/// or another request's is reachable from it), under its own deadline,
/// memory cap and WASI context (built only if it calls WASI, with its own
/// stderr). A trap poisons a wasmtime store, so after a failed call the
/// next rule gets a new one; so does the rule after one whose memory grew
/// past [`SHARED_STORE_MEMORY`]. Large components (interpreters) get a
/// store per call: their instantiation dwarfs the store's setup, and
/// their memory is freed as soon as they return. Dropping the session
/// frees every instance.
pub struct Session<'e> {
    engine: &'e RuleEngine,
    shared: Option<Store<RuleState>>,
    /// Rules instantiated in `shared`.
    rules: usize,
}

impl Session<'_> {
    /// Calls the rule's `apply` in a fresh instance, under `limits`.
    pub fn apply(
        &mut self,
        rule: &CompiledRule,
        call: &Call,
        limits: &Limits,
    ) -> Result<sdk::Outcome, Failure> {
        let n = call.candidates();
        if n > limits.max_candidates {
            return Err(Failure::InputTooLarge(n));
        }
        if limits.reuse_instances {
            return self.engine.apply_reusing(rule, call, limits);
        }
        if rule.sizing == Sizing::Large {
            let mut store = self.engine.store(rule.sizing, call.now_ms(), limits);
            return call_fresh(&mut store, rule, call).map_err(|(failure, _)| failure);
        }
        let engine = self.engine;
        let store = self.shared.get_or_insert_with(|| {
            self.rules = 0;
            engine.store(Sizing::Small, call.now_ms(), limits)
        });
        self.rules += 1;
        // This rule's own cap, deadline, WASI context and resources.
        let state = store.data_mut();
        state.limits = GrowthLimits::new(limits.memory_bytes, self.rules);
        state.wasi = None;
        state.stderr = None;
        state.table = ResourceTable::new();
        state.clock.store(call.now_ms(), Ordering::Relaxed);
        // wasmtime reads the counts (instances, tables, memories) when the
        // limiter is installed: installed again, it sees this rule's room.
        store.limiter(|s| &mut s.limits);
        arm_deadline(store, limits);
        let result = call_fresh(store, rule, call);
        let grown = store.data().limits.memory_bytes > SHARED_STORE_MEMORY;
        match result {
            Ok(outcome) => {
                if grown {
                    self.shared = None;
                }
                Ok(outcome)
            }
            Err((failure, poisoned)) => {
                if poisoned || grown {
                    self.shared = None;
                }
                Err(failure)
            }
        }
    }
}

/// Instantiates the rule in `store` and calls `apply`. The flag says
/// whether wasmtime failed the call (a trap, which leaves the store unable
/// to enter any instance again) rather than the rule answering an error.
fn call_fresh(
    store: &mut Store<RuleState>,
    rule: &CompiledRule,
    call: &Call,
) -> Result<sdk::Outcome, (Failure, bool)> {
    let answer = match (&rule.pre, call) {
        (Pre::V0_2(pre), Call::V0_2(request)) => pre
            .instantiate(&mut *store)
            .map_err(|e| (e, true))
            .and_then(|instance| {
                instance
                    .call_apply(&mut *store, request)
                    .map(|r| r.map(outcome_from_v0_2))
                    .map_err(|e| (e, false))
            }),
        (Pre::V0_1(pre), Call::V0_1(request)) => pre
            .instantiate(&mut *store)
            .map_err(|e| (e, true))
            .and_then(|instance| {
                instance
                    .call_apply(&mut *store, request)
                    .map(|r| r.map(outcome_from_v0_1))
                    .map_err(|e| (e, false))
            }),
        _ => return Err((contract_mismatch(rule), false)),
    };
    match answer {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(message)) => Err((Failure::RuleError(truncate(message, 500)), false)),
        Err((e, instantiating)) => Err((
            classify_output(&e, &store.data().stderr(), instantiating),
            true,
        )),
    }
}

fn contract_mismatch(rule: &CompiledRule) -> Failure {
    Failure::Instantiate(format!(
        "a request of another contract than the rule's {}",
        rule.contract.as_str()
    ))
}

impl RuleEngine {
    /// `apply_within` for a rule that opted into reuse: an idle instance of
    /// the rule (made under the same memory cap) if there is one, a new one
    /// otherwise; kept afterwards only if the call succeeded, so a trap, a
    /// timeout or an error never leaves a broken instance behind, and if
    /// its memory has not used half of its room (see [`Warm::outgrown`]).
    fn apply_reusing(
        &self,
        rule: &CompiledRule,
        call: &Call,
        limits: &Limits,
    ) -> Result<sdk::Outcome, Failure> {
        let idle = {
            let mut warm = rule.warm.lock().expect("not poisoned");
            let at = warm
                .iter()
                .rposition(|w| w.memory_bytes == limits.memory_bytes);
            at.map(|i| warm.swap_remove(i))
        };
        let mut warm = match idle {
            Some(mut warm) => {
                warm.store
                    .data()
                    .clock
                    .store(call.now_ms(), Ordering::Relaxed);
                arm_deadline(&mut warm.store, limits);
                warm
            }
            None => {
                let mut store = self.store(rule.sizing, call.now_ms(), limits);
                let instance = match &rule.pre {
                    Pre::V0_2(pre) => pre.instantiate(&mut store).map(WarmInstance::V0_2),
                    Pre::V0_1(pre) => pre.instantiate(&mut store).map(WarmInstance::V0_1),
                }
                .map_err(|e| classify_output(&e, &store.data().stderr(), true))?;
                Warm {
                    initial_memory: store.data().limits.memory_bytes,
                    store,
                    instance,
                    memory_bytes: limits.memory_bytes,
                    calls: 0,
                }
            }
        };
        // What the instance wrote to stderr before this call is not this
        // call's message.
        let stderr_before = warm.store.data().stderr().len();
        let answer = match (&warm.instance, call) {
            (WarmInstance::V0_2(instance), Call::V0_2(request)) => instance
                .call_apply(&mut warm.store, request)
                .map(|r| r.map(outcome_from_v0_2)),
            (WarmInstance::V0_1(instance), Call::V0_1(request)) => instance
                .call_apply(&mut warm.store, request)
                .map(|r| r.map(outcome_from_v0_1)),
            _ => return Err(contract_mismatch(rule)),
        };
        let result = match answer {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(Failure::RuleError(truncate(message, 500))),
            Err(e) => {
                let text = warm.store.data().stderr();
                let own = text.get(stderr_before..).unwrap_or_default();
                Err(classify_output(&e, own, false))
            }
        };
        warm.calls += 1;
        if result.is_ok() && warm.calls < REUSE_CALLS && !warm.outgrown() {
            let mut idle = rule.warm.lock().expect("not poisoned");
            if idle.len() < REUSE_IDLE {
                idle.push(warm);
            }
        }
        result
    }
}

/// The WASI 0.2 packages a rule may import. wasmtime-wasi links all of
/// them, granting nothing: no preopened directories (files fail), no
/// sockets allowed (network fails), empty environment and arguments, stdout
/// discarded, stderr kept for the panic message, clocks fixed to the
/// request's "now", random from the host. Anything else (`wasi:http`,
/// `wasi:keyvalue`, another component's interface) refuses the rule.
pub const ALLOWED_IMPORTS: [&str; 7] = [
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "recengine:rules/types@",
];

/// Why linking failed, naming the imports the host does not provide and,
/// for the ones a toolchain adds by default, how to drop them.
fn import_refusal(err: wasmtime::Error, component: &Component, engine: &Engine) -> anyhow::Error {
    let refused: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)))
        .collect();
    if refused.is_empty() {
        return wasm_error(
            err,
            "the component imports something the host does not provide",
        );
    }
    let mut message = format!(
        "the component imports {}, which a rule may not import; a rule may import only \
         wasi:io, wasi:clocks, wasi:random, wasi:cli, wasi:filesystem and wasi:sockets \
         (0.2; granted nothing beyond clocks and random) and recengine:rules/types",
        refused.join(", ")
    );
    if refused.iter().any(|n| n.starts_with("wasi:http/")) {
        message.push_str(
            "; componentize-js imports wasi:http unless built with \
             `--disable http fetch-event` (`-d http -d fetch-event`); with componentize-py, \
             do not use an SDK world that includes wasi:http",
        );
    }
    anyhow::anyhow!(message)
}

/// A compiled component stored by [`store_compiled`], if there is one at
/// `path` and its bytes still hash to the digest recorded beside them.
fn load_compiled(engine: &Engine, path: &Path) -> anyhow::Result<Option<Component>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let recorded = std::fs::read_to_string(digest_path(path)).unwrap_or_default();
    anyhow::ensure!(
        recorded.trim() == hex(&Sha256::digest(&bytes)),
        "its SHA-256 does not match the one recorded when it was stored"
    );
    deserialize_verified(engine, &bytes).map(Some)
}

/// Loads compiled code this host wrote.
#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: wasmtime runs deserialized machine code as is, so it must be
    // what `Component::serialize` produced. These bytes are: only this
    // module writes the directory (which must be writable by the service
    // alone), and the caller checked them against the SHA-256 recorded when
    // they were written, so a truncated or altered file is refused.
    // wasmtime itself refuses code from another version or configuration.
    unsafe { Component::deserialize(engine, bytes) }
        .map_err(|e| wasm_error(e, "not loadable into this engine"))
}

/// Writes the compiled form and its SHA-256, each to a temporary file
/// renamed into place, so a reader (another replica sharing the
/// directory, or the next start after a crash) never sees a partial file.
fn store_compiled(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| wasm_error(e, "serializing"))?;
    let digest = hex(&Sha256::digest(&bytes));
    let unique = format!("tmp-{}-{}", std::process::id(), rand::random::<u64>());
    let tmp = path.with_extension(&unique);
    let tmp_digest = path.with_extension(format!("{unique}.sha256"));
    let written = std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::write(&tmp_digest, &digest))
        .and_then(|()| std::fs::rename(&tmp_digest, digest_path(path)))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        std::fs::remove_file(&tmp).ok();
        std::fs::remove_file(&tmp_digest).ok();
    }
    Ok(written?)
}

fn digest_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.sha256")
}

fn outcome_from_v0_2(o: v0_2::recengine::rules::types::Outcome) -> sdk::Outcome {
    use v0_2::recengine::rules::types::Outcome as W;
    match o {
        W::Dropped(v) => sdk::Outcome::Dropped(v),
        W::Rescored(v) => sdk::Outcome::Rescored(v),
        W::Reordered(v) => sdk::Outcome::Reordered(v),
        W::Promoted(v) => sdk::Outcome::Promoted(
            v.into_iter()
                .map(|p| sdk::Placement::at(p.item_id, p.position))
                .collect(),
        ),
    }
}

fn outcome_from_v0_1(o: v0_1::recengine::rules::types::Outcome) -> sdk::Outcome {
    use v0_1::recengine::rules::types::Outcome as W;
    match o {
        W::Dropped(v) => sdk::Outcome::Dropped(v),
        W::Rescored(v) => sdk::Outcome::Rescored(v),
        W::Reordered(v) => sdk::Outcome::Reordered(v),
    }
}

/// Maps a wasmtime error to a failure cause, given what the call wrote to
/// stderr.
fn classify_output(err: &wasmtime::Error, stderr: &[u8], instantiating: bool) -> Failure {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => Failure::Timeout,
            Trap::UnreachableCodeReached => {
                let text = String::from_utf8_lossy(stderr).trim().to_string();
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

/// The SDK major.minor a rule of `contract` must report; another is
/// refused with a message naming both.
fn check_sdk_version(version: &str, contract: Contract) -> anyhow::Result<()> {
    let ours = contract.sdk_major_minor();
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    if major_minor(version) != ours {
        anyhow::bail!(
            "the rule was built with rules-sdk {version}; this host needs {ours}.x for contract {ours} — rebuild it against the current SDK (a rule written without the Rust SDK, in Python or JavaScript say, reports sdk-version \"{ours}.0\" in its metadata)",
        );
    }
    Ok(())
}

/// Most parameters one rule may declare.
const MAX_PARAMS: usize = 32;

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
    if m.params.len() > MAX_PARAMS {
        anyhow::bail!(
            "{} parameters; at most {MAX_PARAMS} are allowed",
            m.params.len()
        );
    }
    for (i, p) in m.params.iter().enumerate() {
        if m.params[..i].iter().any(|q| q.name == p.name) {
            anyhow::bail!("parameter {:?} is declared twice", p.name);
        }
        if let sdk::ParamValue::Number(_) = p.default_value
            && !(p.min.is_finite() && p.max.is_finite() && p.min <= p.max)
        {
            anyhow::bail!(
                "parameter {:?}: min and max must be finite, min <= max",
                p.name
            );
        }
        p.check(&p.default_value)
            .map_err(|e| anyhow::anyhow!("parameter {:?}: its default is refused: {e}", p.name))?;
    }
    Ok(())
}

fn metadata_from_v0_2(m: v0_2::recengine::rules::types::RuleMetadata) -> sdk::Metadata {
    use v0_2::recengine::rules::types as w;
    sdk::Metadata {
        name: m.name,
        kind: match m.kind {
            w::RuleKind::Filter => sdk::Kind::Filter,
            w::RuleKind::Boost => sdk::Kind::Boost,
            w::RuleKind::Rerank => sdk::Kind::Rerank,
            w::RuleKind::Promote => sdk::Kind::Promote,
        },
        default_priority: m.default_priority,
        description: m.description,
        params: m
            .params
            .into_iter()
            .map(|p| sdk::Param {
                name: p.name,
                description: p.description,
                default_value: match p.default_value {
                    w::ParamValue::Number(n) => sdk::ParamValue::Number(n),
                    w::ParamValue::Flag(b) => sdk::ParamValue::Flag(b),
                    w::ParamValue::Text(s) => sdk::ParamValue::Text(s),
                    w::ParamValue::Strings(v) => sdk::ParamValue::Strings(v),
                },
                min: p.min,
                max: p.max,
                allowed: p.allowed,
            })
            .collect(),
        inputs: m
            .inputs
            .into_iter()
            .map(|i| sdk::Input {
                scope: match i.scope {
                    w::Scope::Item => sdk::Scope::Item,
                    w::Scope::ItemStat => sdk::Scope::ItemStat,
                    w::Scope::User => sdk::Scope::User,
                    w::Scope::UserStat => sdk::Scope::UserStat,
                    w::Scope::UserItem => sdk::Scope::UserItem,
                    w::Scope::Context => sdk::Scope::Context,
                },
                name: i.name,
                value_type: match i.value_type {
                    w::ValueType::Number => sdk::ValueType::Number,
                    w::ValueType::Flag => sdk::ValueType::Flag,
                    w::ValueType::Text => sdk::ValueType::Text,
                    w::ValueType::Strings => sdk::ValueType::Strings,
                    w::ValueType::Ids => sdk::ValueType::Ids,
                    w::ValueType::Timestamp => sdk::ValueType::Timestamp,
                },
            })
            .collect(),
        sdk_version: m.sdk_version,
        fail_closed: m.fail_closed,
    }
}

/// A 0.1 rule in today's terms: numeric parameters, and its fixed columns
/// as its inputs.
fn metadata_from_v0_1(m: v0_1::recengine::rules::types::RuleMetadata) -> sdk::Metadata {
    use v0_1::recengine::rules::types as w;
    sdk::Metadata {
        name: m.name,
        kind: match m.kind {
            w::RuleKind::Filter => sdk::Kind::Filter,
            w::RuleKind::Boost => sdk::Kind::Boost,
            w::RuleKind::Rerank => sdk::Kind::Rerank,
        },
        default_priority: m.default_priority,
        description: m.description,
        params: m
            .params
            .into_iter()
            .map(|p| sdk::Param::number(&p.name, &p.description, p.default_value, p.min, p.max))
            .collect(),
        inputs: catalogue::legacy_inputs(),
        sdk_version: m.sdk_version,
        fail_closed: m.fail_closed,
    }
}

/// Bytes of each memory (and table) reset by memset rather than returned to
/// the kernel when an instance ends.
const KEEP_RESIDENT: usize = 192 << 10;

/// The pool's per-memory ceiling; each store's own cap (`Limits`) is lower.
const MAX_MEMORY_CEILING: usize = 256 << 20;

/// Bytes of each memory reset in place (only the pages a call dirtied,
/// found by the kernel's `PAGEMAP_SCAN` where it has it) rather than
/// returned to the kernel, for large guests: an interpreter touches a few
/// MiB of its heap per call, and re-faulting them from the image on every
/// call was most of its cost.
const LARGE_KEEP_RESIDENT: usize = 32 << 20;

/// The process's two engines (compiled code is tied to its engine) and
/// their epoch ticker. Made on first use; every `RuleEngine` shares them.
struct Engines {
    small: Engine,
    large: Engine,
}

fn shared_engines() -> anyhow::Result<&'static Engines> {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    if let Some(engines) = ENGINES.get() {
        return Ok(engines);
    }
    let small = Engine::new(&engine_config(Sizing::Small))
        .map_err(|e| wasm_error(e, "creating the Wasm engine"))?;
    let large = Engine::new(&engine_config(Sizing::Large))
        .map_err(|e| wasm_error(e, "creating the Wasm engine for large components"))?;
    Ok(ENGINES.get_or_init(|| {
        start_epoch_ticker(vec![small.clone(), large.clone()]);
        Engines { small, large }
    }))
}

fn engine_config(sizing: Sizing) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // A synchronous embedding: no per-store state for component-model
    // async (48 sets it up for every store by default).
    config.concurrency_support(false);
    config.epoch_interruption(true);
    // Deep recursion traps (StackOverflow) well before the host's own stack
    // is at risk.
    config.max_wasm_stack(512 * 1024);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES);
    pool.total_core_instances(POOL_INSTANCES);
    pool.total_memories(POOL_INSTANCES);
    pool.total_tables(POOL_INSTANCES);
    pool.max_memory_size(MAX_MEMORY_CEILING);
    match sizing {
        Sizing::Small => {
            // Copy the (small) data segments into each instance instead of
            // mapping them copy-on-write: with slots reset by memset
            // (below), the CoW mapping only added a write fault per touched
            // page on every call.
            config.memory_init_cow(false);
            // A fresh instance per call is the point (no state between
            // users), so slots are recycled constantly. Measured
            // (benches/rules.rs), most of a call's fixed cost was the
            // kernel: madvise + TLB shootdowns to decommit each slot, then
            // page faults to touch it again. Resetting the first pages by
            // memset instead (rules use a small stack, see
            // builtin-rules/.cargo/config.toml) keeps a reused slot
            // resident. (Batching decommits made it worse: queued slots
            // cannot be reused, so every call faulted in a fresh one.)
            pool.linear_memory_keep_resident(KEEP_RESIDENT);
            pool.table_keep_resident(KEEP_RESIDENT);
            // And only the pages the call dirtied (Linux's PAGEMAP_SCAN,
            // 6.7+), not the whole resident region: a rule touches a few
            // of its 192 KiB. Measured with benches/rules.rs, interleaved
            // A/B: the eight built-ins over 100 candidates 186-190 ->
            // 143-147 us, one call 10.0 -> 9.1 us.
            pool.pagemap_scan(Enabled::Auto);
            // Bounds-checked memories without guard pages: a slot's
            // accessible size then never shrinks between instances, so
            // neither instantiation nor a rule's `memory.grow` calls
            // `mprotect`, each of which took the process's memory-map
            // lock and interrupted the other core to flush its TLB.
            config.signals_based_traps(false);
            config.memory_guard_size(0);
            config.guard_before_linear_memory(false);
        }
        Sizing::Large => {
            // An interpreter's pre-initialised heap (componentize-py's is
            // ~12 MiB) mapped copy-on-write from the compiled image rather
            // than copied into every fresh instance.
            config.memory_init_cow(true);
            // A slot reused for the same component keeps its mapping; the
            // pages the last call wrote are found by PAGEMAP_SCAN (Linux
            // 6.7+; elsewhere the first LARGE_KEEP_RESIDENT bytes are
            // compared wholesale) and restored from the image in place.
            pool.linear_memory_keep_resident(LARGE_KEEP_RESIDENT);
            pool.table_keep_resident(KEEP_RESIDENT);
            pool.pagemap_scan(Enabled::Auto);
        }
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// One thread for the whole process advances the epochs every tick.
fn start_epoch_ticker(engines: Vec<Engine>) {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                next += TICK;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for engine in &engines {
                    engine.increment_epoch();
                }
            }
        })
        .expect("spawning the epoch thread");
}

/// The wall clock a rule sees: the request's "now", so every rule of one
/// request agrees and a rule cannot use the clock to tell requests apart.
/// A cell rather than a value so that a reused instance sees each call's.
struct FixedClock(Arc<AtomicI64>);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }
    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_versions_must_share_major_and_minor() {
        assert!(check_sdk_version(sdk::SDK_VERSION, Contract::V0_2).is_ok());
        assert!(check_sdk_version("0.1.3", Contract::V0_1).is_ok());
        assert!(check_sdk_version("0.1.3", Contract::V0_2).is_err());
        let err = check_sdk_version("9.9.0", Contract::V0_2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rules-sdk 9.9.0"), "{err}");
        assert!(err.contains("rebuild"), "{err}");
        assert!(err.contains("sdk-version \"0.2.0\""), "{err}");
    }

    #[test]
    fn bad_components_are_refused_with_a_reason() {
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let err = engine.load(b"not wasm at all").unwrap_err().to_string();
        assert!(err.contains("not a valid WebAssembly component"), "{err}");
    }
}
