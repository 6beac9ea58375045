//! Read queries, run on read-only connections inside one read transaction each.

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::sql_err;
use crate::snapshot::Snapshot;
use crate::*;

fn begin(conn: &Connection) -> Result<Transaction<'_>> {
    Transaction::new_unchecked(conn, TransactionBehavior::Deferred).map_err(sql_err)
}

fn key_of(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// A row `(key, create_rev, rev, value)` as a live key.
fn kv_row(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_of(row.get(0)?)?,
        create_revision: row.get(1)?,
        mod_revision: row.get(2)?,
        value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
    })
}

/// Rows that do not decode (a key that is not UTF-8, a NULL where there must be a value)
/// mean the file was damaged or written by something else.
fn row_err(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            StoreError::Corrupt(format!("sqlite store holds an invalid row: {e}"))
        }
        e => sql_err(e),
    }
}

/// `(current revision, compacted revision)` as seen by the open transaction.
pub(super) fn revisions(conn: &Connection) -> Result<(Revision, Revision)> {
    conn.prepare_cached(
        "SELECT max(coalesce((SELECT max(rev) FROM log), 0), \
                    (SELECT value FROM meta WHERE name = 'base_revision')), \
                (SELECT value FROM meta WHERE name = 'compacted')",
    )
    .and_then(|mut stmt| {
        stmt.query_row([], |row| {
            Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
        })
    })
    .map_err(row_err)
    .and_then(|revs| match revs {
        (Some(current), Some(compacted)) => Ok((current, compacted)),
        _ => Err(StoreError::Corrupt(
            "sqlite store: meta table is incomplete".into(),
        )),
    })
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    conn.prepare_cached(
        "SELECT c.key, l.create_rev, l.rev, l.value FROM current c JOIN log l ON l.rev = c.rev \
         WHERE c.key = ?1",
    )
    .and_then(|mut stmt| stmt.query_row([key.as_bytes()], kv_row).optional())
    .map_err(row_err)
}

fn check_read_revision(
    requested: Revision,
    current: Revision,
    compacted: Revision,
) -> Result<Revision> {
    if requested == 0 {
        return Ok(current);
    }
    if requested < compacted {
        return Err(StoreError::Compacted {
            requested,
            compacted,
        });
    }
    if requested > current {
        return Err(StoreError::FutureRevision { requested, current });
    }
    Ok(requested)
}

const LIST_LATEST: &str = "SELECT c.key, l.create_rev, l.rev, l.value \
     FROM current c JOIN log l ON l.rev = c.rev \
     WHERE c.key >= ?1 AND c.key < ?2 AND c.key > ?3 \
     ORDER BY c.key LIMIT ?4";

/// Per key, the newest row at or below the revision, if it is not a tombstone.
const LIST_AT: &str = "SELECT l.key, l.create_rev, l.rev, l.value FROM log l \
     WHERE l.key >= ?1 AND l.key < ?2 AND l.key > ?3 AND l.deleted = 0 \
       AND l.rev = (SELECT max(x.rev) FROM log x WHERE x.key = l.key AND x.rev <= ?5) \
     ORDER BY l.key LIMIT ?4";

pub(super) fn list(conn: &Connection, req: &ListRequest) -> Result<ListResponse> {
    let tx = begin(conn)?;
    let (current, compacted) = revisions(&tx)?;
    let revision = check_read_revision(req.revision, current, compacted)?;
    let lo = req.prefix.as_bytes();
    let hi = prefix_end(&req.prefix);
    // Keys below the prefix never match, so "greater than start_after" is exactly the
    // memory backend's rule (exclusive start_after if it is inside the range).
    let after: &[u8] = req.start_after.as_deref().map_or(b"", str::as_bytes);
    // One more than asked for, to learn whether there are more.
    let limit: i64 = match req.limit {
        0 => -1,
        n => i64::try_from(n).unwrap_or(i64::MAX - 1) + 1,
    };
    let mut kvs = if revision == current {
        tx.prepare_cached(LIST_LATEST)
            .and_then(|mut stmt| {
                stmt.query_map(params![lo, hi, after, limit], kv_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(row_err)?
    } else {
        tx.prepare_cached(LIST_AT)
            .and_then(|mut stmt| {
                stmt.query_map(params![lo, hi, after, limit, revision], kv_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(row_err)?
    };
    let more = req.limit > 0 && kvs.len() > req.limit;
    if more {
        kvs.truncate(req.limit);
    }
    Ok(ListResponse {
        kvs,
        revision,
        more,
    })
}

/// Events under `prefix` with `lo <= revision <= hi`, in order, with previous values.
pub(super) fn history(
    conn: &Connection,
    prefix: &str,
    lo: Revision,
    hi: Revision,
) -> Result<Vec<Event>> {
    let tx = begin(conn)?;
    let (_, compacted) = revisions(&tx)?;
    if lo < compacted {
        return Err(StoreError::Compacted {
            requested: lo,
            compacted,
        });
    }
    let end = prefix_end(prefix);
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.rev, l.key, l.create_rev, l.deleted, l.value, l.prev_rev, p.value \
             FROM log l LEFT JOIN log p ON p.rev = l.prev_rev \
             WHERE l.rev >= ?1 AND l.rev <= ?2 AND l.key >= ?3 AND l.key < ?4 \
             ORDER BY l.rev",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![lo, hi, prefix.as_bytes(), end], |row| {
            Ok((
                row.get::<_, Revision>(0)?,
                key_of(row.get(1)?)?,
                row.get::<_, Revision>(2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, Vec<u8>>(4)?,
                row.get::<_, Option<Revision>>(5)?,
                row.get::<_, Option<Vec<u8>>>(6)?,
            ))
        })
        .map_err(sql_err)?;
    let mut events = Vec::new();
    for row in rows {
        let (rev, key, create_rev, deleted, value, prev_rev, prev_value) = row.map_err(row_err)?;
        let prev_kv = match (prev_rev, prev_value) {
            (None, _) => None,
            (Some(prev_rev), Some(prev_value)) => Some(KeyValue {
                key: key.clone(),
                value: Bytes::from(prev_value),
                create_revision: create_rev,
                mod_revision: prev_rev,
            }),
            (Some(prev_rev), None) => {
                return Err(StoreError::Corrupt(format!(
                    "sqlite store: revision {rev} refers to missing previous revision {prev_rev}"
                )))
            }
        };
        events.push(if deleted {
            Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    key,
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                },
                prev_kv,
            }
        } else {
            Event {
                kind: EventType::Put,
                kv: KeyValue {
                    key,
                    value: Bytes::from(value),
                    create_revision: create_rev,
                    mod_revision: rev,
                },
                prev_kv,
            }
        });
    }
    Ok(events)
}

/// The latest state, consistently.
pub(super) fn snapshot(conn: &Connection) -> Result<Snapshot> {
    let tx = begin(conn)?;
    let (revision, compacted) = revisions(&tx)?;
    let kvs = tx
        .prepare_cached(
            "SELECT c.key, l.create_rev, l.rev, l.value FROM current c JOIN log l ON l.rev = c.rev \
             ORDER BY c.key",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], kv_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(row_err)?;
    Ok(Snapshot {
        revision,
        compacted,
        kvs,
    })
}
