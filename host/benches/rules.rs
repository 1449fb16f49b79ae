//! The built-in rules over 100 and 1,000 candidates: the Wasm pipeline
//! (fresh sandboxed instance per rule call, contracts enforced) beside the
//! same rules run natively through the SDK (contracts enforced too); the
//! cost of one sandboxed call on its own; what declaring inputs costs (a
//! boost declaring ten attributes beside one declaring none: as the
//! service runs it, the candidates' item inputs read from the rows kept
//! beside the cached items; on an item's first request, when its row is
//! built; and encoded from a plain subject, as dry runs do); and, when
//! `RECENGINE_BENCH_V01_RULES` names a folder of the built-ins as contract
//! 0.1 built them (`scripts/bench-contract.sh` builds them from git), the
//! same pipeline on 0.1 and on 0.2 in one run; and one rule
//! (`boost_high_margin`) written in Python, JavaScript and Rust, per call
//! at 100 and 1,000 candidates, then at 8 concurrent callers (when the
//! toolchains of `scripts/lang-toolchains.sh` are installed).
//!
//! `cargo bench -p recengine --bench rules` (`-- languages` for the last
//! part alone)

use std::{
    path::PathBuf,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use recengine::rules::{
    engine::{Limits, RuleEngine},
    input::rows::{PlainSource, RowSource},
    pipeline,
    registry::{ActiveRule, RuleRegistry, RuleSource},
};
use recengine_builtin_rules as b;
use recengine_rules_sdk::{
    Rule,
    testing::{Item, RequestBuilder, Subject, run},
};

// The service's allocator (`main.rs`): the pipeline is measured as it runs
// there, not against the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_800_000_000_000;
const CATEGORIES: [&str; 8] = [
    "books", "toys", "home", "garden", "music", "games", "beauty", "sports",
];
const TAGS: [&str; 12] = [
    "new", "eco", "kids", "sale", "gift", "smart", "retro", "pro", "mini", "max", "lux", "basic",
];

/// Candidates with realistic attributes: category, 3 tags, stock,
/// promotion, age limit, origin and country lists on some.
fn request(n: usize) -> Subject {
    let mut b = RequestBuilder::new()
        .user(
            42,
            Some(17),
            Some("DE"),
            &["books", "games"],
            &["eco", "gift"],
            &[3, 17, 99],
        )
        .context(Some("DE"), Some("mobile"), Some(20), false, NOW, &[]);
    for i in 0..n {
        let i64_ = i as i64;
        let mut item = Item::new(i64_, 1.0 / (1.0 + i as f64))
            .category(CATEGORIES[i % CATEGORIES.len()])
            .tags(&[TAGS[i % 12], TAGS[(i * 7 + 3) % 12], TAGS[(i * 5 + 1) % 12]])
            .created_at_ms(NOW - (i64_ % 30) * 86_400_000)
            .in_stock(i % 11 != 0)
            .origin(["DE", "FR", "US"][i % 3])
            .attr("price", 5.0 + (i % 50) as f64)
            .attr("margin", (i % 10) as f64 / 20.0)
            .attr("weight", 1.0 + (i % 4) as f64)
            .attr("rating", 1.0 + (i % 5) as f64)
            .attr("brand", ["acme", "zeta", "orbis", "lumen"][i % 4])
            .attr("colour", ["red", "blue"][i % 2])
            .attr("premium", i % 9 == 0);
        if i % 5 == 0 {
            item = item.promo_until(Some(NOW + if i % 10 == 0 { 1 } else { -1 }));
        }
        if i % 13 == 0 {
            item = item.min_age(18);
        }
        if i % 17 == 0 {
            item = item.blocked_in(&["DE"]);
        }
        if i % 19 == 0 {
            item = item.allowed_in(&["US", "CA"]);
        }
        b = b.item(item);
    }
    b.build()
}

/// One rule natively: the subject's items re-ordered and re-scored as the
/// rule's outcome says.
fn native_step<R: Rule>(subject: &mut Subject) {
    let ranked = run::<R>(subject, &[]).unwrap();
    let mut by_id: std::collections::HashMap<i64, Item> =
        subject.items.drain(..).map(|i| (i.id, i)).collect();
    subject.items = ranked
        .list
        .ids
        .iter()
        .zip(&ranked.list.scores)
        .map(|(id, &score)| {
            let mut item = by_id.remove(id).unwrap();
            item.score = score;
            item
        })
        .collect();
}

fn native_pipeline(subject: &Subject) -> usize {
    let mut s = subject.clone();
    native_step::<b::FilterOutOfStock>(&mut s);
    native_step::<b::FilterExcluded>(&mut s);
    native_step::<b::FilterAgeRestricted>(&mut s);
    native_step::<b::FilterPurchased>(&mut s);
    native_step::<b::FilterGeoRestricted>(&mut s);
    native_step::<b::BoostPreferences>(&mut s);
    native_step::<b::BoostPromotional>(&mut s);
    native_step::<b::BoostNewItems>(&mut s);
    native_step::<b::Diversity>(&mut s);
    s.items.len()
}

fn engine() -> Arc<RuleEngine> {
    RuleEngine::new(Limits {
        deadline: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .unwrap()
}

/// A registry holding exactly `components`.
fn registry_of(components: &[Vec<u8>]) -> RuleRegistry {
    let registry = RuleRegistry::new(engine());
    let rules = components
        .iter()
        .map(|bytes| {
            ActiveRule::from_compiled(
                registry.engine.load(bytes).unwrap(),
                RuleSource::Custom("bench".into()),
                registry.engine.limits(),
            )
        })
        .collect();
    registry.replace(rules);
    registry
}

/// Builds the Rust rule crates under `crate_dir` (relative to the
/// repository) for `wasm32-wasip2` into `target/{target_name}` and reads
/// the component `name`.
fn build_rule(crate_dir: &str, target_name: &str, name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target").join(target_name);
    let status = Command::new(env!("CARGO"))
        .current_dir(root.join(crate_dir))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building {crate_dir} failed");
    std::fs::read(target.join(format!("wasm32-wasip2/release/{name}.wasm"))).unwrap()
}

/// The bench fixtures (`benches/fixtures`), built on first use.
fn fixture(name: &str) -> Vec<u8> {
    build_rule("host/benches/fixtures", "bench-rules", name)
}

/// The Python and JavaScript example rules, built from source by the
/// pinned toolchains (shared with the API tests).
#[path = "../tests/api/languages/build.rs"]
#[allow(dead_code)] // the bench builds only some of the sources
mod lang_build;

/// `examples/merchandising`'s `boost_high_margin` (Rust, SDK), built as the
/// API tests build it.
fn rust_margin_boost() -> Vec<u8> {
    build_rule(
        "examples/merchandising",
        "example-merchandising",
        "boost_high_margin",
    )
}

/// The same rule in three languages: per call (criterion), then `CALLS`
/// calls from each of 8 threads at once, reported as percentiles and
/// deadline misses (25 ms, the default).
fn languages(c: &mut Criterion) {
    if !lang_build::toolchains_ready("the languages bench") {
        return;
    }
    let rules = [
        ("python", lang_build::component(lang_build::Source::Python)),
        (
            "javascript",
            lang_build::component(lang_build::Source::JavaScript),
        ),
        ("rust", rust_margin_boost()),
    ];
    // Compiled once (an interpreter takes seconds to compile).
    let registries: Vec<_> = rules
        .iter()
        .map(|(lang, bytes)| (*lang, bytes.len(), registry_of(std::slice::from_ref(bytes))))
        .collect();
    // Each rule with a fresh instance per call (the default), and with
    // `reuse_instances` (a bundle's opt-in).
    let variants = |registry: &RuleRegistry| {
        let rule = registry.snapshot().rules[0].clone();
        let mut reused = rule.clone();
        reused.limits.reuse_instances = true;
        [("", rule), ("_reused", reused)]
    };
    let mut group = c.benchmark_group("languages");
    for (lang, size, registry) in &registries {
        eprintln!(
            "{lang}: component {:.1} MB, {:?}",
            *size as f64 / 1e6,
            registry.snapshot().rules[0].compiled.sizing
        );
        for (suffix, rule) in variants(registry) {
            // A reused JavaScript instance's heap grows over 1,000-candidate
            // calls until one exceeds the memory cap: reuse is measured at
            // 100 only.
            let sizes: &[usize] = if suffix.is_empty() {
                &[100, 1000]
            } else {
                &[100]
            };
            for &n in sizes {
                let req = request(n);
                pipeline::call_alone(registry, &rule, &req).unwrap();
                let id = BenchmarkId::new(format!("{lang}{suffix}"), n);
                group.bench_with_input(id, &req, |bench, req| {
                    bench.iter(|| pipeline::call_alone(registry, &rule, req).unwrap())
                });
            }
        }
    }
    group.finish();

    const THREADS: usize = 8;
    const CALLS: usize = 200;
    for ((lang, _, registry), (suffix, rule)) in registries
        .iter()
        .flat_map(|r| variants(&r.2).map(|v| (r, v)))
    {
        let rule = &rule;
        let req = request(100);
        let started = Instant::now();
        let mut times: Vec<Duration> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        (0..CALLS)
                            .map(|_| {
                                let t = Instant::now();
                                // A failure (a missed deadline) is counted
                                // by its time below.
                                let _ = pipeline::call_alone(registry, rule, &req);
                                t.elapsed()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let wall = started.elapsed();
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        let misses = times
            .iter()
            .filter(|t| **t >= Duration::from_millis(25))
            .count();
        println!(
            "languages/{lang}{suffix}/100 at {THREADS} concurrent: p50 {:?}, p99 {:?}, max {:?}, \
             {misses} of {} calls at or over 25 ms, {:.0} calls/s",
            at(0.5),
            at(0.99),
            times[times.len() - 1],
            times.len(),
            times.len() as f64 / wall.as_secs_f64()
        );
    }
}

fn benches(c: &mut Criterion) {
    let registry = RuleRegistry::with_builtins(engine()).unwrap();
    let set = registry.snapshot();

    let mut group = c.benchmark_group("builtin_rules");
    for n in [100, 1000] {
        let req = request(n);
        let kept_native = native_pipeline(&req);
        let kept_wasm = pipeline::run(&registry, &set, &req, None, None, "")
            .list
            .len();
        assert_eq!(kept_native, kept_wasm, "Wasm and native disagree");
        group.bench_with_input(BenchmarkId::new("native", n), &req, |bench, req| {
            bench.iter(|| native_pipeline(req))
        });
        group.bench_with_input(BenchmarkId::new("wasm", n), &req, |bench, req| {
            bench.iter(|| {
                pipeline::run(&registry, &set, req, None, None, "")
                    .list
                    .len()
            })
        });
    }
    group.finish();

    // The same pipeline as contract 0.1 built it and as 0.2 does, in one
    // run: declared inputs must not slow the built-ins.
    if let Ok(dir) = std::env::var("RECENGINE_BENCH_V01_RULES") {
        let mut v01: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(v01.len(), 8, "the eight 0.1 built-ins in {dir}");
        let old = registry_of(&v01);
        let old_set = old.snapshot();
        assert!(
            old_set
                .rules
                .iter()
                .all(|r| r.compiled.contract.as_str() == "0.1")
        );
        // The eight rules both contracts have (0.2 adds filter_excluded).
        v01.clear();
        let current_set = {
            let mut rules = set.rules.clone();
            rules.retain(|r| r.name() != "filter_excluded");
            registry.replace(rules);
            registry.snapshot()
        };
        let req = request(100);
        let mut contract = c.benchmark_group("contract");
        contract.bench_function("v0_1_100", |bench| {
            bench.iter(|| {
                pipeline::run(&old, &old_set, &req, None, None, "")
                    .list
                    .len()
            })
        });
        contract.bench_function("v0_2_100", |bench| {
            bench.iter(|| {
                pipeline::run(&registry, &current_set, &req, None, None, "")
                    .list
                    .len()
            })
        });
        contract.finish();
    }

    // Declaring inputs: the same boost reading nothing and reading ten
    // attributes of 100 candidates.
    let inputs = registry_of(&[
        fixture("reads_nothing"),
        fixture("declares_ten"),
        fixture("reads_ten"),
    ]);
    let inputs_set = inputs.snapshot();
    let only = |name: &str| {
        let rule = inputs_set.rules.iter().find(|r| r.name() == name).unwrap();
        recengine::rules::registry::RuleSet::new(vec![rule.clone()], 0)
    };
    let (nothing, declares, ten) = (
        only("reads_nothing"),
        only("declares_ten"),
        only("reads_ten"),
    );
    let req = request(100);
    // The service's form: the subject's items carry ids and scores, their
    // item inputs come from the sources' kept rows.
    let sources = |req: &Subject| -> Vec<Arc<dyn RowSource>> {
        req.items
            .iter()
            .map(|i| Arc::new(PlainSource::new(i.clone())) as Arc<dyn RowSource>)
            .collect()
    };
    let bare = req.with_items(req.items.iter().map(|i| Item::new(i.id, i.score)).collect());
    let kept = sources(&req);
    let mut declared = c.benchmark_group("declared_inputs");
    // Their ratio is a goal (<= 1.5x): more samples than the other groups.
    declared
        .sample_size(60)
        .measurement_time(Duration::from_secs(5));
    declared.bench_function("none_100", |bench| {
        bench.iter(|| {
            pipeline::run(&inputs, &nothing, &bare, Some(&kept), None, "")
                .list
                .len()
        })
    });
    declared.bench_function("declares_ten_100", |bench| {
        bench.iter(|| {
            pipeline::run(&inputs, &declares, &bare, Some(&kept), None, "")
                .list
                .len()
        })
    });
    declared.bench_function("ten_100", |bench| {
        bench.iter(|| {
            pipeline::run(&inputs, &ten, &bare, Some(&kept), None, "")
                .list
                .len()
        })
    });
    declared.bench_function("ten_100_first_request", |bench| {
        bench.iter_batched_ref(
            || sources(&req),
            |fresh| {
                pipeline::run(&inputs, &ten, &bare, Some(fresh), None, "")
                    .list
                    .len()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    declared.bench_function("ten_100_plain_subject", |bench| {
        bench.iter(|| {
            pipeline::run(&inputs, &ten, &req, None, None, "")
                .list
                .len()
        })
    });
    declared.finish();

    // One sandboxed call of the cheapest rule: the fixed cost (store,
    // instantiation from the pool, lowering, call).
    let purchased = set
        .rules
        .iter()
        .find(|r| r.name() == "filter_purchased")
        .unwrap();
    let mut single = c.benchmark_group("one_call");
    for (label, n) in [
        ("instantiate_and_call_empty", 0),
        ("instantiate_and_call_100", 100),
    ] {
        let req = request(n);
        single.bench_function(label, |bench| {
            bench.iter(|| pipeline::call_alone(&registry, purchased, &req).unwrap())
        });
    }
    single.finish();
}

criterion_group! {
    name = rules;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = benches, languages
}
criterion_main!(rules);
