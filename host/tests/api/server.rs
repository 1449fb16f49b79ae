//! The serving loop's bounds, with raw TCP clients: a client that stalls
//! mid-request or idles between requests is disconnected, and connections
//! beyond the cap wait instead of being served at once.

use std::time::{Duration, Instant};

use recengine::server::HttpSettings;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Backend, TestApp};

async fn app(max_connections: usize) -> TestApp {
    TestApp::spawn_without_admin(Backend::Sqlite, move |s| {
        s.http = HttpSettings {
            header_read_timeout: Duration::from_secs(1),
            keepalive_timeout: Duration::from_secs(1),
            max_connections,
        };
    })
    .await
}

/// Reads until the server closes; `None` if it has not after 10 s.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(seen)
}

#[tokio::test]
async fn a_client_that_stalls_mid_request_line_is_disconnected() {
    let app = app(16).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /hea").await.unwrap();
    let seen = read_until_closed(&mut slow)
        .await
        .expect("closed by the header-read timeout, not held open");
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(5),
        "{held:?}"
    );
    assert!(!seen.starts_with(b"HTTP/1.1 200"), "never served");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app(16).await;
    let mut client = TcpStream::connect(app.addr).await.unwrap();
    client
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let seen = read_until_closed(&mut client)
        .await
        .expect("the idle connection is closed");
    let held = started.elapsed();
    assert!(seen.starts_with(b"HTTP/1.1 200"), "answered first");
    assert!(held < Duration::from_secs(5), "{held:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = app(2).await;
    let started = Instant::now();
    // Two clients take both slots and send nothing.
    let mut squatters = Vec::new();
    for _ in 0..2 {
        squatters.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third, well-behaved client is only served once the header-read
    // timeout has freed a slot (about 1 s after the squatters arrived).
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let seen = read_until_closed(&mut third)
        .await
        .expect("served once a slot is free");
    let waited = started.elapsed();
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    assert!(
        waited >= Duration::from_millis(900),
        "served at once: {waited:?}"
    );
    for mut s in squatters {
        assert!(read_until_closed(&mut s).await.is_some(), "squatter closed");
    }
}
