//! The HTTP server: routes, content negotiation, gzip; hyper 1.x on tokio.
//!
//! Routes: `GET /metrics` (Prometheus 0.0.4, or OpenMetrics when `Accept` asks;
//! gzip when `Accept-Encoding` allows), `GET /api/v1/rollups` (JSON), `GET /healthz`
//! (the process answers), `GET /readyz` (listeners bound and every shard running;
//! 503 otherwise). Handlers only read the store's current snapshot and atomic
//! counters, so a slow scrape never holds up a shard. HTTP/1.1 only: Prometheus
//! and curl speak it, and it keeps the build small.
//!
//! The web configuration in force ([`LiveWeb`]) guards every connection and
//! request: TLS (read once per connection), then the rate limit and basic auth
//! (read per request, so a reload reaches kept-alive scrapers), then its
//! headers on every answer. `/healthz` and `/readyz` need no credentials (they
//! reveal nothing, and kubelet probes carry none); TLS still applies.
//! `POST /-/reload` is served only with `web.enable_lifecycle`. A request head
//! over [`MAX_REQUEST_HEAD_BYTES`] is refused with 431, one not sent within
//! [`HEADER_READ_TIMEOUT`] closes the connection (kept-alive connections
//! too: the wait for the next request is bounded alike), and connections past
//! `limits.max_connections` are closed at accept. No route reads a request
//! body.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::protobuf::ProtoWriter;
use super::rollups::{self, Query};
use crate::exposition::{Exposition, Format, Writer, write_self_metrics, write_snapshot};
use crate::store::Store;
use crate::telemetry::{HttpRefusal, Listener, ScrapeFacts, Telemetry};
use crate::web::{ConnectionLimit, LiveWeb, handshake};

/// Largest request line and headers accepted (hyper's read buffer).
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 << 10;
/// Longest a client may take to send its request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Re-reads the config: what changed as JSON, or why the file was refused.
pub type ReloadHook = Box<
    dyn Fn() -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> + Send + Sync,
>;

/// What the handlers read.
pub struct HttpState {
    /// Serves `POST /-/reload`, when set.
    pub reload: Option<ReloadHook>,
    /// TLS, auth, headers and rate limit in force.
    web: Arc<LiveWeb>,
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
    /// Size of the last exposition, to allocate the next one in one go.
    last_exposition_bytes: AtomicUsize,
}

impl HttpState {
    /// Handlers reading `store` and `telemetry`, guarded by `web`.
    pub fn new(store: Arc<Store>, telemetry: Arc<Telemetry>, web: Arc<LiveWeb>) -> Self {
        HttpState {
            reload: None,
            web,
            store,
            telemetry,
            last_exposition_bytes: AtomicUsize::new(4096),
        }
    }

    /// The full exposition in `format`.
    pub fn exposition(&self, format: Format) -> Vec<u8> {
        let capacity = self.last_exposition_bytes.load(Ordering::Relaxed);
        let out = match format {
            Format::Protobuf => {
                let mut out = Vec::with_capacity(capacity);
                let mut writer = ProtoWriter::new(&mut out);
                self.write(&mut writer);
                writer.finish();
                out
            }
            Format::Prometheus | Format::OpenMetrics => {
                let mut out = String::with_capacity(capacity);
                let mut writer = Writer::new(&mut out, format);
                self.write(&mut writer);
                writer.finish();
                out.into_bytes()
            }
        };
        self.last_exposition_bytes
            .store(out.len() + out.len() / 8, Ordering::Relaxed);
        out
    }

    /// The latest window's series, then tallyd's own families.
    fn write(&self, writer: &mut impl Exposition) {
        let latest = self.store.latest();
        let conflicts = latest.as_ref().map_or(0, |s| write_snapshot(writer, s));
        let facts = ScrapeFacts {
            conflicts,
            window_series: latest.as_ref().map_or(0, |s| s.series.len()),
            last_window_end_seconds: latest
                .as_ref()
                .map_or(0.0, |s| s.bounds.end_unix_ms as f64 / 1000.0),
        };
        write_self_metrics(writer, &self.telemetry, &facts);
    }
}

