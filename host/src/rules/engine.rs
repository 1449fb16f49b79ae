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
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use recengine_rules_sdk as sdk;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
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
    clock: Arc<std::sync::atomic::AtomicI64>,
    stderr: MemoryOutputPipe,
    memory_bytes: usize,
    calls: u32,
}

enum WarmInstance {
    V0_1(v0_1::Rule),
    V0_2(v0_2::Rule),
}

/// How much of a failing rule's stderr (its panic message) is kept.
const STDERR_CAPTURE: usize = 4096;
/// The epoch tick: deadlines are whole ticks.
const TICK: Duration = Duration::from_millis(1);
/// Slots the pool of the small-component engine keeps (component and core
/// instances, memories, tables). A request now holds its rules' instances
/// until its store is dropped (up to [`SMALL_RULES_PER_STORE`], about a
/// memory each for the built-ins), so this is sized for 256 requests of 16
/// rules at once rather than for 1,000 single calls. A rule that finds the
/// pool exhausted fails with cause `instantiate`. Each memory slot
/// reserves (never commits) 4 GiB of address space plus its guard: 16 TiB
/// here, of the 128 TiB a 64-bit process has.
const SMALL_POOL_SLOTS: u32 = 4096;
/// The same for large components: a store per call, as before.
const LARGE_POOL_SLOTS: u32 = 1000;

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

