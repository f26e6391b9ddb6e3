//! The hyper service of one connection: marks the connection busy for the life of each request,
//! bounds the time to a response with the request timeout, and records WebSocket upgrades so
//! that the connection table never sheds them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body::Frame;
use hyper::body::Incoming;

use super::conn_table::{BusyGuard, Slot};
use crate::api::error::{ApiError, codes};

#[derive(Clone)]
pub struct ConnService {
    pub router: Router,
    pub slot: Arc<Slot>,
    pub request_timeout: Duration,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn call(&self, req: Request<Incoming>) -> BoxFuture {
        let Some(busy) = self.slot.begin_request() else {
            // Shed in the instant the header completed: the socket is about to close anyway.
            return Box::pin(async {
                Ok(closing(StatusCode::SERVICE_UNAVAILABLE, codes::INTERNAL, "connection shed"))
            });
        };
        let slot = Arc::clone(&self.slot);
        let timeout = self.request_timeout;
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = tower_service::Service::call(&mut router, req.map(Body::new));
            let response = match tokio::time::timeout(timeout, response).await {
                Ok(Ok(r)) => r,
                Ok(Err(never)) => match never {},
                Err(_) => closing(
                    StatusCode::REQUEST_TIMEOUT,
                    codes::REQUEST_TIMEOUT,
                    &format!("the request took longer than {} s (request_timeout_secs)", timeout.as_secs_f32()),
                ),
            };
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                slot.mark_upgraded();
            }
            Ok(response.map(|body| Body::new(TrackedBody { inner: body, _busy: busy })))
        })
    }
}

/// An error response after which hyper closes the connection (its body may not have been read).
fn closing(status: StatusCode, code: u32, message: &str) -> Response<Body> {
    let mut r = axum::response::IntoResponse::into_response(ApiError::new(status, code, message));
    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

/// A response body that keeps its connection marked busy until hyper has sent it all (hyper
/// drops the body then), so a large static file being written is not taken for idleness.
struct TrackedBody {
    inner: Body,
    _busy: BusyGuard,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
