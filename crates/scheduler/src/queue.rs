//! The scheduling queue (upstream's PriorityQueue): an active heap ordered by priority then
//! by when the pod was queued; a backoff heap for pods that failed recently (1 s doubling to
//! 10 s per attempt); and an unschedulable set whose pods go back to active (or backoff)
//! when a cluster event could make them schedulable, or after 5 minutes regardless.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::framework::PodInfo;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// upstream's podMaxInUnschedulablePodsDuration.
pub const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    /// The scheduling cycle this attempt belongs to.
    pub cycle: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(Instant),
    Unschedulable(Instant),
    InFlight,
}

struct Entry {
    info: Arc<PodInfo>,
    attempts: u32,
    place: Place,
    /// Plugins that rejected the pod last time (see `plugins::plugin_bit`).
    rejected_by: u32,
    /// Set when the pod was updated or deleted while in flight.
    updated: bool,
}

#[derive(PartialEq, Eq)]
struct Ready {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for Ready {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Default)]
struct Inner {
    pods: HashMap<String, Entry>,
    active: BinaryHeap<Ready>,
    backoff: BinaryHeap<Reverse<(Instant, String)>>,
    /// Keys of the pods in the unschedulable set (cluster events scan only these).
    unschedulable: HashSet<String>,
    seq: u64,
    cycle: u64,
    /// The cycle during which the last move request happened: pods that fail in a cycle
    /// that started before it go to backoff, not unschedulable (the event may help them).
    move_request_cycle: u64,
}

impl Inner {
    fn activate(&mut self, key: &str) {
        self.unschedulable.remove(key);
        let seq = self.seq;
        self.seq += 1;
        if let Some(e) = self.pods.get_mut(key) {
            e.place = Place::Active(seq);
            self.active.push(Ready {
                priority: e.info.priority,
                seq,
                key: key.to_string(),
            });
        }
    }

    fn backoff_until(e: &Entry, from: Instant) -> Instant {
        let shift = e.attempts.saturating_sub(1).min(10);
        from + (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
    }

    /// To backoff if the pod's backoff has not expired yet, else to active.
    fn requeue(&mut self, key: &str, now: Instant, failed_at: Instant) {
        self.unschedulable.remove(key);
        let Some(e) = self.pods.get_mut(key) else {
            return;
        };
        let until = Self::backoff_until(e, failed_at);
        if until > now {
            e.place = Place::Backoff(until);
            self.backoff.push(Reverse((until, key.to_string())));
        } else {
            self.activate(key);
        }
    }
}

pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
}

impl Default for SchedulingQueue {
    fn default() -> Self {
        SchedulingQueue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
        }
    }
}

impl SchedulingQueue {
    pub fn new() -> Arc<SchedulingQueue> {
        Arc::new(SchedulingQueue::default())
    }

