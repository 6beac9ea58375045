//! In-memory watch fan-out shared by the backends that own their revision log.
//!
//! The writer publishes each committed event once; the hub keeps a ring of the most recent
//! events (so a watcher starting slightly in the past needs no store read) and pushes each
//! event into the bounded queue of every watcher whose prefix matches. A watcher whose
//! queue is full is dropped and its stream ends with [`StoreError::WatcherTooSlow`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};
use tokio::sync::mpsc;

use crate::{Event, Revision, StoreError, WatchStream};

/// Default per-watcher queue length.
pub const DEFAULT_QUEUE: usize = 4096;
/// Default number of recent events kept for watchers that start slightly in the past.
pub const DEFAULT_RING: usize = 8192;

pub struct WatchHub {
    inner: Mutex<Inner>,
    queue: usize,
}

struct Inner {
    ring: VecDeque<Event>,
    ring_cap: usize,
    /// Revision of the last published event (or the store's revision when the hub started).
    last: Revision,
    subs: Vec<Subscriber>,
    closed: bool,
}

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<Event>,
    overflow: Arc<AtomicBool>,
}

impl WatchHub {
    /// A hub for a store whose latest revision is `current`.
    pub fn new(current: Revision) -> Self {
        Self::with_limits(current, DEFAULT_RING, DEFAULT_QUEUE)
    }

