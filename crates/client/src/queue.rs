//! A work queue with client-go's semantics: a key is queued at most once, is never handed
//! to two workers at the same time (a key added while it is being processed is queued again
//! when the worker calls [`WorkQueue::done`]), and failed keys come back after a per-key
//! exponential backoff ([`WorkQueue::add_rate_limited`]) until [`WorkQueue::forget`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// First retry delay; doubles per failure up to [`MAX_BACKOFF`] (client-go uses 5ms..1000s).
pub const BASE_BACKOFF: Duration = Duration::from_millis(20);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shutting_down: bool,
}

pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    max_backoff: Duration,
}

impl<K: Clone + Eq + Hash + Send + Sync + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Self::with_max_backoff(MAX_BACKOFF)
    }

    /// A queue whose retry backoff stops growing at `max`.
    pub fn with_max_backoff(max: Duration) -> Arc<Self> {
        Arc::new(WorkQueue {
            max_backoff: max,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shutting_down: false,
            }),
            notify: Notify::new(),
        })
    }

    pub fn add(&self, key: K) {
        let mut s = self.state.lock().unwrap();
        if s.shutting_down || !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Adds `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Adds `key` after its backoff, which doubles with every call until [`Self::forget`].
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let delay = {
            let mut s = self.state.lock().unwrap();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let d = backoff(*n).min(self.max_backoff);
            *n = n.saturating_add(1);
            d
        };
        self.add_after(key, delay);
    }

    /// Clears the failure count of `key`.
    pub fn forget(&self, key: &K) {
        self.state.lock().unwrap().failures.remove(key);
    }

    pub fn failures(&self, key: &K) -> u32 {
        self.state
            .lock()
            .unwrap()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// The next key to process, or `None` once shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().unwrap();
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return Some(k);
                }
                if s.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &K) {
        let mut s = self.state.lock().unwrap();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn shut_down(&self) {
        self.state.lock().unwrap().shutting_down = true;
        self.notify.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn backoff(failures: u32) -> Duration {
    BASE_BACKOFF
        .checked_mul(1u32 << failures.min(20))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// What a reconcile asks for next.
pub enum Next {
    /// Done; forget the key's failures.
    Done,
    /// Look again after a while (not an error: e.g. waiting for something to disappear).
    After(Duration),
    /// Not done yet and not an error: look again after the key's growing backoff.
    Retry,
}

/// Runs `workers` workers that take keys from `queue` and call `reconcile`; errors are
/// logged and the key retried with backoff.
pub async fn run_workers<K, F, Fut>(
    name: &'static str,
    queue: Arc<WorkQueue<K>>,
    workers: usize,
    reconcile: F,
) where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(K) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Next>> + Send,
{
    // A JoinSet aborts the workers when this future is dropped (e.g. leadership lost).
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            while let Some(key) = queue.get().await {
                match reconcile(key.clone()).await {
                    Ok(Next::Done) => queue.forget(&key),
                    Ok(Next::Retry) => queue.add_rate_limited(key.clone()),
                    Ok(Next::After(d)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        let n = queue.failures(&key);
                        if n < 3 {
                            tracing::debug!(controller = name, ?key, "retrying: {e:#}");
                        } else {
                            tracing::warn!(
                                controller = name,
                                ?key,
                                failures = n,
                                "retrying: {e:#}"
                            );
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "a");
        q.add("a"); // while processing: not queued twice, not handed out
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), BASE_BACKOFF);
        assert_eq!(backoff(1), BASE_BACKOFF * 2);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn rate_limited_keys_come_back() {
        let q = WorkQueue::new();
        q.add_rate_limited("x");
        q.add_rate_limited("x");
        assert_eq!(q.failures(&"x"), 2);
        let k = tokio::time::timeout(Duration::from_secs(5), q.get())
            .await
            .unwrap();
        assert_eq!(k, Some("x"));
        q.forget(&"x");
        assert_eq!(q.failures(&"x"), 0);
    }
}
