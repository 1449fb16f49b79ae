//! The in-process store: a bounded `moka` cache of groups, each a short
//! list of fields. Bounded three ways, so no caller can grow it without
//! limit: by bytes (each entry weighs its serialized size), by fields per
//! group (the oldest field goes first), and by time (the TTL). Eviction is
//! moka's TinyLFU: a flood of one-off keys cannot push out the hot ones.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Fields one group may hold: a user's recommendation lists for that many
/// distinct queries. Past it the oldest field is dropped.
pub const MAX_FIELDS_PER_GROUP: usize = 16;
/// What an entry costs beyond its value (keys, timestamps, moka's node),
/// so that even empty values count against the byte budget.
const ENTRY_OVERHEAD_BYTES: usize = 96;

struct Field<T> {
    name: Box<str>,
    /// When it stops being served: its write plus the TTL it was written
    /// with (at most the store's).
    expires: Instant,
    bytes: usize,
    value: Arc<T>,
}

/// A group's fields. Immutable once stored: a write builds a new group, so
/// readers never lock.
struct Group<T> {
    fields: Vec<Field<T>>,
}

impl<T> Group<T> {
    fn weight(&self, group: &str) -> u32 {
        let bytes: usize = self
            .fields
            .iter()
            .map(|f| f.bytes + f.name.len() + ENTRY_OVERHEAD_BYTES)
            .sum();
        u32::try_from(bytes + group.len()).unwrap_or(u32::MAX)
    }
}

pub struct LocalStore<T> {
    groups: moka::sync::Cache<Arc<str>, Arc<Group<T>>>,
    /// The longest any entry is kept.
    ttl: Duration,
    /// Fields moka dropped for age since the last `purge_expired`.
    expired: Arc<AtomicUsize>,
}