/// Serves HTTP on `listener` until `shutdown` turns true, holding at most as
/// many connections at once as `connections` allows.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    connections: ConnectionLimit,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: log and keep serving.
                    tracing::warn!(error = %err, "cannot accept an HTTP connection");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(permit) = connections.admit() else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match state.web.current().http_tls.clone() {
                None => serve_connection(stream, state).await,
                Some(acceptor) => {
                    let telemetry = state.telemetry.clone();
                    if let Some(tls) =
                        handshake(&acceptor, stream, Listener::Http, &telemetry).await
                    {
                        serve_connection(tls, state).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 requests on one connection until it closes.
async fn serve_connection<IO>(io: IO, state: Arc<HttpState>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let telemetry = state.telemetry.clone();
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(guarded(&state, request).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // The exact limit on the head; the buffer bound alone lets a head
        // that arrives in one read through at up to twice its size.
        .max_header_size(MAX_REQUEST_HEAD_BYTES)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    if let Err(err) = builder.serve_connection(TokioIo::new(io), service).await {
        // hyper answers an oversized head with 431 itself. A head timeout is
        // not counted: it also ends every kept-alive connection left idle.
        if err.is_parse_too_large() {
            telemetry.access.http_refused(HttpRefusal::TooLarge).add(1);
        }
        tracing::debug!(error = %err, "HTTP connection ended with an error");
    }
}

/// The rate limit, then basic auth, then the route; the configured headers on
/// whatever the answer is.
async fn guarded(state: &HttpState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let security = state.web.current();
    let refused = |reason: HttpRefusal| state.telemetry.access.http_refused(reason).add(1);
    let open = matches!(request.uri().path(), "/healthz" | "/readyz");
    let mut response = if security
        .rate_limit
        .as_ref()
        .is_some_and(|limit| !limit.allow(Instant::now()))
    {
        refused(HttpRefusal::RateLimited);
        text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n")
    } else if let Some(auth) = security.auth.as_ref().filter(|_| !open)
        && !auth
            .allows(
                request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes),
            )
            .await
    {
        refused(HttpRefusal::Unauthorized);
        let mut response = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        response
    } else {
        handle(state, &request)
    };
    for (name, value) in &security.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

fn handle(state: &HttpState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() == "/-/reload" {
        return reload(state, request);
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
    }
    match request.uri().path() {
        "/metrics" => metrics(state, request),
        "/api/v1/rollups" => match Query::parse(request.uri().query().unwrap_or("")) {
            Ok(query) => {
                let body = rollups::render(&state.store.history(), &query);
                respond(StatusCode::OK, "application/json", body)
            }
            Err(err) => text(StatusCode::BAD_REQUEST, &format!("{err}\n")),
        },
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.telemetry.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: listeners or shards are still starting\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found (try /metrics, /api/v1/rollups, /healthz, /readyz)\n",
        ),
    }
}

/// `POST /-/reload`: re-reads the config file; 200 with what changed, or 400
/// with why the file was refused (the running config stays).
fn reload(state: &HttpState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST to reload the config\n",
        );
    }
    if !state.web.lifecycle_enabled() {
        state
            .telemetry
            .access
            .http_refused(HttpRefusal::LifecycleDisabled)
            .add(1);
        return text(
            StatusCode::FORBIDDEN,
            "the lifecycle API is off: set web.enable_lifecycle: true, or send SIGHUP\n",
        );
    }
    let Some(hook) = &state.reload else {
        return text(StatusCode::NOT_FOUND, "reload is not available\n");
    };
    match hook() {
        Ok(outcome) => respond(
            StatusCode::OK,
            "application/json",
            outcome.to_string().into_bytes(),
        ),
        Err(error) => {
            let body = serde_json::json!({ "error": error.to_string() }).to_string();
            respond(
                StatusCode::BAD_REQUEST,
                "application/json",
                body.into_bytes(),
            )
        }
    }
}

fn metrics(state: &HttpState, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let format = Format::from_accept(header(header::ACCEPT));
    let body = state.exposition(format);
    let gzip = header(header::ACCEPT_ENCODING).is_some_and(accepts_gzip);
    if !gzip {
        return respond(StatusCode::OK, format.content_type(), body);
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    let compressed = encoder.write_all(&body).and_then(|()| encoder.finish());
    match compressed {
        Ok(compressed) => {
            let mut response = respond(StatusCode::OK, format.content_type(), compressed);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        Err(_) => respond(StatusCode::OK, format.content_type(), body),
    }
}

/// True when an `Accept-Encoding` value allows gzip (`gzip` without `q=0`).
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut fields = part.split(';').map(str::trim);
        let coding = fields.next().unwrap_or("");
        let refused = fields.any(|f| f.replace(' ', "") == "q=0" || f.replace(' ', "") == "q=0.0");
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("gzip;q=0"));
    }
}
