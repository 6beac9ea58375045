//! Accepting TLS connections and serving them with HTTP/1.1 and HTTP/2, and the shutdown
//! sequence: not-ready at once, keep serving for the delay, stop accepting, end watches,
//! drain in-flight requests up to the timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use skiff_pki::tls::ServerTls;
use tokio::net::TcpListener;

use crate::{ApiServer, ShutdownTimings, UserInfo};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then runs the shutdown sequence and returns.
pub async fn run(
    srv: Arc<ApiServer>,
    listener: TcpListener,
    tls: Arc<ServerTls>,
    timings: ShutdownTimings,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(Some(1000));
    let builder = Arc::new(builder);

    let ctx = AcceptCtx {
        srv: srv.clone(),
        listener: &listener,
        tls,
        builder,
        graceful: &graceful,
    };
    ctx.accept_until(shutdown).await;

    tracing::info!(
        "shutdown: not ready; serving for {:?} more before draining",
        timings.delay
    );
    srv.begin_shutdown();
    ctx.accept_until(tokio::time::sleep(timings.delay)).await;

    drop(listener);
    srv.end_watches();
    tracing::info!(
        "shutdown: draining in-flight requests (up to {:?})",
        timings.timeout
    );
    if tokio::time::timeout(timings.timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: timed out waiting for connections to drain");
    }
}

struct AcceptCtx<'a> {
    srv: Arc<ApiServer>,
    listener: &'a TcpListener,
    tls: Arc<ServerTls>,
    builder: Arc<Builder<TokioExecutor>>,
    graceful: &'a GracefulShutdown,
}

impl AcceptCtx<'_> {
    /// Accepts and serves connections until `deadline` resolves.
    async fn accept_until(&self, deadline: impl Future<Output = ()>) {
        tokio::pin!(deadline);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut deadline => return,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.tls.acceptor();
            let srv = self.srv.clone();
            let builder = self.builder.clone();
            let watcher = self.graceful.watcher();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                let user = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(skiff_pki::identity::from_peer_certs)
                    .map(|u| UserInfo {
                        name: u.name,
                        groups: u.groups,
                    });
                let service = service_fn(move |req| {
                    let srv = srv.clone();
                    let user = user.clone();
                    async move { Ok::<_, std::convert::Infallible>(srv.handle(req, user).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            });
        }
    }
}
