//! PostgreSQL LISTEN/NOTIFY: how replicas on one database tell each other
//! that something they hold in process changed (a bundle activated, a job
//! finished). A notification sent inside a transaction is delivered on
//! commit; one lost while a listener reconnects is not replayed, so every
//! user also has a periodic check to fall back on. SQLite has no
//! equivalent: a single process needs none.

use std::{convert::Infallible, future::Future, time::Duration};

use sqlx::{Any, Executor, postgres::PgListener};

/// How long a listener waits before connecting again after losing its
/// connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// Sends `payload` on `channel` (on commit, when `executor` is a
/// transaction).
pub async fn notify<'e>(
    executor: impl Executor<'e, Database = Any>,
    channel: &str,
    payload: &str,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(executor)
        .await?;
    Ok(())
}

/// Calls `handler` with each payload sent on `channel`, one at a time, for
/// as long as the process runs; a lost connection is logged and made again.
pub fn listen<F, Fut>(database_url: String, channel: &'static str, handler: F)
where
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    listen_with(database_url, channel, || {}, || {}, handler);
}

/// [`listen`], telling the caller each time the listener is connected (and
/// so hears what is sent from then on) and each time it loses the
/// connection (and may miss notifications until the next `on_connect`).
pub fn listen_with<F, Fut, C, L>(
    database_url: String,
    channel: &'static str,
    mut on_connect: C,
    mut on_lost: L,
    mut handler: F,
) where
    F: FnMut(String) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
    C: FnMut() + Send + 'static,
    L: FnMut() + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Err(e) = relay(&database_url, channel, &mut on_connect, &mut handler).await;
            on_lost();
            tracing::warn!(channel, error = %e, "notifications lost; reconnecting");
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
}

/// One connection's worth of [`listen`]: returns only when it breaks.
async fn relay<F, Fut, C>(
    database_url: &str,
    channel: &str,
    on_connect: &mut C,
    handler: &mut F,
) -> Result<Infallible, sqlx::Error>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
    C: FnMut(),
{
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(channel).await?;
    on_connect();
    loop {
        let note = listener.recv().await?;
        handler(note.payload().to_string()).await;
    }
}
