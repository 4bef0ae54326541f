//! The listening side: accepts connections up to `max_connections` (more are answered 503 and
//! closed), optionally speaks TLS, and serves each connection under the time limits. Built on
//! hyper's HTTP/1.1 connection directly rather than `axum::serve`, which has no timers and no
//! connection cap.

mod connection;
pub mod tls;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::raw_response;
use crate::http::{router, AppState};

/// The most a shutdown waits for connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes, then lets connections finish their requests (up to
/// `DRAIN`, 10 s).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router(state.clone());
    let capacity = Arc::new(Semaphore::new(state.limits.max_connections));
    let (draining, drain_signal) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: let connections end first.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small responses must not wait on Nagle + delayed ACK (tens of ms per request).
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!("cannot set TCP_NODELAY: {e}");
                }
                let Ok(permit) = capacity.clone().try_acquire_owned() else {
                    refuse(tcp, &state);
                    continue;
                };
                let (state, router, drain_signal) = (state.clone(), router.clone(), drain_signal.clone());
                connections.spawn(async move {
                    let _permit = permit;
                    let limits = &state.limits;
                    match &state.tls {
                        None => connection::serve(tcp, router, limits, &state.metrics, drain_signal).await,
                        Some(acceptor) => {
                            // The handshake is part of what must arrive within the header timeout.
                            match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                                Ok(Ok(tls)) => connection::serve(tls, router, limits, &state.metrics, drain_signal).await,
                                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                                Err(_) => state.metrics.refused("header_timeout"),
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = draining.send(true);
    let finished = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            "{} connections still open after {DRAIN:?} of shutdown; closing them",
            connections.len()
        );
    }
    Ok(())
}

/// A connection over `max_connections`: answered 503 at once (plain HTTP only: a TLS client
/// would need a handshake first) and closed.
fn refuse(tcp: TcpStream, state: &AppState) {
    state.metrics.refused("max_connections");
    if state.tls.is_none() {
        let answer = raw_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the server holds {} connections already (runtime.max_connections); try again shortly",
                state.limits.max_connections
            ),
        );
        // Fits the socket's empty send buffer; a connection that cannot take it is closed anyway.
        let _ = tcp.try_write(&answer);
    }
}
