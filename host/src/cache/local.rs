//! The in-process backend: a sharded map of groups, each a small map of
//! fields. Values are shared (`Arc`), so a hit costs a clone of a pointer.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
    time::{Duration, Instant},
};

/// Enough shards that two cores never queue on one lock for long.
const SHARDS: usize = 16;

struct Entry<T> {
    written: Instant,
    value: T,
}

type Group<T> = HashMap<String, Entry<T>>;

pub struct LocalStore<T> {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, Group<T>>>>,
}

impl<T> Default for LocalStore<T> {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl<T: Clone> LocalStore<T> {
    fn shard(&self, group: &str) -> &Mutex<HashMap<String, Group<T>>> {
        &self.shards[self.hasher.hash_one(group) as usize % SHARDS]
    }

    pub fn get_many(&self, keys: &[(&str, &str)], ttl: Duration) -> Vec<Option<T>> {
        keys.iter()
            .map(|(group, field)| {
                let shard = self.shard(group).lock().expect("cache lock");
                shard
                    .get(*group)
                    .and_then(|g| g.get(*field))
                    .filter(|e| e.written.elapsed() < ttl)
                    .map(|e| e.value.clone())
            })
            .collect()
    }

    pub fn put_many(&self, entries: Vec<(String, String, T)>) {
        let now = Instant::now();
        for (group, field, value) in entries {
            let mut shard = self.shard(&group).lock().expect("cache lock");
            shard.entry(group).or_default().insert(
                field,
                Entry {
                    written: now,
                    value,
                },
            );
        }
    }

    pub fn remove_group(&self, group: &str) {
        self.shard(group).lock().expect("cache lock").remove(group);
    }

    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().expect("cache lock").clear();
        }
    }

    pub fn purge_expired(&self, ttl: Duration) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().expect("cache lock");
            shard.retain(|_, group| {
                let before = group.len();
                group.retain(|_, e| e.written.elapsed() < ttl);
                removed += before - group.len();
                !group.is_empty()
            });
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .expect("cache lock")
                    .values()
                    .map(HashMap::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_expire_and_drop_as_a_whole() {
        let store = LocalStore::<u32>::default();
        store.put_many(vec![
            ("u1".into(), "a".into(), 1),
            ("u1".into(), "b".into(), 2),
            ("u2".into(), "a".into(), 3),
        ]);
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store.get_many(&[("u1", "b"), ("u2", "a"), ("u3", "a")], ttl),
            vec![Some(2), Some(3), None]
        );
        store.remove_group("u1");
        assert_eq!(
            store.get_many(&[("u1", "a"), ("u2", "a")], ttl),
            vec![None, Some(3)]
        );
        assert_eq!(
            store.get_many(&[("u2", "a")], Duration::ZERO),
            vec![None],
            "expired"
        );
        assert_eq!(store.purge_expired(Duration::ZERO), 1);
        assert_eq!(store.len(), 0);
    }
}
