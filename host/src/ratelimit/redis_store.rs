//! GCRA in Redis: the same arithmetic as `gcra::decide`, run atomically in a
//! Lua script so every replica shares one bucket per key. A call reserves
//! one unit or several at once (a [`super::lease`]). The script reads
//! the clock from Redis (`TIME`), so replicas with skewed clocks still agree.

use std::sync::{Arc, LazyLock};

use super::{gcra::Decision, lease::Grant};
use crate::{config::RateSpec, redis_pool::RedisPool};

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local free = math.floor((period - (tat - now)) / interval + 1e-9)
if free < 1 then
  return {0, tostring(tat), tostring(now)}
end
local units = math.max(1, math.min(wanted, math.floor(free / 16)))
local new_tat = tat + units * interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {units, tostring(new_tat), tostring(now)}
"#,
    )
});

/// Reserves up to `wanted` units of `key` (fewer near the limit: at most a
/// sixteenth of what is free, at least one). `Err` carries the refusal
/// when not even one is free; `None` when Redis could not answer (or its
/// breaker is open): the caller falls back to the in-process store.
pub async fn reserve(
    pool: &Arc<RedisPool>,
    key: &str,
    spec: RateSpec,
    wanted: u32,
) -> Option<Result<Grant, Decision>> {
    let period = spec.period.as_secs_f64();
    let interval = period / f64::from(spec.count);
    let mut invocation = SCRIPT.key(pool.key(&format!("rl:{key}")));
    invocation.arg(interval).arg(period).arg(wanted.max(1));
    let (units, tat, now) = pool
        .run("rate limit", |mut conn| async move {
            invocation
                .invoke_async::<(i64, String, String)>(&mut conn)
                .await
        })
        .await?;
    let tat: f64 = tat.parse().ok()?;
    let now: f64 = now.parse().ok()?;
    Some(if units >= 1 {
        Ok(Grant {
            units: units as u32,
            tat,
            now,
        })
    } else {
        Err(Decision {
            allowed: false,
            limit: spec.count,
            remaining: 0,
            reset_at: tat,
            retry_after: (tat + interval - period - now).max(0.0),
        })
    })
}
