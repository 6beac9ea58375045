//! The conformance suite every backend must pass, written once.
//!
//! Each check takes a fresh, empty store from the factory and panics with a message on the
//! first deviation from etcd semantics. Backends call [`run_all`] from their own tests, and
//! [`concurrent_cas`] / [`snapshot_roundtrip`] where they apply.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs every single-store check against fresh stores from `factory`.
pub async fn run_all<S, F, Fut>(factory: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    crud(&factory().await).await;
    list(&factory().await).await;
    watch(&factory().await).await;
    compaction(&factory().await).await;
    invalid_keys(&factory().await).await;
    concurrent_cas(Arc::new(factory().await), 8, 25).await;
}

/// Create/get/update/delete with compare-and-swap, conflicts, and revision accounting.
pub async fn crud<S: Store>(s: &S) {
    let base = s.current_revision().await.unwrap();
    let k = "/registry/things/a";
    assert_eq!(s.get(k).await.unwrap(), None, "empty store has no key");

    let c = s.create(k, b("v1")).await.unwrap();
    assert_eq!(
        c.mod_revision,
        base + 1,
        "a write bumps the revision by one"
    );
    assert_eq!(c.create_revision, c.mod_revision);
    assert_eq!(c.value, b("v1"));
    assert_eq!(s.get(k).await.unwrap(), Some(c.clone()));

    let dup = s.create(k, b("other")).await.unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists { .. }), "{dup:?}");
    assert_eq!(
        s.current_revision().await.unwrap(),
        base + 1,
        "a failed write does not bump the revision"
    );

    let u = s.update(k, b("v2"), Some(c.mod_revision)).await.unwrap();
    assert_eq!(u.mod_revision, base + 2);
    assert_eq!(u.create_revision, c.create_revision);

    let stale = s
        .update(k, b("v3"), Some(c.mod_revision))
        .await
        .unwrap_err();
    assert_eq!(
        stale,
        StoreError::Conflict {
            key: k.into(),
            expected: c.mod_revision,
            actual: u.mod_revision
        }
    );
    assert_eq!(
        s.get(k).await.unwrap().unwrap().value,
        b("v2"),
        "a conflict writes nothing"
    );

    let uncond = s.update(k, b("v3"), None).await.unwrap();
    assert_eq!(uncond.mod_revision, base + 3);

    let missing = s
        .update("/registry/things/zz", b("x"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );

    let del_stale = s.delete(k, Some(u.mod_revision)).await.unwrap_err();
    assert!(
        matches!(del_stale, StoreError::Conflict { .. }),
        "{del_stale:?}"
    );
    let deleted = s.delete(k, Some(uncond.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, b("v3"), "delete returns the last state");
    assert_eq!(deleted.mod_revision, uncond.mod_revision);
    assert_eq!(s.current_revision().await.unwrap(), base + 4);
    assert_eq!(s.get(k).await.unwrap(), None);
    let again = s.delete(k, None).await.unwrap_err();
    assert!(matches!(again, StoreError::NotFound { .. }), "{again:?}");

    let recreated = s.create(k, b("v4")).await.unwrap();
    assert_eq!(
        recreated.create_revision,
        base + 5,
        "re-creation gets a new create_revision"
    );

    // Values are opaque bytes.
    let bin = Bytes::from_static(b"\0\x01\xff binary");
    s.create("/registry/things/bin", bin.clone()).await.unwrap();
    assert_eq!(
        s.get("/registry/things/bin").await.unwrap().unwrap().value,
        bin
    );
}

/// Prefix ranges, ordering, paging and reads at older revisions.
pub async fn list<S: Store>(s: &S) {
    for name in ["c", "a", "b", "d"] {
        s.create(&format!("/registry/pods/ns1/{name}"), b(name))
            .await
            .unwrap();
    }
    s.create("/registry/pods/ns2/a", b("other-ns"))
        .await
        .unwrap();
    s.create("/registry/podsx/ns1/a", b("sibling"))
        .await
        .unwrap();

    let all = s
        .list(&ListRequest {
            prefix: "/registry/pods/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/registry/pods/ns1/a",
            "/registry/pods/ns1/b",
            "/registry/pods/ns1/c",
            "/registry/pods/ns1/d",
            "/registry/pods/ns2/a"
        ],
        "prefix list is in key order and excludes sibling prefixes"
    );
    assert!(!all.more);
    assert_eq!(all.revision, s.current_revision().await.unwrap());

    // Paging: limit 2 with start_after, at the revision of the first page.
    let mut seen = Vec::new();
    let mut after = None;
    let mut pinned = 0;
    loop {
        let page = s
            .list(&ListRequest {
                prefix: "/registry/pods/ns1/".into(),
                start_after: after.clone(),
                limit: 2,
                revision: pinned,
            })
            .await
            .unwrap();
        if pinned == 0 {
            pinned = page.revision;
            // A write between pages must not show up in later pages.
            s.create("/registry/pods/ns1/e", b("late")).await.unwrap();
        }
        assert_eq!(page.revision, pinned);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
        assert_eq!(page.kvs.len(), 2);
    }
    assert_eq!(
        seen,
        ["a", "b", "c", "d"].map(|n| format!("/registry/pods/ns1/{n}")),
        "paging at a pinned revision sees a consistent snapshot"
    );

    // Reading at an older revision sees old values and keys deleted since.
    let before = s.current_revision().await.unwrap();
    let a = s.get("/registry/pods/ns1/a").await.unwrap().unwrap();
    s.update("/registry/pods/ns1/a", b("a2"), Some(a.mod_revision))
        .await
        .unwrap();
    s.delete("/registry/pods/ns1/b", None).await.unwrap();
    let old = s
        .list(&ListRequest {
            prefix: "/registry/pods/ns1/".into(),
            revision: before,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(old.revision, before);
    let old_vals: Vec<_> = old.kvs.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(old_vals, [b("a"), b("b"), b("c"), b("d"), b("late")]);
    let new = s
        .list(&ListRequest {
            prefix: "/registry/pods/ns1/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let new_vals: Vec<_> = new.kvs.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(new_vals, [b("a2"), b("c"), b("d"), b("late")]);

    let future = s
        .list(&ListRequest {
            prefix: "/registry/pods/".into(),
            revision: new.revision + 100,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(future, StoreError::FutureRevision { .. }),
        "{future:?}"
    );

    let empty = s
        .list(&ListRequest {
            prefix: "/registry/nothing/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(empty.kvs.is_empty() && !empty.more);
}

async fn next_event(w: &mut WatchStream) -> Event {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

async fn no_event(w: &mut WatchStream) {
    if let Ok(ev) = tokio::time::timeout(Duration::from_millis(300), w.next()).await {
        panic!("expected no watch event, got {ev:?}");
    }
}

/// Watches from now and from the past: ordering, previous values, deletes, prefixes.
pub async fn watch<S: Store>(s: &S) {
    let start = s.current_revision().await.unwrap();
    let mut live = s.watch("/registry/cm/", 0).await.unwrap();
    let mut ns1 = s.watch("/registry/cm/ns1/", 0).await.unwrap();

    let x = s.create("/registry/cm/ns1/x", b("1")).await.unwrap();
    s.create("/registry/other/ns1/x", b("ignored"))
        .await
        .unwrap();
    let y = s.create("/registry/cm/ns2/y", b("1")).await.unwrap();
    let x2 = s
        .update("/registry/cm/ns1/x", b("2"), Some(x.mod_revision))
        .await
        .unwrap();
    s.delete("/registry/cm/ns1/x", None).await.unwrap();
    let del_rev = s.current_revision().await.unwrap();

    let e1 = next_event(&mut live).await;
    assert_eq!(
        (e1.kind, e1.kv.clone(), e1.prev_kv.clone()),
        (EventType::Put, x.clone(), None)
    );
    let e2 = next_event(&mut live).await;
    assert_eq!(e2.kv, y, "events outside the prefix are not delivered");
    let e3 = next_event(&mut live).await;
    assert_eq!(e3.kind, EventType::Put);
    assert_eq!(e3.kv, x2);
    assert_eq!(
        e3.prev_kv,
        Some(x.clone()),
        "updates carry the previous value"
    );
    let e4 = next_event(&mut live).await;
    assert_eq!(e4.kind, EventType::Delete);
    assert_eq!(e4.kv.key, "/registry/cm/ns1/x");
    assert_eq!(e4.revision(), del_rev);
    assert_eq!(e4.prev_kv, Some(x2.clone()), "deletes carry the last value");
    no_event(&mut live).await;

    let revs: Vec<_> = [
        next_event(&mut ns1).await,
        next_event(&mut ns1).await,
        next_event(&mut ns1).await,
    ]
    .iter()
    .map(|e| e.revision())
    .collect();
    assert_eq!(revs, [x.mod_revision, x2.mod_revision, del_rev]);
    no_event(&mut ns1).await;

    // From an old revision: the whole history replays in order, then live events follow.
    let mut replay = s.watch("/registry/cm/", start + 1).await.unwrap();
    for expected in [x.mod_revision, y.mod_revision, x2.mod_revision, del_rev] {
        assert_eq!(next_event(&mut replay).await.revision(), expected);
    }
    let z = s.create("/registry/cm/ns1/z", b("1")).await.unwrap();
    let ez = next_event(&mut replay).await;
    assert_eq!(
        ez.kv, z,
        "after the replay, live events follow without a gap"
    );
    assert_eq!(next_event(&mut live).await.kv, z);

    // From the middle of history.
    let mut mid = s.watch("/registry/cm/", x2.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut mid).await.revision(), x2.mod_revision);
    assert_eq!(next_event(&mut mid).await.revision(), del_rev);
    assert_eq!(next_event(&mut mid).await.revision(), z.mod_revision);

    // Many writes in a burst arrive complete and in order.
    let mut burst = s.watch("/registry/burst/", 0).await.unwrap();
    let mut want = Vec::new();
    for i in 0..200 {
        want.push(
            s.create(&format!("/registry/burst/k{i:03}"), b("v"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    for rev in want {
        assert_eq!(next_event(&mut burst).await.revision(), rev);
    }
}

/// Compaction: history below the point is gone with a distinct error; state is kept.
pub async fn compaction<S: Store>(s: &S) {
    let a = s.create("/registry/c/a", b("1")).await.unwrap();
    let a2 = s
        .update("/registry/c/a", b("2"), Some(a.mod_revision))
        .await
        .unwrap();
    s.create("/registry/c/b", b("1")).await.unwrap();
    s.delete("/registry/c/b", None).await.unwrap();
    let point = s.current_revision().await.unwrap();
    let after = s.create("/registry/c/c", b("1")).await.unwrap();

    s.compact(point).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), point);

    let old = s
        .list(&ListRequest {
            prefix: "/registry/c/".into(),
            revision: a2.mod_revision,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(old, StoreError::Compacted { .. }), "{old:?}");

    match s.watch("/registry/c/", a.mod_revision).await {
        Err(StoreError::Compacted { .. }) => {}
        Ok(mut w) => match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
            Ok(Some(Err(StoreError::Compacted { .. }))) => {}
            other => panic!("watch from a compacted revision must fail, got {other:?}"),
        },
        Err(e) => panic!("expected Compacted, got {e:?}"),
    }

    let at_point = s
        .list(&ListRequest {
            prefix: "/registry/c/".into(),
            revision: point,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        at_point.kvs,
        vec![a2.clone()],
        "state at the compaction point is kept"
    );
    let latest = s
        .list(&ListRequest {
            prefix: "/registry/c/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(latest.kvs, vec![a2, after.clone()]);

    let mut w = s.watch("/registry/c/", point + 1).await.unwrap();
    assert_eq!(
        next_event(&mut w).await.kv,
        after,
        "history after the point replays"
    );

    let again = s.compact(point - 1).await.unwrap_err();
    assert!(matches!(again, StoreError::Compacted { .. }), "{again:?}");
    let future = s.compact(after.mod_revision + 10).await.unwrap_err();
    assert!(
        matches!(future, StoreError::FutureRevision { .. }),
        "{future:?}"
    );
}

/// Keys outside the prefix space are rejected by every operation, and write nothing.
pub async fn invalid_keys<S: Store>(s: &S) {
    let rev = s.current_revision().await.unwrap();
    for key in [
        "",
        "/etc/passwd",
        "registry/x",
        "/registry//x",
        "/registry/a/../b",
    ] {
        let is_invalid = |r: Result<_>| matches!(r, Err(StoreError::InvalidKey { .. }));
        assert!(is_invalid(s.get(key).await.map(|_| ())), "get {key:?}");
        assert!(
            is_invalid(s.create(key, b("x")).await.map(|_| ())),
            "create {key:?}"
        );
        assert!(
            is_invalid(s.update(key, b("x"), None).await.map(|_| ())),
            "update {key:?}"
        );
        assert!(
            is_invalid(s.delete(key, None).await.map(|_| ())),
            "delete {key:?}"
        );
    }
    let bad_list = s
        .list(&ListRequest {
            prefix: "/elsewhere/".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad_list, Err(StoreError::InvalidKey { .. })));
    assert!(matches!(
        s.watch("/elsewhere/", 0).await.map(|_| ()),
        Err(StoreError::InvalidKey { .. })
    ));
    assert_eq!(
        s.current_revision().await.unwrap(),
        rev,
        "nothing was written"
    );
}

/// `writers` tasks each do `rounds` read-modify-CAS increments on a few shared counters.
/// Every acknowledged increment must be reflected in the final values (no lost update),
/// and the store's revision must have moved once per successful write.
pub async fn concurrent_cas<S: Store>(s: Arc<S>, writers: usize, rounds: usize) {
    const COUNTERS: usize = 3;
    for c in 0..COUNTERS {
        s.create(&format!("/registry/counters/c{c}"), b("0"))
            .await
            .unwrap();
    }
    let start = s.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = [0u64; COUNTERS];
            for r in 0..rounds {
                let c = (w + r) % COUNTERS;
                let key = format!("/registry/counters/c{c}");
                loop {
                    let cur = s.get(&key).await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&cur.value).unwrap().parse().unwrap();
                    match s
                        .update(&key, b(&(n + 1).to_string()), Some(cur.mod_revision))
                        .await
                    {
                        Ok(_) => {
                            acked[c] += 1;
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            acked
        }));
    }
    let mut total = [0u64; COUNTERS];
    for t in tasks {
        let acked = t.await.unwrap();
        for c in 0..COUNTERS {
            total[c] += acked[c];
        }
    }
    for (c, want) in total.iter().enumerate() {
        let kv = s
            .get(&format!("/registry/counters/c{c}"))
            .await
            .unwrap()
            .unwrap();
        let got: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        assert_eq!(got, *want, "counter c{c}: an acknowledged update was lost");
    }
    assert_eq!(
        s.current_revision().await.unwrap() - start,
        (writers * rounds) as i64,
        "exactly one revision per successful write"
    );
}

/// A snapshot restores to an equal state at the same revision.
pub async fn snapshot_roundtrip<S, R, F, Fut>(s: &S, path: &Path, restore: F)
where
    S: Store,
    R: Store,
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = R>,
{
    for i in 0..50 {
        s.create(&format!("/registry/snap/k{i:02}"), b(&format!("v{i}")))
            .await
            .unwrap();
    }
    s.delete("/registry/snap/k07", None).await.unwrap();
    let k3 = s.get("/registry/snap/k03").await.unwrap().unwrap();
    s.update("/registry/snap/k03", b("changed"), Some(k3.mod_revision))
        .await
        .unwrap();
    let rev = s.snapshot(path).await.unwrap();
    assert_eq!(rev, s.current_revision().await.unwrap());
    let req = ListRequest {
        prefix: "/registry/".into(),
        ..Default::default()
    };
    let before = s.list(&req).await.unwrap();

    let r = restore(path.to_path_buf()).await;
    assert_eq!(r.current_revision().await.unwrap(), rev);
    let after = r.list(&req).await.unwrap();
    assert_eq!(after.kvs, before.kvs, "restored state equals the snapshot");
    let next = r.create("/registry/snap/new", b("x")).await.unwrap();
    assert_eq!(
        next.mod_revision,
        rev + 1,
        "the revision continues after a restore"
    );
}