/// Per-store state: the limits of the rule being instantiated or called
/// and, for a rule whose component imports WASI, its WASI context.
///
/// One store serves several rules of a request in turn (see [`Session`]);
/// before each rule the session swaps in that rule's memory cap and, when
/// its component imports WASI, a fresh context (its own stderr, the
/// request's clock), so nothing here carries from one rule to the next.
pub struct RuleState {
    /// `None` while a component that imports nothing runs: the built-ins
    /// need no WASI, and not building a context is most of what a store
    /// cost them.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for RuleState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        // Only a component that imports WASI reaches this, and the session
        // gives each such rule a context before instantiating it. Should
        // one ever be missing, the fallback grants nothing either.
        let ctx = self
            .wasi
            .get_or_insert_with(|| wasi_ctx(SinkOutputStream, Arc::default()));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// WASI granting nothing: no preopened directories, no environment or
/// arguments, no sockets, stdout discarded, stderr to `stderr`, the wall
/// clock reading `clock` (the request's "now").
fn wasi_ctx(
    stderr: impl wasmtime_wasi::cli::StdoutStream + 'static,
    clock: Arc<std::sync::atomic::AtomicI64>,
) -> WasiCtx {
    WasiCtx::builder()
        .stdout(SinkOutputStream)
        .stderr(stderr)
        .wall_clock(FixedClock(clock))
        .build()
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
    pub contract: Contract,
    /// Whether the component imports WASI (custom rules built for
    /// wasm32-wasip2, Python and JavaScript rules): its calls get a WASI
    /// context. The built-ins import nothing and get none.
    pub wasi: bool,
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
            .field("wasi", &self.wasi)
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
        let wasi = component
            .component_type()
            .imports(&sandbox.engine)
            .any(|(name, _)| name.starts_with("wasi:"));
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
            .read_metadata(&pre, sizing, wasi)
            .map_err(|f| anyhow::anyhow!("reading its metadata failed: {f}"))?;
        check_sdk_version(&metadata.sdk_version, contract)?;
        check_params(&metadata)?;
        if contract == Contract::V0_2 {
            catalogue::check_inputs(&metadata)
                .map_err(|e| anyhow::anyhow!("{}: {e}", metadata.name))?;
        }
        let compiled = Arc::new(CompiledRule {
            digest: digest.clone(),
            sizing,
            metadata,
            contract,
            wasi,
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

    /// A store for up to `rules` rules' instances, one after the other.
    /// Its instance, memory and table counts are those of one rule times
    /// `rules` (read once, when the limiter is installed); the memory cap
    /// and the deadline are set per rule by [`arm`].
    fn new_store(&self, sizing: Sizing, rules: u32) -> Store<RuleState> {
        let state = RuleState {
            wasi: None,
            table: ResourceTable::new(),
            limits: store_limits(self.limits.memory_bytes, rules),
        };
        let mut store = Store::new(&self.sandbox(sizing).engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store
    }

    /// At load, off the request path: a busy machine must not turn a slow
    /// first call into a refused rule (or a service that cannot start), so
    /// the deadline is at least `LOAD_DEADLINE`; a rule that loops in
    /// `metadata` is still stopped. A store of its own, sized for one
    /// rule: a component needing more instances, memories or tables than
    /// one rule may have is refused here, which is what lets a request's
    /// shared store be sized as a multiple of it.
    fn read_metadata(
        &self,
        pre: &Pre,
        sizing: Sizing,
        wasi: bool,
    ) -> Result<sdk::Metadata, Failure> {
        let limits = Limits {
            deadline: self.limits.deadline.max(LOAD_DEADLINE),
            ..self.limits
        };
        let mut store = self.new_store(sizing, 1);
        let stderr = arm(&mut store, wasi, 0, &limits, 1);
        let failed = |e: wasmtime::Error, instantiating| {
            classify_output(&e, &stderr_of(stderr.as_ref()), instantiating)
        };
        match pre {
            Pre::V0_2(pre) => {
                let rule = pre.instantiate(&mut store).map_err(|e| failed(e, true))?;
                let m = rule
                    .call_metadata(&mut store)
                    .map_err(|e| failed(e, false))?;
                Ok(metadata_from_v0_2(m))
            }
            Pre::V0_1(pre) => {
                let rule = pre.instantiate(&mut store).map_err(|e| failed(e, true))?;
                let m = rule
                    .call_metadata(&mut store)
                    .map_err(|e| failed(e, false))?;
                Ok(metadata_from_v0_1(m))
            }
        }
    }

    /// The sandbox of one request: its rules' instances share stores (see
    /// [`Session`]).
    pub fn session(&self) -> Session<'_> {
        Session {
            engine: self,
            small: None,
            large: None,
        }
    }

    /// Calls the rule's `apply` in a fresh instance, under `limits` (the
    /// engine's, or tighter ones a bundle set for the rule), in a store of
    /// its own: for a call outside a request's [`Session`].
    pub fn apply_within(
        &self,
        rule: &CompiledRule,
        call: &Call,
        limits: &Limits,
    ) -> Result<sdk::Outcome, Failure> {
        self.session().apply(rule, call, limits)
    }
}

/// How many rules' instances a request's store for small components holds
/// before the session replaces it. Every instance lives (with its memory
/// slot) until its store is dropped, so this bounds what a request holds at
/// once: 16 instances cover the nine built-ins and a bundle's rules in one
/// or two stores, at most 16 x the rule memory cap resident.
const SMALL_RULES_PER_STORE: u32 = 16;

impl Sizing {
    /// Rules per shared store (see [`SMALL_RULES_PER_STORE`]). A large
    /// component (an interpreter, ~12 MiB of heap per instance) gets a
    /// store per call as before: its call costs milliseconds, so the store
    /// set-up saved would be noise, while keeping several of its heaps
    /// alive until the request ends would multiply its resident memory.
    fn rules_per_store(self) -> u32 {
        match self {
            Sizing::Small => SMALL_RULES_PER_STORE,
            Sizing::Large => 1,
        }
    }
}

/// The limits of a store for `rules` rules, each capped at `memory_bytes`
/// per linear memory. The counts are one rule's (16 instances, 4 memories,
/// 16 tables, checked at load) times `rules`.
fn store_limits(memory_bytes: usize, rules: u32) -> StoreLimits {
    let rules = rules as usize;
    StoreLimitsBuilder::new()
        .memory_size(memory_bytes)
        .instances(16 * rules)
        .tables(16 * rules)
        .memories(4 * rules)
        .trap_on_grow_failure(true)
        .build()
}

/// Arms `store` for the next rule: its memory cap (a `ResourceLimiter`
/// consults it on every grow, so the cap is this rule's even in a shared
/// store: earlier instances are never called again), its deadline (armed
/// before instantiation, which runs guest code), and, for a component that
/// imports WASI, a fresh context whose stderr is returned. A rule without
/// WASI gets none: nothing to build, nothing another rule left behind.
fn arm(
    store: &mut Store<RuleState>,
    wasi: bool,
    now_ms: i64,
    limits: &Limits,
    rules: u32,
) -> Option<MemoryOutputPipe> {
    let state = store.data_mut();
    state.limits = store_limits(limits.memory_bytes, rules);
    let stderr = if wasi {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        state.wasi = Some(wasi_ctx(
            stderr.clone(),
            Arc::new(std::sync::atomic::AtomicI64::new(now_ms)),
        ));
        state.table = ResourceTable::new();
        Some(stderr)
    } else {
        state.wasi = None;
        None
    };
    store.set_epoch_deadline(deadline_ticks(limits));
    stderr
}

fn deadline_ticks(limits: &Limits) -> u64 {
    (limits.deadline.as_millis() as u64).max(1)
}

fn stderr_of(pipe: Option<&MemoryOutputPipe>) -> Vec<u8> {
    pipe.map(|p| p.contents().to_vec()).unwrap_or_default()
}

/// The sandbox of one request. Each rule still gets a fresh instance, from
/// its `InstancePre` (nothing survives the request; separate instances
/// have separate memories, so one rule cannot see another's), but the
/// store those instances live in, its limiter and its epoch deadline are
/// set up once per request rather than once per rule: that set-up was most
/// of a built-in's call.
///
/// Per rule, [`arm`] sets the rule's own memory cap and deadline, so a
/// bundle's tighter limits hold in a shared store. A store that saw a
/// wasmtime error (a trap, a timeout, a memory cap hit, a failed
/// instantiation) is dropped and the next rule gets a new one: a trap can
/// stop a call half-way, and nothing of it may reach the next rule. A rule
/// that returned an error or broke its contract ran to its end; its store
/// carries on.
pub struct Session<'e> {
    engine: &'e RuleEngine,
    small: Option<SharedStore>,
    large: Option<SharedStore>,
}

struct SharedStore {
    store: Store<RuleState>,
    /// Rules instantiated in it so far.
    rules: u32,
}

impl Session<'_> {
    /// Calls the rule's `apply` in a fresh instance in this request's
    /// store, under `limits` (the engine's, or tighter ones a bundle set
    /// for the rule).
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
        if !matches!(
            (&rule.pre, call),
            (Pre::V0_2(_), Call::V0_2(_)) | (Pre::V0_1(_), Call::V0_1(_))
        ) {
            return Err(Failure::Instantiate(format!(
                "a request of another contract than the rule's {}",
                rule.contract.as_str()
            )));
        }
        if limits.reuse_instances {
            return self.engine.apply_reusing(rule, call, limits);
        }
        let per_store = rule.sizing.rules_per_store();
        let slot = match rule.sizing {
            Sizing::Small => &mut self.small,
            Sizing::Large => &mut self.large,
        };
        if !matches!(slot, Some(shared) if shared.rules < per_store) {
            *slot = Some(SharedStore {
                store: self.engine.new_store(rule.sizing, per_store),
                rules: 0,
            });
        }
        let Some(shared) = slot.as_mut() else {
            unreachable!("filled above")
        };
        shared.rules += 1;
        let stderr = arm(
            &mut shared.store,
            rule.wasi,
            call.now_ms(),
            limits,
            per_store,
        );
        match instantiate_and_call(&mut shared.store, &rule.pre, call) {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(Failure::RuleError(truncate(message, 500))),
            Err((e, instantiating)) => {
                *slot = None;
                Err(classify_output(
                    &e,
                    &stderr_of(stderr.as_ref()),
                    instantiating,
                ))
            }
        }
    }
}

