//! A closed-loop HTTP load generator: `--connections` workers each send
//! one request after another for `--seconds`, cycling the user id in the
//! URL (`{user}`) through `--users`. `--url` may be given several times
//! (replicas): the workers are spread over them. With `--body` each
//! request is a JSON POST of that template, `{user}` and `{n}` (the
//! request's sequence number) filled in; `--requests` stops after that
//! many requests in all. Prints requests per second, latency
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
    urls: Vec<String>,
    users: u64,
    connections: usize,
    seconds: u64,
    warmup: u64,
    body: Option<String>,
    requests: Option<u64>,
}

fn parse_args() -> Args {
    let mut args = Args {
        urls: Vec::new(),
        users: 943,
        connections: 32,
        seconds: 20,
        warmup: 3,
        body: None,
        requests: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.urls.push(value),
            "--users" => args.users = value.parse().expect("--users"),
            "--connections" => args.connections = value.parse().expect("--connections"),
            "--seconds" => args.seconds = value.parse().expect("--seconds"),
            "--warmup" => args.warmup = value.parse().expect("--warmup"),
            "--body" => args.body = Some(value),
            "--requests" => args.requests = Some(value.parse().expect("--requests")),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.urls.is_empty(), "--url is required");
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
    for worker in 0..args.connections {
        let (client, url, next_user, failures) = (
            client.clone(),
            args.urls[worker % args.urls.len()].clone(),
            next_user.clone(),
            failures.clone(),
        );
        let (users, body, requests) = (args.users, args.body.clone(), args.requests);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let n = next_user.fetch_add(1, Ordering::Relaxed);
                if requests.is_some_and(|max| n >= max) {
                    break;
                }
                let user = (n % users + 1).to_string();
                let request = match &body {
                    Some(template) => client
                        .post(url.replace("{user}", &user))
                        .header("content-type", "application/json")
                        .body(
                            template
                                .replace("{user}", &user)
                                .replace("{n}", &n.to_string()),
                        ),
                    None => client.get(url.replace("{user}", &user)),
                };
                let started = Instant::now();
                let ok = match request.send().await {
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
    // Shorter than --seconds when --requests ran out first.
    let measured = Instant::now()
        .saturating_duration_since(warm_until)
        .as_secs_f64()
        .clamp(1e-3, args.seconds as f64);
    let failed = failures.load(Ordering::Relaxed);
    println!(
        "requests {}  failed {}  req/s {:.0}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} connections, {} s)",
        all.len(),
        failed,
        all.len() as f64 / measured,
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
