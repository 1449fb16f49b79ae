//! A closed-loop HTTP load generator: `--connections` workers each send
//! one request after another for `--seconds`, cycling the user id in the
//! URL (`{user}`) through `--users`. Prints requests per second, latency
//! percentiles and failures; exits non-zero on any failure, so a script can
//! assert "zero failed requests".
//!
//! `cargo run --release --example loadgen -- --url 'http://127.0.0.1:8000/api/v1/recommendations/user/{user}?algorithm=hybrid' --users 943`

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

struct Args {
    url: String,
    users: u64,
    connections: usize,
    seconds: u64,
    warmup: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        users: 943,
        connections: 32,
        seconds: 20,
        warmup: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value,
            "--users" => args.users = value.parse().expect("--users"),
            "--connections" => args.connections = value.parse().expect("--connections"),
            "--seconds" => args.seconds = value.parse().expect("--seconds"),
            "--warmup" => args.warmup = value.parse().expect("--warmup"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.url.is_empty(), "--url is required");
    args
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let next_user = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let warm_until = Instant::now() + Duration::from_secs(args.warmup);
    let end = warm_until + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (client, url, next_user, failures) = (
            client.clone(),
            args.url.clone(),
            next_user.clone(),
            failures.clone(),
        );
        let users = args.users;
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let user = next_user.fetch_add(1, Ordering::Relaxed) % users + 1;
                let started = Instant::now();
                let ok = match client
                    .get(url.replace("{user}", &user.to_string()))
                    .send()
                    .await
                {
                    Ok(res) => res.status().is_success() && res.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let elapsed = started.elapsed();
                if started < warm_until {
                    continue;
                }
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(elapsed);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    let failed = failures.load(Ordering::Relaxed);
    println!(
        "requests {}  failed {}  req/s {:.0}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} connections, {} s)",
        all.len(),
        failed,
        all.len() as f64 / args.seconds as f64,
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.90).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        args.connections,
        args.seconds,
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