    /// A pending pod was created or updated.
    pub fn add_or_update(&self, info: Arc<PodInfo>) {
        let mut q = self.inner.lock().unwrap();
        let key = info.key.clone();
        match q.pods.get_mut(&key) {
            None => {
                q.pods.insert(
                    key.clone(),
                    Entry {
                        info,
                        attempts: 0,
                        place: Place::InFlight,
                        rejected_by: 0,
                        updated: false,
                    },
                );
                q.activate(&key);
                drop(q);
                self.notify.notify_one();
            }
            Some(e) => {
                let changed = e.info.uid != info.uid
                    || e.info.pod.spec != info.pod.spec
                    || e.info.pod.metadata.labels != info.pod.metadata.labels;
                e.info = info;
                match e.place {
                    Place::InFlight => e.updated |= changed,
                    Place::Unschedulable(_) if changed => {
                        let now = Instant::now();
                        q.requeue(&key, now, now);
                        drop(q);
                        self.notify.notify_one();
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn delete(&self, key: &str) {
        let mut q = self.inner.lock().unwrap();
        q.pods.remove(key);
        q.unschedulable.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.inner.lock().unwrap().pods.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the highest-priority active pod.
    pub async fn pop(&self) -> QueuedPod {
        loop {
            let notified = self.notify.notified();
            if let Some(p) = self.try_pop() {
                return p;
            }
            notified.await;
        }
    }

    pub fn try_pop(&self) -> Option<QueuedPod> {
        let mut q = self.inner.lock().unwrap();
        while let Some(r) = q.active.pop() {
            let valid = q
                .pods
                .get(&r.key)
                .is_some_and(|e| e.place == Place::Active(r.seq));
            if !valid {
                continue;
            }
            q.cycle += 1;
            let cycle = q.cycle;
            let e = q.pods.get_mut(&r.key).unwrap();
            e.place = Place::InFlight;
            e.attempts += 1;
            e.updated = false;
            return Some(QueuedPod {
                info: e.info.clone(),
                attempts: e.attempts,
                cycle,
            });
        }
        None
    }

    /// The pod was assumed onto a node: it leaves the queue.
    pub fn done(&self, key: &str) {
        let mut q = self.inner.lock().unwrap();
        if q.pods.get(key).is_some_and(|e| e.place == Place::InFlight) {
            q.pods.remove(key);
            q.unschedulable.remove(key);
        }
    }

    /// The attempt failed. `rejected_by` names the plugins that rejected it (0 for an
    /// error, which always backs off). Returns false if the pod is gone meanwhile.
    pub fn failed(&self, qp: &QueuedPod, rejected_by: u32) -> bool {
        let mut q = self.inner.lock().unwrap();
        let move_cycle = q.move_request_cycle;
        let key = qp.info.key.clone();
        let Some(e) = q.pods.get_mut(&key) else {
            return false;
        };
        if e.info.uid != qp.info.uid && e.place != Place::InFlight {
            return true;
        }
        e.rejected_by = rejected_by;
        let now = Instant::now();
        if rejected_by == 0 || e.updated || move_cycle >= qp.cycle {
            e.updated = false;
            q.requeue(&key, now, now);
        } else {
            e.place = Place::Unschedulable(now);
            q.unschedulable.insert(key);
        }
        drop(q);
        self.notify.notify_one();
        true
    }

    /// A bound pod failed to bind (or the pod otherwise needs another attempt) after it
    /// left the queue.
    pub fn retry(&self, info: Arc<PodInfo>, attempts: u32) {
        let mut q = self.inner.lock().unwrap();
        let key = info.key.clone();
        q.pods.insert(
            key.clone(),
            Entry {
                info,
                attempts,
                place: Place::InFlight,
                rejected_by: 0,
                updated: false,
            },
        );
        let now = Instant::now();
        q.requeue(&key, now, now);
        drop(q);
        self.notify.notify_one();
    }

    /// A cluster event that can change the verdict of the plugins in `mask`: matching
    /// unschedulable pods move to backoff or active.
    pub fn move_unschedulable(&self, mask: u32) {
        let mut q = self.inner.lock().unwrap();
        q.move_request_cycle = q.cycle;
        if q.unschedulable.is_empty() {
            return;
        }
        let now = Instant::now();
        let keys: Vec<(String, Instant)> = q
            .unschedulable
            .iter()
            .filter_map(|k| {
                let e = q.pods.get(k)?;
                match e.place {
                    Place::Unschedulable(since) if e.rejected_by & mask != 0 => {
                        Some((k.clone(), since))
                    }
                    _ => None,
                }
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        for (k, since) in keys {
            q.requeue(&k, now, since);
        }
        drop(q);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Moves expired backoffs to active, and pods unschedulable for longer than
    /// [`MAX_IN_UNSCHEDULABLE`] back to the queue. Called periodically.
    pub fn flush(&self, now: Instant) {
        let mut q = self.inner.lock().unwrap();
        let mut moved = false;
        while let Some(Reverse((until, _))) = q.backoff.peek() {
            if *until > now {
                break;
            }
            let Reverse((until, key)) = q.backoff.pop().unwrap();
            if q.pods
                .get(&key)
                .is_some_and(|e| e.place == Place::Backoff(until))
            {
                q.activate(&key);
                moved = true;
            }
        }
        let stale: Vec<String> = q
            .unschedulable
            .iter()
            .filter(|k| {
                q.pods.get(*k).is_some_and(|e| {
                    matches!(e.place, Place::Unschedulable(since)
                        if now.duration_since(since) >= MAX_IN_UNSCHEDULABLE)
                })
            })
            .cloned()
            .collect();
        for k in stale {
            q.activate(&k);
            moved = true;
        }
        drop(q);
        if moved {
            self.notify.notify_one();
        }
    }

    /// Pending pods with their priority, for nominated-pod bookkeeping and tests.
    pub fn pending(&self) -> Vec<Arc<PodInfo>> {
        let q = self.inner.lock().unwrap();
        q.pods.values().map(|e| e.info.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::testing::*;
    use serde_json::json;

    fn prio(name: &str, p: i32) -> Arc<PodInfo> {
        pod(name, json!({"priority": p}))
    }

    #[test]
    fn priority_then_arrival() {
        let q = SchedulingQueue::new();
        q.add_or_update(prio("a", 0));
        q.add_or_update(prio("b", 10));
        q.add_or_update(prio("c", 0));
        q.add_or_update(prio("d", 10));
        let order: Vec<String> = (0..4)
            .map(|_| q.try_pop().unwrap().info.name.clone())
            .collect();
        assert_eq!(order, ["b", "d", "a", "c"]);
        assert!(q.try_pop().is_none());
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event() {
        let q = SchedulingQueue::new();
        q.add_or_update(prio("a", 0));
        let qp = q.try_pop().unwrap();
        assert!(q.failed(&qp, crate::plugins::plugin_bit("NodeResourcesFit")));
        assert!(q.try_pop().is_none());
        // An event about other plugins does not move it.
        q.move_unschedulable(crate::plugins::plugin_bit("NodeAffinity"));
        q.flush(Instant::now() + MAX_BACKOFF);
        assert!(q.try_pop().is_none());
        // A pod deletion frees resources: it moves (through backoff).
        q.move_unschedulable(crate::plugins::ON_POD_DELETE);
        q.flush(Instant::now() + MAX_BACKOFF);
        let again = q.try_pop().unwrap();
        assert_eq!(again.attempts, 2);
    }

    #[test]
    fn errors_back_off_and_long_waits_are_flushed() {
        let q = SchedulingQueue::new();
        q.add_or_update(prio("a", 0));
        let qp = q.try_pop().unwrap();
        q.failed(&qp, 0);
        assert!(q.try_pop().is_none(), "in backoff");
        q.flush(Instant::now() + INITIAL_BACKOFF + Duration::from_millis(10));
        let qp = q.try_pop().unwrap();
        q.failed(&qp, crate::plugins::plugin_bit("NodeAffinity"));
        q.flush(Instant::now() + MAX_BACKOFF);
        assert!(q.try_pop().is_none(), "unschedulable");
        q.flush(Instant::now() + MAX_IN_UNSCHEDULABLE + Duration::from_secs(1));
        assert!(q.try_pop().is_some());
    }

    #[test]
    fn a_failure_after_a_move_request_backs_off_instead() {
        let q = SchedulingQueue::new();
        q.add_or_update(prio("a", 0));
        let qp = q.try_pop().unwrap();
        // A node was added while the pod was being scheduled.
        q.move_unschedulable(crate::plugins::ON_NODE_CHANGE);
        q.failed(&qp, crate::plugins::plugin_bit("NodeResourcesFit"));
        q.flush(Instant::now() + MAX_BACKOFF);
        assert!(q.try_pop().is_some());
    }

    #[test]
    fn deleted_pods_leave() {
        let q = SchedulingQueue::new();
        q.add_or_update(prio("a", 0));
        q.delete("default/a");
        assert!(q.try_pop().is_none());
        q.add_or_update(prio("b", 0));
        let qp = q.try_pop().unwrap();
        q.delete("default/b");
        assert!(!q.failed(&qp, 1));
    }
}
