//! GCRA in Redis: the same arithmetic as `gcra::decide`, run atomically in a
//! Lua script so every replica shares one bucket per key. The script reads
//! the clock from Redis (`TIME`), so replicas with skewed clocks still agree.

use std::sync::{Arc, LazyLock};

use super::gcra::Decision;
use crate::{config::RateSpec, redis_pool::RedisPool};

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > period + 1e-9 then
  return {0, tostring(tat), tostring(now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, tostring(new_tat), tostring(now)}
"#,
    )
});

/// `None` when Redis could not answer (or its breaker is open); the caller
/// falls back to the in-process store.
pub async fn check(pool: &Arc<RedisPool>, key: &str, spec: RateSpec) -> Option<Decision> {
    let period = spec.period.as_secs_f64();
    let interval = period / f64::from(spec.count);
    let mut invocation = SCRIPT.key(pool.key(&format!("rl:{key}")));
    invocation.arg(interval).arg(period);
    let (allowed, tat, now) = pool
        .run("rate limit", |mut conn| async move {
            invocation
                .invoke_async::<(i64, String, String)>(&mut conn)
                .await
        })
        .await?;
    let tat: f64 = tat.parse().ok()?;
    let now: f64 = now.parse().ok()?;
    Some(if allowed == 1 {
        Decision {
            allowed: true,
            limit: spec.count,
            remaining: ((period - (tat - now)) / interval + 1e-9).floor().max(0.0) as u32,
            reset_at: tat,
            retry_after: 0.0,
        }
    } else {
        Decision {
            allowed: false,
            limit: spec.count,
            remaining: 0,
            reset_at: tat,
            retry_after: (tat + interval - period - now).max(0.0),
        }
    })
}
