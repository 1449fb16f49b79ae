//! The eight built-in rules over 100 and 1,000 candidates: the Wasm pipeline
//! (fresh sandboxed instance per rule call, contracts enforced) beside the
//! same rules run natively through the SDK (contracts enforced too), plus
//! the cost of one sandboxed call on its own.
//!
//! `cargo bench -p recengine --bench rules`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use recengine::rules::{
    engine::{Limits, RuleEngine},
    input::to_wit,
    pipeline,
    registry::RuleRegistry,
};
use recengine_builtin_rules as b;
use recengine_rules_sdk::{
    Config, Request, Rule, contract,
    testing::{Item, RequestBuilder},
};

const NOW: i64 = 1_800_000_000_000;
const CATEGORIES: [&str; 8] = [
    "books", "toys", "home", "garden", "music", "games", "beauty", "sports",
];
const TAGS: [&str; 12] = [
    "new", "eco", "kids", "sale", "gift", "smart", "retro", "pro", "mini", "max", "lux", "basic",
];

/// Candidates with realistic attributes: category, 3 tags, stock,
/// promotion, age limit, origin and country lists on some.
fn request(n: usize) -> Request {
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
            .origin(["DE", "FR", "US"][i % 3]);
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

fn native_step<R: Rule>(req: &mut Request) {
    let meta = R::metadata();
    let config = meta.default_config();
    let outcome = R::apply(req, &Config::new(&meta.params, &config)).unwrap();
    contract::apply(meta.kind, &mut req.candidates, outcome).unwrap();
}

fn native_pipeline(req: &Request) -> usize {
    let mut req = req.clone();
    native_step::<b::FilterOutOfStock>(&mut req);
    native_step::<b::FilterAgeRestricted>(&mut req);
    native_step::<b::FilterPurchased>(&mut req);
    native_step::<b::FilterGeoRestricted>(&mut req);
    native_step::<b::BoostPreferences>(&mut req);
    native_step::<b::BoostPromotional>(&mut req);
    native_step::<b::BoostNewItems>(&mut req);
    native_step::<b::Diversity>(&mut req);
    req.candidates.len()
}

fn benches(c: &mut Criterion) {
    let engine = RuleEngine::new(Limits {
        deadline: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .unwrap();
    let registry = RuleRegistry::with_builtins(engine).unwrap();
    let set = registry.snapshot();

    let mut group = c.benchmark_group("eight_rules");
    for n in [100, 1000] {
        let req = request(n);
        let kept_native = native_pipeline(&req);
        let kept_wasm = pipeline::run(&registry, &set, req.clone(), None)
            .candidates
            .len();
        assert_eq!(kept_native, kept_wasm, "Wasm and native disagree");
        group.bench_with_input(BenchmarkId::new("native", n), &req, |bench, req| {
            bench.iter(|| native_pipeline(req))
        });
        group.bench_with_input(BenchmarkId::new("wasm", n), &req, |bench, req| {
            bench.iter(|| {
                pipeline::run(&registry, &set, req.clone(), None)
                    .candidates
                    .len()
            })
        });
    }
    group.finish();

    // One sandboxed call of the cheapest rule on an empty list: the fixed
    // cost (store, instantiation from the pool, lowering, call).
    let mut single = c.benchmark_group("one_call");
    let purchased = set
        .rules
        .iter()
        .find(|r| r.name() == "filter_purchased")
        .unwrap();
    let empty = to_wit(&request(0), &purchased.config);
    single.bench_function("instantiate_and_call_empty", |bench| {
        bench.iter(|| registry.engine.apply(&purchased.compiled, &empty).unwrap())
    });
    let hundred = to_wit(&request(100), &purchased.config);
    single.bench_function("instantiate_and_call_100", |bench| {
        bench.iter(|| {
            registry
                .engine
                .apply(&purchased.compiled, &hundred)
                .unwrap()
        })
    });
    single.finish();
}

criterion_group! {
    name = rules;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    targets = benches
}
criterion_main!(rules);
