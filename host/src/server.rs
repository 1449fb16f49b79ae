//! The HTTP/1.1 serving loop, shared by `recengine serve` and the tests.
//!
//! `axum::serve` sets no timeouts: a client that opens a connection and
//! sends half a request line, or nothing at all, holds a socket and a task
//! for as long as it likes, and a thousand such clients hold a thousand.
//! This loop serves the same router on hyper's connection builder with
//! (as nginx's `client_header_timeout` and `keepalive_timeout`):
//! - a header-read timeout: a new connection's first request head, and any
//!   later head once its first byte has arrived, must be complete within
//!   `HTTP_HEADER_READ_TIMEOUT_SECS`, or the connection is dropped;
//! - a keep-alive idle timeout: a connection with no request in flight and
//!   no byte of a next one is closed after `HTTP_KEEPALIVE_TIMEOUT_SECS`;
//! - a connection cap: at most `HTTP_MAX_CONNECTIONS` are served at once;
//!   further ones wait in the listen backlog (which the kernel bounds)
//!   until a slot frees, rather than each costing a task and buffers.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while an
//! idle keep-alive connection waits for its next request, which would make
//! the idle timeout no longer than the header-read one, and a short idle
//! timeout races clients that reuse pooled connections.
//!
//! Graceful shutdown: stop accepting, ask every connection to finish its
//! request in flight and close, and return once all have.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{
    net::TcpListener,
    sync::{Notify, Semaphore, watch},
};
use tower::ServiceExt;

pub use crate::config::http::HttpSettings;

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
/// Handlers see the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Dropped (closed) when shutdown starts; every connection watches it.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        // Take a slot before accepting: beyond the cap, connections wait
        // in the kernel's backlog instead of in memory here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather
                    // than spin; the listener itself stays usable.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, stop).await;
            drop(slot);
        });
    }
    drop(stop_tx);
    drop(stop_rx);
    // Every connection task holds a slot: all are back once all are done.
    let _all = slots
        .acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .await;
    Ok(())
}

/// What one connection is doing, shared by its reader, its service and
/// its supervising loop. Times are milliseconds since `started`.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Requests served so far (a fresh connection's first head is timed
    /// from the connection opening).
    served: AtomicUsize,
    /// When the connection last went idle (its last request ended).
    idle_since_ms: AtomicU64,
    /// When the first byte of the next request head arrived; 0: none yet.
    head_started_ms: AtomicU64,
    /// Signalled when a deadline may have moved (a request ended, a head
    /// began), so the loop computes it afresh.
    changed: Notify,
}

/// What the supervising loop waits for next.
enum Deadline {
    /// A request is in flight: no timer, wait for it to end.
    None,
    /// A request head is late: drop the connection.
    Head(tokio::time::Instant),
    /// Idle too long: close it gracefully.
    Idle(tokio::time::Instant),
}

impl Activity {
    fn now_ms(&self) -> u64 {
        // Never 0, which means "unset" for `head_started_ms`.
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn at(&self, ms: u64, after: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.started + Duration::from_millis(ms) + after)
    }

    fn deadline(&self, limits: &HttpSettings) -> Deadline {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Deadline::None;
        }
        let head = self.head_started_ms.load(Ordering::Acquire);
        if head != 0 {
            Deadline::Head(self.at(head, limits.header_read_timeout))
        } else if self.served.load(Ordering::Acquire) == 0 {
            Deadline::Head(self.at(0, limits.header_read_timeout))
        } else {
            let idle = self.idle_since_ms.load(Ordering::Acquire);
            Deadline::Idle(self.at(idle, limits.keepalive_timeout))
        }
    }

    /// Bytes arrived: if no request is in flight, a new head has begun.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started_ms
                .compare_exchange(0, self.now_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }
}

/// Marks a request in flight; its drop ends it, however the request ends
/// (even if the handler's future is dropped because the client went away).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.served.fetch_add(1, Ordering::AcqRel);
        // The head is complete: hyper called the service.
        activity.head_started_ms.store(0, Ordering::Release);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since_ms.store(a.now_ms(), Ordering::Release);
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.changed.notify_one();
        }
    }
}

/// The socket, reporting every successful read to the connection's
/// [`Activity`] (how the loop knows a request head has begun).
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: HttpSettings,
    mut stop: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity {
        started: Instant::now(),
        in_flight: AtomicUsize::new(0),
        served: AtomicUsize::new(0),
        idle_since_ms: AtomicU64::new(0),
        head_started_ms: AtomicU64::new(0),
        changed: Notify::new(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let guard = InFlight::begin(&activity);
            req.extensions_mut().insert(ConnectInfo(peer));
            let response = app.clone().oneshot(req.map(Body::new));
            async move {
                let response: Result<_, Infallible> = response.await;
                drop(guard);
                response
            }
        })
    };
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let mut conn = pin!(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
    let mut closing = false;
    loop {
        let deadline = if closing {
            Deadline::None
        } else {
            activity.deadline(&limits)
        };
        let at = match deadline {
            Deadline::None => None,
            Deadline::Head(at) | Deadline::Idle(at) => Some(at),
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.changed.notified(), if !closing => {}
            () = sleep_until(at) => {
                // Something may have happened since the deadline was
                // computed: act only if it still holds.
                match activity.deadline(&limits) {
                    Deadline::Head(at) if at <= tokio::time::Instant::now() => {
                        tracing::debug!(%peer, "request head not received in time; connection dropped");
                        break;
                    }
                    Deadline::Idle(at) if at <= tokio::time::Instant::now() => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> (HttpSettings, Vec<String>) {
        let mut errors = Vec::new();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        };
        (HttpSettings::from_lookup(&get, &mut errors), errors)
    }

    #[test]
    fn defaults_and_bounds() {
        let (defaults, errors) = parse(&[]);
        assert!(errors.is_empty());
        assert_eq!(defaults, HttpSettings::default());
        let (set, errors) = parse(&[
            ("HTTP_HEADER_READ_TIMEOUT_SECS", "20"),
            ("HTTP_KEEPALIVE_TIMEOUT_SECS", "15"),
            ("HTTP_MAX_CONNECTIONS", "64"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(set.header_read_timeout, Duration::from_secs(20));
        assert_eq!(set.keepalive_timeout, Duration::from_secs(15));
        assert_eq!(set.max_connections, 64);
        let (_, errors) = parse(&[
            ("HTTP_HEADER_READ_TIMEOUT_SECS", "0"),
            ("HTTP_MAX_CONNECTIONS", "-1"),
        ]);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