/// A fresh instance of `pre` in `store`, called with `call` (of the same
/// contract: checked by the caller). A wasmtime error comes with whether
/// it happened while instantiating.
fn instantiate_and_call(
    store: &mut Store<RuleState>,
    pre: &Pre,
    call: &Call,
) -> Result<Result<sdk::Outcome, String>, (wasmtime::Error, bool)> {
    match (pre, call) {
        (Pre::V0_2(pre), Call::V0_2(request)) => {
            let instance = pre.instantiate(&mut *store).map_err(|e| (e, true))?;
            instance
                .call_apply(&mut *store, request)
                .map(|r| r.map(outcome_from_v0_2))
                .map_err(|e| (e, false))
        }
        (Pre::V0_1(pre), Call::V0_1(request)) => {
            let instance = pre.instantiate(&mut *store).map_err(|e| (e, true))?;
            instance
                .call_apply(&mut *store, request)
                .map(|r| r.map(outcome_from_v0_1))
                .map_err(|e| (e, false))
        }
        _ => Err((
            wasmtime::format_err!("a request of another contract than the rule's"),
            true,
        )),
    }
}

impl RuleEngine {
    /// `apply_within` for a rule that opted into reuse: an idle instance of
    /// the rule (made under the same memory cap) if there is one, a new one
    /// otherwise; kept afterwards only if the call succeeded, so a trap, a
    /// timeout or an error never leaves a broken instance behind.
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
                warm.clock.store(call.now_ms(), Ordering::Relaxed);
                warm.store.set_epoch_deadline(deadline_ticks(limits));
                warm
            }
            None => {
                // A store of its own (the instance outlives the request),
                // whose clock is a cell each call sets.
                let mut store = self.new_store(rule.sizing, 1);
                let clock = Arc::new(std::sync::atomic::AtomicI64::new(call.now_ms()));
                let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
                let state = store.data_mut();
                state.limits = store_limits(limits.memory_bytes, 1);
                if rule.wasi {
                    state.wasi = Some(wasi_ctx(stderr.clone(), clock.clone()));
                }
                store.set_epoch_deadline(deadline_ticks(limits));
                let failed = |e: wasmtime::Error| classify_output(&e, &stderr.contents(), true);
                let instance = match &rule.pre {
                    Pre::V0_2(pre) => {
                        WarmInstance::V0_2(pre.instantiate(&mut store).map_err(failed)?)
                    }
                    Pre::V0_1(pre) => {
                        WarmInstance::V0_1(pre.instantiate(&mut store).map_err(failed)?)
                    }
                };
                Warm {
                    store,
                    instance,
                    clock,
                    stderr,
                    memory_bytes: limits.memory_bytes,
                    calls: 0,
                }
            }
        };
        // What the instance wrote to stderr before this call is not this
        // call's message.
        let stderr_before = warm.stderr.contents().len();
        let answer = match (&warm.instance, call) {
            (WarmInstance::V0_2(instance), Call::V0_2(request)) => instance
                .call_apply(&mut warm.store, request)
                .map(|r| r.map(outcome_from_v0_2)),
            (WarmInstance::V0_1(instance), Call::V0_1(request)) => instance
                .call_apply(&mut warm.store, request)
                .map(|r| r.map(outcome_from_v0_1)),
            _ => {
                return Err(Failure::Instantiate(format!(
                    "a request of another contract than the rule's {}",
                    rule.contract.as_str()
                )));
            }
        };
        let result = match answer {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(Failure::RuleError(truncate(message, 500))),
            Err(e) => {
                let text = warm.stderr.contents();
                let own = text.get(stderr_before..).unwrap_or_default();
                Err(classify_output(&e, own, false))
            }
        };
        warm.calls += 1;
        if result.is_ok() && warm.calls < REUSE_CALLS {
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
/// stderr (nothing, for a component without WASI).
fn classify_output(err: &wasmtime::Error, stderr: &[u8], instantiating: bool) -> Failure {
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => Failure::Timeout,
            Trap::UnreachableCodeReached => {
                let text = String::from_utf8_lossy(stderr).trim().to_string();
                Failure::Trap(if text.is_empty() {
                    panic_site(err)
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

/// A panic's message where the rule had nowhere to write one (a component
/// without WASI, such as the built-ins): "panicked in" the innermost frame
/// of the rule's own code in the Wasm backtrace (the frames inside it are
/// the panic machinery), or just "panicked" when the component carries no
/// function names.
fn panic_site(err: &wasmtime::Error) -> String {
    const MACHINERY: [&str; 8] = [
        "std::", "core::", "alloc::", "<std::", "<core::", "<alloc::", "__rust", "rust_",
    ];
    let site = err
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .into_iter()
        .flat_map(|bt| bt.frames())
        .filter_map(|frame| frame.func_name())
        .map(demangle)
        .find(|name| !MACHINERY.iter().any(|m| name.starts_with(m)));
    match site {
        Some(name) => format!("panicked in {}", truncate(name, 200)),
        None => "panicked".into(),
    }
}

/// A Rust legacy-mangled name (`_ZN4core9panicking5panic17h…E`) as its
/// path (`core::panicking::panic`); any other name as it is. Enough to
/// name a frame in a failure message; not a full demangler.
fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else {
        return name.to_string();
    };
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&d| d > 0) {
        let Some(part) = rest[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|len| rest.get(digits..digits + len))
        else {
            break;
        };
        rest = &rest[digits + part.len()..];
        // The trailing hash (`h` and 16 hex digits) names no one.
        if !(part.len() == 17 && part.starts_with('h') && rest == "E") {
            parts.push(part);
        }
    }
    if parts.is_empty() {
        return name.to_string();
    }
    let mut path = parts.join("::");
    for (escaped, plain) in [
        ("..", "::"),
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$u20$", " "),
        ("$RF$", "&"),
        ("$C$", ","),
        ("$BP$", "*"),
    ] {
        path = path.replace(escaped, plain);
    }
    path.strip_prefix('_').unwrap_or(&path).to_string()
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
    // A sync embedding: no per-store state for concurrent (async component
    // model) calls. Already the default with the wasmtime features built
    // here (no `component-model-async`: enabling it fails to create an
    // engine in this build, checked on 2026-12-06), so it measures the
    // same; explicit so that turning that feature on later does not
    // quietly add the state to every request's store.
    config.concurrency_support(false);
    config.epoch_interruption(true);
    // Deep recursion traps (StackOverflow) well before the host's own stack
    // is at risk.
    config.max_wasm_stack(512 * 1024);
    let mut pool = PoolingAllocationConfig::default();
    let slots = match sizing {
        Sizing::Small => SMALL_POOL_SLOTS,
        Sizing::Large => LARGE_POOL_SLOTS,
    };
    pool.total_component_instances(slots);
    pool.total_core_instances(slots);
    pool.total_memories(slots);
    pool.total_tables(slots);
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
struct FixedClock(Arc<std::sync::atomic::AtomicI64>);

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
    fn mangled_frame_names_read_as_paths() {
        assert_eq!(
            demangle("_ZN23recengine_builtin_rules9Diversity5apply17h0123456789abcdefE"),
            "recengine_builtin_rules::Diversity::apply"
        );
        assert_eq!(
            demangle(
                "_ZN80_$LT$recengine_builtin_rules..Diversity$u20$as$u20$recengine_rules_sdk..Rule$GT$5apply17h457880bbbac81188E"
            ),
            "<recengine_builtin_rules::Diversity as recengine_rules_sdk::Rule>::apply"
        );
        assert_eq!(demangle("cabi_realloc"), "cabi_realloc");
        assert_eq!(demangle("_ZNbroken"), "_ZNbroken");
    }

    #[test]
    fn bad_components_are_refused_with_a_reason() {
        let engine = RuleEngine::new(Limits::default()).unwrap();
        let err = engine.load(b"not wasm at all").unwrap_err().to_string();
        assert!(err.contains("not a valid WebAssembly component"), "{err}");
    }
}
