//! The shared conformance suite against real etcd servers (Debian's etcd-server, started
//! on loopback by the tests). These never skip: without etcd they fail and say how to
//! install it.

use std::sync::{Arc, Mutex};

use skiff_store::conformance;
use skiff_store::etcd::testing::EtcdServer;
use skiff_store::etcd::EtcdStore;
use skiff_store::memory::MemoryStore;

/// A fresh, empty etcd and a store connected to it. The suite's revision arithmetic needs
/// an empty store, so every check gets its own server (etcd 3.4 starts in about a second).
async fn fresh(servers: &Mutex<Vec<EtcdServer>>) -> EtcdStore {
    let server = EtcdServer::start();
    let store = EtcdStore::connect(server.options())
        .await
        .unwrap_or_else(|e| panic!("connecting to the test etcd: {e}\n{}", server.log_tail()));
    servers.lock().unwrap().push(server);
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let servers = Mutex::new(Vec::new());
    conformance::run_all(|| fresh(&servers)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_16_writers() {
    let servers = Mutex::new(Vec::new());
    let store = Arc::new(fresh(&servers).await);
    conformance::concurrent_cas(store, 16, 50).await;
}

/// Restores into a memory store: restoring an etcd itself is `etcdctl snapshot restore`'s
/// job; what matters here is that the snapshot is a consistent, complete image in the
/// common format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_roundtrip() {
    let servers = Mutex::new(Vec::new());
    let store = fresh(&servers).await;
    let dir = tempfile::tempdir().unwrap();
    conformance::snapshot_roundtrip(&store, &dir.path().join("snap"), |p| async move {
        MemoryStore::restore(&p).unwrap()
    })
    .await;
}
