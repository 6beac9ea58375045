//! The single writer thread: group commit, compaction, event publication.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{sql_err, Shared};
use crate::{Event, EventType, KeyValue, Result, Revision, StoreError};

pub(super) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Option<Revision>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

pub(super) enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Finish what was sent before, then stop.
    Shutdown,
}

/// The outcome of one request inside a batch, sent once the batch's fate is known.
enum Answer {
    Kv(Result<KeyValue>),
    Unit(Result<()>),
}

pub(super) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    /// The revision of the last applied write (inside the open transaction, if any).
    revision: Revision,
    compacted: Revision,
    next_tick: Option<Instant>,
    /// The revision seen at the previous periodic-compaction tick.
    tick_revision: Option<Revision>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Request>,
        revision: Revision,
        compacted: Revision,
    ) -> Self {
        let next_tick = shared
            .options
            .compaction_interval
            .map(|every| Instant::now() + every);
        Writer {
            conn,
            shared,
            rx,
            revision,
            compacted,
            next_tick,
            tick_revision: None,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            let first = match self.next_tick {
                Some(tick) => {
                    let now = Instant::now();
                    if now >= tick {
                        self.periodic_compaction();
                        continue;
                    }
                    match self.rx.recv_timeout(tick - now) {
                        Ok(req) => req,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match self.rx.recv() {
                    Ok(req) => req,
                    Err(_) => break,
                },
            };
            // Group commit: everything already waiting goes into the same transaction.
            let mut batch = vec![first];
            while batch.len() < self.shared.options.max_batch.max(1) {
                match self.rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            let shutdown = batch.iter().position(|r| matches!(r, Request::Shutdown));
            if let Some(pos) = shutdown {
                // Requests after the shutdown marker are dropped: their senders see Closed.
                batch.truncate(pos);
            }
            if !batch.is_empty() {
                self.apply(batch);
            }
            if shutdown.is_some() {
                break;
            }
        }
        // Anything still queued is answered with Closed by dropping its reply sender.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::debug!("sqlite checkpoint at close: {e}");
        }
    }

    /// At each tick, compact to the revision seen at the previous tick (so at least one
    /// interval of history is kept), and keep at least `compaction_keep_revisions`.
    fn periodic_compaction(&mut self) {
        let Some(every) = self.shared.options.compaction_interval else {
            return;
        };
        self.next_tick = Some(Instant::now() + every);
        let keep = self.shared.options.compaction_keep_revisions.max(0);
        let target = self
            .tick_revision
            .map(|prev| prev.min(self.revision - keep))
            .unwrap_or(0);
        self.tick_revision = Some(self.revision);
        if target > self.compacted {
            let (reply, mut answer) = oneshot::channel();
            self.apply(vec![Request::Compact {
                revision: target,
                reply,
            }]);
            // `apply` has answered by now.
            match answer.try_recv() {
                Ok(Ok(())) => tracing::debug!(revision = target, "sqlite store compacted"),
                Ok(Err(e)) => tracing::warn!("periodic compaction to {target} failed: {e}"),
                Err(_) => {}
            }
        }
    }

    /// Applies a batch in one transaction, commits, publishes, answers.
    fn apply(&mut self, batch: Vec<Request>) {
        let (revision0, compacted0) = (self.revision, self.compacted);
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let outcome = self.run_batch(&batch, &mut answers, &mut events);
        let failure = match outcome {
            Ok(()) => None,
            Err(e) => {
                if !self.conn.is_autocommit() {
                    if let Err(rb) = self.conn.execute_batch("ROLLBACK") {
                        tracing::error!("sqlite rollback failed: {rb}");
                    }
                }
                self.revision = revision0;
                self.compacted = compacted0;
                let err = sql_err(e);
                tracing::error!("sqlite write transaction failed: {err}");
                Some(err)
            }
        };
        if failure.is_none() {
            let wrote = self.revision != revision0 || self.compacted != compacted0;
            if wrote {
                self.shared.commits.fetch_add(1, Ordering::AcqRel);
            }
            self.shared.revision.store(self.revision, Ordering::Release);
            self.shared
                .compacted
                .store(self.compacted, Ordering::Release);
            if self.compacted != compacted0 {
                self.shared.hub.compact(self.compacted);
            }
            self.shared.hub.publish(&events);
        }
        let mut answers = answers.into_iter();
        for req in batch {
            let answer = answers.next();
            match req {
                Request::Write { reply, .. } => {
                    let result = match (&failure, answer) {
                        (Some(err), _) => Err(err.clone()),
                        (None, Some(Answer::Kv(result))) => result,
                        (None, _) => Err(StoreError::Backend("writer lost an answer".into())),
                    };
                    let _ = reply.send(result);
                }
                Request::Compact { reply, .. } => {
                    let result = match (&failure, answer) {
                        (Some(err), _) => Err(err.clone()),
                        (None, Some(Answer::Unit(result))) => result,
                        (None, _) => Err(StoreError::Backend("writer lost an answer".into())),
                    };
                    let _ = reply.send(result);
                }
                Request::Shutdown => {}
            }
        }
    }

    fn run_batch(
        &mut self,
        batch: &[Request],
        answers: &mut Vec<Answer>,
        events: &mut Vec<Event>,
    ) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        for req in batch {
            let answer = match req {
                Request::Write { op, .. } => Answer::Kv(self.write(op, events)?),
                Request::Compact { revision, .. } => Answer::Unit(self.compact(*revision)?),
                Request::Shutdown => continue,
            };
            answers.push(answer);
        }
        self.conn.execute_batch("COMMIT")
    }

    /// The live state of `key` as seen inside the open transaction.
    fn live(&self, key: &str) -> rusqlite::Result<Option<KeyValue>> {
        self.conn
            .prepare_cached(
                "SELECT l.rev, l.create_rev, l.value FROM current c JOIN log l ON l.rev = c.rev \
                 WHERE c.key = ?1",
            )?
            .query_row([key.as_bytes()], |row| {
                Ok(KeyValue {
                    key: key.to_string(),
                    mod_revision: row.get(0)?,
                    create_revision: row.get(1)?,
                    value: Bytes::from(row.get::<_, Vec<u8>>(2)?),
                })
            })
            .optional()
    }

    /// Applies one write inside the open transaction. The outer error is a database failure
    /// (the whole batch fails); the inner one a failed precondition (nothing written).
    fn write(
        &mut self,
        op: &WriteOp,
        events: &mut Vec<Event>,
    ) -> rusqlite::Result<Result<KeyValue>> {
        let key = match op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        };
        let prev = self.live(key)?;
        let next = self.revision + 1;
        let check = |prev: &Option<KeyValue>, expected: &Option<Revision>| match prev {
            None => Err(StoreError::NotFound { key: key.clone() }),
            Some(p) => match expected {
                Some(exp) if *exp != p.mod_revision => Err(StoreError::Conflict {
                    key: key.clone(),
                    expected: *exp,
                    actual: p.mod_revision,
                }),
                _ => Ok(()),
            },
        };
        let (event, result) = match op {
            WriteOp::Create { value, .. } => {
                if prev.is_some() {
                    return Ok(Err(StoreError::AlreadyExists { key: key.clone() }));
                }
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: next,
                    mod_revision: next,
                };
                self.put(&kv, None)?;
                let event = Event {
                    kind: EventType::Put,
                    kv: kv.clone(),
                    prev_kv: None,
                };
                (event, kv)
            }
            WriteOp::Update {
                value, expected, ..
            } => {
                if let Err(e) = check(&prev, expected) {
                    return Ok(Err(e));
                }
                let prev = prev.expect("checked above");
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: prev.create_revision,
                    mod_revision: next,
                };
                self.put(&kv, Some(prev.mod_revision))?;
                let event = Event {
                    kind: EventType::Put,
                    kv: kv.clone(),
                    prev_kv: Some(prev),
                };
                (event, kv)
            }
            WriteOp::Delete { expected, .. } => {
                if let Err(e) = check(&prev, expected) {
                    return Ok(Err(e));
                }
                let prev = prev.expect("checked above");
                self.conn
                    .prepare_cached(
                        "INSERT INTO log (rev, key, create_rev, deleted, value, prev_rev) \
                         VALUES (?1, ?2, ?3, 1, x'', ?4)",
                    )?
                    .execute(params![
                        next,
                        key.as_bytes(),
                        prev.create_revision,
                        prev.mod_revision
                    ])?;
                self.conn
                    .prepare_cached("DELETE FROM current WHERE key = ?1")?
                    .execute([key.as_bytes()])?;
                let event = Event {
                    kind: EventType::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: next,
                    },
                    prev_kv: Some(prev.clone()),
                };
                (event, prev)
            }
        };
        self.revision = next;
        events.push(event);
        Ok(Ok(result))
    }

    fn put(&self, kv: &KeyValue, prev_rev: Option<Revision>) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO log (rev, key, create_rev, deleted, value, prev_rev) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            )?
            .execute(params![
                kv.mod_revision,
                kv.key.as_bytes(),
                kv.create_revision,
                &kv.value[..],
                prev_rev
            ])?;
        self.conn
            .prepare_cached(
                "INSERT INTO current (key, rev) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET rev = excluded.rev",
            )?
            .execute(params![kv.key.as_bytes(), kv.mod_revision])?;
        Ok(())
    }

    /// Compaction inside the open transaction. Rows below `revision` that are superseded
    /// by another row below `revision` go (each such row is the `prev_rev` of a row in
    /// `[previous compaction, revision)`), and so do tombstones below `revision`.
    fn compact(&mut self, revision: Revision) -> rusqlite::Result<Result<()>> {
        if revision > self.revision {
            return Ok(Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            }));
        }
        if revision <= self.compacted {
            return Ok(Err(StoreError::Compacted {
                requested: revision,
                compacted: self.compacted,
            }));
        }
        let from = self.compacted;
        self.conn.execute(
            "DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log \
             WHERE rev >= ?1 AND rev < ?2 AND prev_rev IS NOT NULL)",
            params![from, revision],
        )?;
        self.conn.execute(
            "DELETE FROM log WHERE rev >= ?1 AND rev < ?2 AND deleted = 1",
            params![from, revision],
        )?;
        self.conn.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
            [revision],
        )?;
        self.compacted = revision;
        Ok(Ok(()))
    }
}
