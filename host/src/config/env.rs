//! Reading variables over the defaults: a variable that is unset (or blank)
//! keeps the default; one that does not parse is reported and keeps it too,
//! so the reading goes on and every problem is listed at once.

use std::{fmt::Display, str::FromStr, time::Duration};

pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            errors: Vec::new(),
        }
    }

    /// The value of `key`; blank counts as unset.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        present(self.lookup, key)
    }

    /// `key`, trimmed and parsed by `parse`, into `slot` when set.
    pub(super) fn read_with<T>(
        &mut self,
        key: &str,
        slot: &mut T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) {
        if let Some(v) = self.get(key) {
            match parse(v.trim()) {
                Ok(value) => *slot = value,
                Err(e) => self.error(format!("{key}={v:?}: {e}")),
            }
        }
    }

    /// `key` parsed as a `T` into `slot` when set.
    pub(super) fn read<T: FromStr>(&mut self, key: &str, slot: &mut T)
    where
        T::Err: Display,
    {
        self.read_with(key, slot, |v| v.parse().map_err(|e: T::Err| e.to_string()));
    }

    /// `key` as true/yes/on/1 or false/no/off/0 into `slot` when set.
    pub(super) fn flag(&mut self, key: &str, slot: &mut bool) {
        self.read_with(key, slot, |v| match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        });
    }

    /// `key`, whole seconds, into `slot` when set.
    pub(super) fn seconds(&mut self, key: &str, slot: &mut Duration) {
        self.read_with(key, slot, |v| {
            v.parse()
                .map(Duration::from_secs)
                .map_err(|e| e.to_string())
        });
    }

    /// `key` as it is written (not trimmed) into `slot` when set.
    pub(super) fn text(&mut self, key: &str, slot: &mut String) {
        if let Some(v) = self.get(key) {
            *slot = v;
        }
    }

    /// A problem found by a check beyond parsing.
    pub(super) fn error(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// Settings kept beside their concern (`JobSettings`, `CacheSettings`,
    /// ...) read themselves with `from_lookup(get, errors)`; this hands
    /// them the same source and error list.
    pub(super) fn nested<T>(
        &mut self,
        from_lookup: impl FnOnce(&dyn Fn(&str) -> Option<String>, &mut Vec<String>) -> T,
    ) -> T {
        let lookup = self.lookup;
        let get = |key: &str| present(lookup, key);
        from_lookup(&get, &mut self.errors)
    }

    /// Every problem at once, so an operator fixes the configuration in
    /// one go.
    pub(super) fn finish<T>(self, value: T) -> Result<T, String> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(format!(
                "invalid configuration:\n  - {}",
                self.errors.join("\n  - ")
            ))
        }
    }
}

fn present(lookup: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    lookup(key).filter(|v| !v.trim().is_empty())
}