    pub fn with_limits(current: Revision, ring: usize, queue: usize) -> Self {
        WatchHub {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(ring.min(1024)),
                ring_cap: ring,
                last: current,
                subs: Vec::new(),
                closed: false,
            }),
            queue: queue.max(1),
        }
    }

    /// Publishes committed events, in revision order. Must be called by the single writer,
    /// after the events are durable, in the order they were committed.
    pub fn publish(&self, events: &[Event]) {
        let mut inner = self.inner.lock().unwrap();
        for ev in events {
            debug_assert!(
                ev.revision() > inner.last,
                "events must be published in order"
            );
            inner.last = ev.revision();
            if inner.ring_cap > 0 {
                if inner.ring.len() == inner.ring_cap {
                    inner.ring.pop_front();
                }
                inner.ring.push_back(ev.clone());
            }
            inner.subs.retain(|sub| {
                if !ev.kv.key.starts_with(&sub.prefix) {
                    return !sub.tx.is_closed();
                }
                match sub.tx.try_send(ev.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.overflow.store(true, Ordering::Release);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
    }

    /// Forgets ring entries below `revision` (after a compaction).
    pub fn compact(&self, revision: Revision) {
        let mut inner = self.inner.lock().unwrap();
        while inner.ring.front().is_some_and(|e| e.revision() < revision) {
            inner.ring.pop_front();
        }
    }

    /// Ends every watch stream cleanly (the store is closing).
    pub fn close(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.closed = true;
        inner.subs.clear();
    }

    /// The revision of the last published event.
    pub fn last_revision(&self) -> Revision {
        self.inner.lock().unwrap().last
    }

    /// Number of live watchers (for metrics and tests).
    pub fn watchers(&self) -> usize {
        let mut inner = self.inner.lock().unwrap();
        inner.subs.retain(|s| !s.tx.is_closed());
        inner.subs.len()
    }

    /// Starts a watch on `prefix` from revision `from` (inclusive; 0 = after now).
    ///
    /// Events older than the ring are fetched with `history(from, to)`, which must return
    /// the events under `prefix` with `from <= revision <= to`, in order (or `Compacted`).
    /// It is called without the hub lock held, so the writer is never blocked by it.
    pub fn subscribe(
        &self,
        prefix: &str,
        from: Revision,
        history: &mut dyn FnMut(Revision, Revision) -> Result<Vec<Event>, StoreError>,
    ) -> Result<WatchStream, StoreError> {
        let mut backlog: Vec<Event> = Vec::new();
        let mut from = from;
        loop {
            let mut inner = self.inner.lock().unwrap();
            if inner.closed {
                return Err(StoreError::Closed);
            }
            if from == 0 || from > inner.last {
                return Ok(self.register(&mut inner, prefix, backlog));
            }
            let ring_start = inner.ring.front().map(|e| e.revision());
            if ring_start.is_some_and(|start| start <= from) {
                backlog.extend(
                    inner
                        .ring
                        .iter()
                        .filter(|e| e.revision() >= from && e.kv.key.starts_with(prefix))
                        .cloned(),
                );
                return Ok(self.register(&mut inner, prefix, backlog));
            }
            // Older than the ring: read that part of history without holding the lock,
            // then come back for whatever was published meanwhile.
            let to = ring_start.map(|s| s - 1).unwrap_or(inner.last);
            drop(inner);
            backlog.extend(history(from, to)?);
            from = to + 1;
        }
    }

    fn register(&self, inner: &mut Inner, prefix: &str, backlog: Vec<Event>) -> WatchStream {
        let (tx, rx) = mpsc::channel(self.queue);
        let overflow = Arc::new(AtomicBool::new(false));
        inner.subs.push(Subscriber {
            prefix: prefix.to_string(),
            tx,
            overflow: overflow.clone(),
        });
        let live = stream::unfold(Some((rx, overflow)), |state| async move {
            let (mut rx, overflow) = state?;
            match rx.recv().await {
                Some(ev) => Some((Ok(ev), Some((rx, overflow)))),
                None if overflow.load(Ordering::Acquire) => {
                    Some((Err(StoreError::WatcherTooSlow), None))
                }
                None => None,
            }
        });
        stream::iter(backlog.into_iter().map(Ok))
            .chain(live)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, KeyValue};
    use bytes::Bytes;

    fn ev(rev: Revision, key: &str) -> Event {
        Event {
            kind: EventType::Put,
            kv: KeyValue {
                key: key.into(),
                value: Bytes::new(),
                create_revision: rev,
                mod_revision: rev,
            },
            prev_kv: None,
        }
    }

    fn no_history(_: Revision, _: Revision) -> Result<Vec<Event>, StoreError> {
        panic!("history must not be read when the ring covers the range")
    }

    #[tokio::test]
    async fn slow_watcher_is_disconnected_not_buffered() {
        let hub = WatchHub::with_limits(1, 16, 4);
        let mut slow = hub.subscribe("/registry/a/", 0, &mut no_history).unwrap();
        let mut other = hub.subscribe("/registry/b/", 0, &mut no_history).unwrap();
        for rev in 2..20 {
            hub.publish(&[ev(rev, "/registry/a/x")]);
        }
        for rev in 2..6 {
            assert_eq!(slow.next().await.unwrap().unwrap().revision(), rev);
        }
        assert_eq!(slow.next().await, Some(Err(StoreError::WatcherTooSlow)));
        assert_eq!(slow.next().await, None);
        // The watcher on another prefix was untouched and is still registered.
        assert_eq!(hub.watchers(), 1);
        hub.publish(&[ev(20, "/registry/b/y")]);
        assert_eq!(other.next().await.unwrap().unwrap().revision(), 20);
    }

    #[tokio::test]
    async fn ring_then_history_then_live() {
        let hub = WatchHub::with_limits(1, 3, 64);
        for rev in 2..=6 {
            hub.publish(&[ev(rev, "/registry/a/x")]);
        }
        // Ring holds 4..=6; 2..=3 must come from history.
        let mut calls = Vec::new();
        let mut w = hub
            .subscribe("/registry/a/", 2, &mut |lo, hi| {
                calls.push((lo, hi));
                Ok((lo..=hi).map(|r| ev(r, "/registry/a/x")).collect())
            })
            .unwrap();
        assert_eq!(calls, [(2, 3)]);
        hub.publish(&[ev(7, "/registry/a/x")]);
        for rev in 2..=7 {
            assert_eq!(w.next().await.unwrap().unwrap().revision(), rev);
        }
        hub.close();
        assert_eq!(w.next().await, None, "closing ends streams cleanly");
    }
}
