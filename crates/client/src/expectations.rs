//! Controller expectations (client-go's `ControllerExpectations` with UID-tracked
//! deletions): a controller that has just asked for N creations and some deletions must
//! not act on its owner again until its informers have seen them, or it would create or
//! delete twice from a stale cache. Creations are counted (their names are unknown until
//! the API answers); deletions are tracked by the deleted object's key so a repeated
//! delete event is not counted twice. Expectations older than [`TIMEOUT`] are considered
//! met, so a lost watch event delays a controller but never wedges it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's `ExpectationsTimeout`.
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Exp {
    adds: i64,
    dels: HashSet<String>,
    set_at: Instant,
}

/// Expectations per controller key (for example `namespace/name` of a ReplicaSet).
#[derive(Debug, Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, Exp>>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` is about to create `adds` objects and delete `dels` (object keys).
    pub fn expect(&self, key: &str, adds: usize, dels: impl IntoIterator<Item = String>) {
        self.inner.lock().unwrap().insert(
            key.to_string(),
            Exp {
                adds: adds as i64,
                dels: dels.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    /// A creation by `key` was seen (or will never happen: the request failed or was
    /// skipped).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// The deletion of `object` (expected by `key`) was seen or will never happen.
    pub fn deletion_observed(&self, key: &str, object: &str) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            e.dels.remove(object);
        }
    }

    /// Whether `key` may act: no expectations, all met, or expired.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.inner.lock().unwrap().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.dels.is_empty()) || e.set_at.elapsed() > TIMEOUT,
        }
    }

    /// Deletions of `key` still pending (for pruning objects the cache no longer has).
    pub fn pending_deletions(&self, key: &str) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .get(key)
            .map(|e| e.dels.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets `key` (its owner is gone).
    pub fn forget(&self, key: &str) {
        self.inner.lock().unwrap().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_once_observed() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"));
        e.expect("ns/rs", 2, ["ns/p1".to_string()]);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/p1");
        e.deletion_observed("ns/rs", "ns/p1");
        assert!(e.satisfied("ns/rs"));
        e.expect("ns/rs", 1, []);
        e.forget("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }
}