impl<T: Send + Sync + 'static> LocalStore<T> {
    /// At most `max_bytes` of values (by their serialized size), each kept
    /// at most `ttl` (each write may ask for less).
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let ttl = ttl.max(Duration::from_millis(1));
        let expired = Arc::new(AtomicUsize::new(0));
        let counter = expired.clone();
        Self {
            groups: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|group: &Arc<str>, g: &Arc<Group<T>>| g.weight(group))
                .time_to_live(ttl)
                .eviction_listener(move |_, g: Arc<Group<T>>, cause| {
                    if cause == moka::notification::RemovalCause::Expired {
                        counter.fetch_add(g.fields.len(), Ordering::Relaxed);
                    }
                })
                .build(),
            ttl,
            expired,
        }
    }

    pub fn get_many(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<T>>> {
        keys.iter()
            .map(|(group, field)| {
                let g = self.groups.get(*group)?;
                g.fields
                    .iter()
                    .find(|f| &*f.name == *field)
                    .filter(|f| f.expires > Instant::now())
                    .map(|f| f.value.clone())
            })
            .collect()
    }

    /// `bytes` is each value's serialized size: what it weighs. Each is
    /// kept for `ttl`, at most the store's.
    pub fn put_many(&self, entries: Vec<(String, String, Arc<T>, usize)>, ttl: Duration) {
        let now = Instant::now();
        let expires = now + ttl.min(self.ttl);
        for (group, field, value, bytes) in entries {
            let key: Arc<str> = group.into();
            let mut fields: Vec<Field<T>> = match self.groups.get(&key) {
                Some(old) => old
                    .fields
                    .iter()
                    .filter(|f| *f.name != *field && f.expires > now)
                    .map(|f| Field {
                        name: f.name.clone(),
                        expires: f.expires,
                        bytes: f.bytes,
                        value: f.value.clone(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            if fields.len() >= MAX_FIELDS_PER_GROUP {
                fields.drain(..=fields.len() - MAX_FIELDS_PER_GROUP);
            }
            fields.push(Field {
                name: field.into(),
                expires,
                bytes,
                value,
            });
            self.groups.insert(key, Arc::new(Group { fields }));
        }
    }

    pub fn remove_group(&self, group: &str) {
        self.groups.invalidate(group);
    }

    pub fn clear(&self) {
        self.groups.invalidate_all();
        self.groups.run_pending_tasks();
    }

    /// Frees what has expired now rather than when moka next gets to it;
    /// returns how many fields expired since the last call.
    pub fn purge_expired(&self) -> usize {
        self.groups.run_pending_tasks();
        self.expired.swap(0, Ordering::Relaxed)
    }

    /// Fields held and not expired.
    pub fn len(&self) -> usize {
        self.groups
            .iter()
            .map(|(_, g)| {
                g.fields
                    .iter()
                    .filter(|f| f.expires > Instant::now())
                    .count()
            })
            .sum()
    }

    /// The bytes charged against the budget (after pending evictions).
    pub fn weighted_bytes(&self) -> u64 {
        self.groups.run_pending_tasks();
        self.groups.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &LocalStore<u32>, group: &str, field: &str, value: u32) {
        store.put_many(
            vec![(group.into(), field.into(), Arc::new(value), 4)],
            Duration::MAX,
        );
    }

    fn get(store: &LocalStore<u32>, keys: &[(&str, &str)]) -> Vec<Option<u32>> {
        store
            .get_many(keys)
            .into_iter()
            .map(|v| v.map(|v| *v))
            .collect()
    }

    #[test]
    fn groups_expire_and_drop_as_a_whole() {
        let store = LocalStore::<u32>::new(1 << 20, Duration::from_secs(60));
        put(&store, "u1", "a", 1);
        put(&store, "u1", "b", 2);
        put(&store, "u2", "a", 3);
        assert_eq!(
            get(
                &store,
                &[("u1", "b"), ("u1", "a"), ("u2", "a"), ("u3", "a")]
            ),
            vec![Some(2), Some(1), Some(3), None]
        );
        store.remove_group("u1");
        assert_eq!(
            get(&store, &[("u1", "a"), ("u2", "a")]),
            vec![None, Some(3)]
        );

        let short = LocalStore::<u32>::new(1 << 20, Duration::from_millis(20));
        put(&short, "u1", "a", 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(get(&short, &[("u1", "a")]), vec![None], "expired");
        assert_eq!(short.len(), 0);
    }

    #[test]
    fn a_write_may_ask_for_less_than_the_stores_ttl() {
        let store = LocalStore::<u32>::new(1 << 20, Duration::from_secs(60));
        store.put_many(
            vec![("u1".into(), "a".into(), Arc::new(1), 4)],
            Duration::from_millis(20),
        );
        put(&store, "u1", "b", 2);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            get(&store, &[("u1", "a"), ("u1", "b")]),
            vec![None, Some(2)]
        );
    }

    #[test]
    fn a_group_keeps_its_newest_fields_only() {
        let store = LocalStore::<u32>::new(1 << 20, Duration::from_secs(60));
        for i in 0..(MAX_FIELDS_PER_GROUP as u32 + 5) {
            put(&store, "u1", &i.to_string(), i);
        }
        assert_eq!(store.len(), MAX_FIELDS_PER_GROUP);
        assert_eq!(
            get(&store, &[("u1", "0"), ("u1", "20")]),
            vec![None, Some(20)]
        );
    }

    #[test]
    fn the_byte_budget_holds_whatever_is_written() {
        let budget = 64 * 1024;
        let store = LocalStore::<u32>::new(budget, Duration::from_secs(60));
        for i in 0..10_000 {
            store.put_many(
                vec![(format!("user{i}"), "f".into(), Arc::new(i), 1000)],
                Duration::MAX,
            );
        }
        assert!(
            store.weighted_bytes() <= budget,
            "{}",
            store.weighted_bytes()
        );
        assert!(store.len() < 100, "{} entries kept", store.len());
    }
}
