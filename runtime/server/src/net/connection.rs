//! One HTTP/1.1 connection: hyper serves its requests through the router, its [`Watch`] holds
//! it to the time limits, and it ends with a lingering close, so an answer sent before the
//! request was read in full (413, 408, 400) reaches the client instead of a reset.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::watch::{Expired, Watch, Watched};
use crate::error::raw_response;
use crate::limits::Limits;
use crate::metrics::Metrics;

/// hyper's read buffer per connection; also the most header bytes a request may have.
const READ_BUFFER: usize = 64 << 10;
/// How long, and for how many bytes, a closing connection is drained.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 << 10;

/// Serves `io` until the client leaves, a limit runs out, or `draining` turns true (then the
/// request in progress finishes first).
pub async fn serve<IO>(
    io: IO,
    router: Router,
    limits: &Limits,
    metrics: &Metrics,
    mut draining: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Watch::new(limits);
    let service = Service {
        router,
        watch: watch.clone(),
    };
    let mut conn = http1::Builder::new()
        .max_buf_size(READ_BUFFER)
        .serve_connection(TokioIo::new(Watched::new(io, watch.clone())), service);
    let mut drain_asked = *draining.borrow();
    if drain_asked {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let expired = loop {
        tokio::select! {
            _ = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break None,
            limit = watch.expired() => break Some(limit),
            _ = draining.changed(), if !drain_asked => {
                drain_asked = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    let mut io = conn.into_parts().io.into_inner().into_inner();
    match expired {
        Some(Expired::Head) => {
            metrics.refused("header_timeout");
            let answer = raw_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request headers did not arrive within {:.1} s (runtime.header_timeout_secs)",
                    limits.header_timeout.as_secs_f64()
                ),
            );
            let _ = tokio::time::timeout(LINGER, io.write_all(&answer)).await;
        }
        // The client is not reading: nothing more can reach it.
        Some(Expired::Stalled) => {
            metrics.refused("response_unread");
            return;
        }
        Some(Expired::Idle) | None => {}
    }
    linger_close(io).await;
}

/// Says we are done, then reads what the client still sends for a moment before closing, so
/// the kernel does not answer those bytes with a reset that destroys our last answer.
async fn linger_close<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO) {
    let _ = tokio::time::timeout(LINGER, async {
        io.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            let n = io.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            drained += n;
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The router, telling the connection's [`Watch`] when a request starts and its response ends.
#[derive(Clone)]
struct Service {
    router: Router,
    watch: Arc<Watch>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<WatchedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.watch.request_started();
        let mut router = self.router.clone();
        let watch = self.watch.clone();
        Box::pin(async move {
            let response = tower::Service::call(&mut router, request.map(Body::new)).await?;
            Ok(response.map(|body| WatchedBody {
                body,
                _done: ResponseDone(watch),
            }))
        })
    }
}

/// Marks the response done when hyper drops its body, which it does once the body is written.
struct ResponseDone(Arc<Watch>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        self.0.response_done();
    }
}

struct WatchedBody {
    body: Body,
    _done: ResponseDone,
}

impl hyper::body::Body for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
