//! HTTP hardening, as tower layers: security headers, CORS, a per-request timeout, and
//! per-client rate limits.
//!
//! - Security headers on every response (errors, 429s and CORS preflights included):
//!   `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy:
//!   no-referrer`, `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`
//!   (the API serves JSON, never a page), `Strict-Transport-Security` when served over TLS or
//!   told so, and `Cache-Control: no-store` on the answer to a request that carried
//!   `Authorization` (unless the handler chose a `Cache-Control`), so no shared cache keeps
//!   what one client was allowed to read.
//! - CORS (tower-http's `CorsLayer`) only for the configured origins; none by default.
//! - A per-request timeout: 503 with an OperationOutcome (`timeout`). A write that already
//!   reached the store may still complete after the client was told it timed out.
//! - Rate limits: a token bucket per client, keyed by [`RateLimitKey`] (put into the
//!   request by authentication) or else by the peer's IP address (an IPv6 peer by its /64).
//!   Limits are per process: N replicas allow N times the rate.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use caduceus_model::{Issue, IssueCode, OperationOutcome};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::negotiate::Output;
use crate::response::outcome_response;

/// The client a request is rate-limited as, when it is known: authentication inserts it
/// into the request's extensions (e.g. the client id of a token, or a client
/// certificate's fingerprint). Requests without one are limited by the peer's IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateLimitKey(pub String);

/// A token bucket: `per_second` requests a second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: u32,
    /// Bucket size: the requests a client may make at once after being idle.
    pub burst: u32,
}

// ---------------------------------------------------------------------------------------
// Security headers

const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000; includeSubDomains");
const CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");

/// Adds the security headers (see the module doc) to the response of `request`.
pub(crate) async fn security_headers(request: Request, next: Next, hsts: bool) -> Response {
    let authorized = request.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ];
    for (name, value) in set {
        headers.entry(name).or_insert(value);
    }
    if hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    if authorized {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

// ---------------------------------------------------------------------------------------
// CORS

/// Request headers a browser client may send.
const CORS_REQUEST_HEADERS: [HeaderName; 9] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::IF_MATCH,
    HeaderName::from_static("if-none-exist"),
    header::IF_NONE_MATCH,
    HeaderName::from_static("prefer"),
    HeaderName::from_static("x-request-id"),
    header::IF_MODIFIED_SINCE,
];

/// Response headers a browser client may read.
const CORS_EXPOSED_HEADERS: [HeaderName; 5] = [
    header::ETAG,
    header::LOCATION,
    header::CONTENT_LOCATION,
    header::LAST_MODIFIED,
    HeaderName::from_static("x-request-id"),
];

/// CORS for exactly these origins (`https://app.example.org`); `None` when there are none
/// (no CORS headers at all). Origins that are not valid header values are skipped.
pub(crate) fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o.trim_end_matches('/')) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!("a CORS origin is not a valid header value; ignored");
                None
            }
        })
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(CORS_REQUEST_HEADERS)
            .expose_headers(CORS_EXPOSED_HEADERS)
            .max_age(Duration::from_secs(600)),
    )
}

// ---------------------------------------------------------------------------------------
// Request timeout

/// Runs the request for at most `limit`; past it, 503 with a `timeout` OperationOutcome.
pub(crate) async fn request_timeout(request: Request, next: Next, limit: Duration) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs_f64(), "request timed out");
            let outcome = OperationOutcome::single(Issue::error(
                IssueCode::Timeout,
                format!(
                    "the request took longer than the server's limit of {} seconds; a write \
                     may still have been applied",
                    limit.as_secs_f64()
                ),
            ));
            let mut response =
                outcome_response(StatusCode::SERVICE_UNAVAILABLE, &outcome, Output::default());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, crate::response::RETRY_AFTER_SECONDS);
            response
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rate limits

/// Buckets are spread over shards, each behind its own lock.
const SHARDS: usize = 16;
/// At most this many clients tracked per shard (a million in all, some 100 MB at worst).
/// Past it, a new client is let through untracked until idle buckets are swept: an attack
/// from a million addresses must not lock every client out.
const MAX_KEYS_PER_SHARD: usize = 65_536;
/// How often a shard drops its idle buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Token buckets per client. A bucket untouched for as long as it takes to refill is full,
/// exactly like a new one, so dropping it loses nothing: memory holds only the clients
/// active within the last `burst / per_second` seconds.
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// Time to refill an empty bucket; idle longer, a bucket is dropped.
    idle_after: Duration,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

struct Shard {
    buckets: HashMap<String, Bucket>,
    last_sweep: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> RateLimiter {
        let per_second = f64::from(limit.per_second.max(1));
        let burst = f64::from(limit.burst.max(1));
        let now = Instant::now();
        RateLimiter {
            per_second,
            burst,
            idle_after: Duration::from_secs_f64(burst / per_second).max(Duration::from_secs(1)),
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        last_sweep: now,
                    })
                })
                .collect(),
        }
    }

    /// Takes a token for `key`; `Err(seconds)` to wait when the bucket is empty.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut shard = self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since_sweep = now.saturating_duration_since(shard.last_sweep);
        let full = shard.buckets.len() >= MAX_KEYS_PER_SHARD;
        if since_sweep >= SWEEP_EVERY || (full && since_sweep >= Duration::from_secs(1)) {
            let idle_after = self.idle_after;
            shard
                .buckets
                .retain(|_, b| now.saturating_duration_since(b.at) < idle_after);
            shard.last_sweep = now;
        }
        if let Some(bucket) = shard.buckets.get_mut(key) {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
            bucket.at = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return Ok(());
            }
            let wait = ((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0);
            return Err(wait as u64);
        }
        if shard.buckets.len() < MAX_KEYS_PER_SHARD {
            shard.buckets.insert(
                key.to_owned(),
                Bucket {
                    tokens: self.burst - 1.0,
                    at: now,
                },
            );
        }
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.buckets.len()))
            .sum()
    }
}

/// Who a request is limited as: the authenticated client, else the peer address.
fn client_key(request: &Request) -> String {
    if let Some(RateLimitKey(key)) = request.extensions().get::<RateLimitKey>() {
        return format!("client:{key}");
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => match peer.ip().to_canonical() {
            IpAddr::V4(ip) => format!("ip:{ip}"),
            // One host has a whole /64 to draw addresses from.
            IpAddr::V6(ip) => {
                let s = ip.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

/// The rate-limit layer. It must run *after* authentication (inside it), so that the
/// [`RateLimitKey`] authentication inserts is there to key on; `layers::wrap` applies it
/// innermost of the cross-cutting layers. Health probes are not limited.
pub(crate) fn rate_limit_layer(limit: RateLimit) -> RateLimitLayer {
    RateLimitLayer {
        limiter: Arc::new(RateLimiter::new(limit)),
        limit,
    }
}

/// See [`rate_limit_layer`].
#[derive(Clone)]
pub(crate) struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
    limit: RateLimit,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            limit: self.limit,
        }
    }
}

/// See [`rate_limit_layer`].
#[derive(Clone)]
pub(crate) struct RateLimitService<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
    limit: RateLimit,
}

impl<S> Service<Request> for RateLimitService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !request.uri().path().starts_with("/health/") {
            let key = client_key(&request);
            if let Err(wait) = self.limiter.check(&key, Instant::now()) {
                let response = throttled(self.limit, wait);
                return Box::pin(std::future::ready(Ok(response)));
            }
        }
        Box::pin(self.inner.call(request))
    }
}

/// 429 with `Retry-After` and a `throttled` OperationOutcome.
fn throttled(limit: RateLimit, wait_seconds: u64) -> Response {
    let outcome = OperationOutcome::single(Issue::error(
        IssueCode::Throttled,
        format!(
            "too many requests from this client: the limit is {} a second (bursts of {}); \
             retry after {wait_seconds} seconds",
            limit.per_second, limit.burst
        ),
    ));
    let mut response = outcome_response(StatusCode::TOO_MANY_REQUESTS, &outcome, Output::default());
    if let Ok(value) = HeaderValue::from_str(&wait_seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("a", t0), Ok(()));
        }
        assert_eq!(limiter.check("a", t0), Err(1));
        // Another client has its own bucket.
        assert_eq!(limiter.check("b", t0), Ok(()));
        // Half a second at 2/s is one token.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limiter.check("a", t1), Ok(()));
        assert_eq!(limiter.check("a", t1), Err(1));
        // Never more than the burst, however long the wait.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check("a", t2), Ok(()));
        }
        assert!(limiter.check("a", t2).is_err());
    }

    #[test]
    fn idle_buckets_are_swept() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 10,
        });
        let t0 = Instant::now();
        for i in 0..1000 {
            limiter.check(&format!("ip:{i}"), t0).unwrap();
        }
        assert_eq!(limiter.tracked(), 1000);
        // Past the sweep interval every bucket is idle (full again) and goes, shard by
        // shard as each is next used.
        let later = t0 + SWEEP_EVERY + Duration::from_secs(1);
        // New keys until every shard has been used once (keys land on shards by a random
        // hash, so how many that takes varies from run to run).
        let mut used = std::collections::HashSet::new();
        let mut added = 0;
        while used.len() < SHARDS {
            let key = format!("new:{added}");
            used.insert((limiter.hasher.hash_one(&key) as usize) % SHARDS);
            limiter.check(&key, later).unwrap();
            added += 1;
        }
        assert_eq!(limiter.tracked(), added);
    }

    /// The routes wrapped in every layer, as `app` does, with a handler that takes 5 s.
    fn wrapped(config: crate::ServerConfig) -> axum::Router {
        let routes = axum::Router::new()
            .route(
                "/fhir/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "done"
                }),
            )
            .route("/fhir/fast", axum::routing::get(|| async { "ok" }))
            .route("/health/live", axum::routing::get(|| async { "ok" }));
        crate::layers::wrap(routes, &config, None)
    }

    async fn call(router: &axum::Router, path: &str, authorized: bool) -> Response {
        use tower::ServiceExt;
        let mut request = Request::builder().uri(path);
        if authorized {
            request = request.header("authorization", "Bearer x");
        }
        router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn outcome_code(response: Response) -> String {
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
        v["issue"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn a_slow_request_is_answered_503_timeout() {
        let router = wrapped(crate::ServerConfig {
            request_timeout: Duration::from_millis(100),
            ..crate::ServerConfig::default()
        });
        let started = Instant::now();
        let response = call(&router, "/fhir/slow", false).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        // The layers outside the timeout still apply.
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(outcome_code(response).await, "timeout");
        assert_eq!(call(&router, "/fhir/fast", false).await.status(), 200);
    }

    #[tokio::test]
    async fn security_headers_and_no_store_for_authorized_requests() {
        let router = wrapped(crate::ServerConfig {
            hsts: true,
            ..crate::ServerConfig::default()
        });
        let plain = call(&router, "/fhir/fast", false).await;
        let h = plain.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(
            h["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert!(!h.contains_key("cache-control"));
        let authorized = call(&router, "/fhir/fast", true).await;
        assert_eq!(authorized.headers()["cache-control"], "no-store");
        // Unmatched routes too.
        let missing = call(&router, "/nowhere", false).await;
        assert_eq!(missing.headers()["x-frame-options"], "DENY");
        let no_hsts = wrapped(crate::ServerConfig::default());
        let h = call(&no_hsts, "/fhir/fast", false).await;
        assert!(!h.headers().contains_key("strict-transport-security"));
    }

    #[tokio::test]
    async fn over_the_limit_is_429_throttled_but_health_is_not_limited() {
        let router = wrapped(crate::ServerConfig {
            rate_limit: Some(RateLimit {
                per_second: 1,
                burst: 2,
            }),
            ..crate::ServerConfig::default()
        });
        assert_eq!(call(&router, "/fhir/fast", false).await.status(), 200);
        assert_eq!(call(&router, "/fhir/fast", false).await.status(), 200);
        let throttled = call(&router, "/fhir/fast", false).await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "1");
        assert_eq!(outcome_code(throttled).await, "throttled");
        for _ in 0..5 {
            assert_eq!(call(&router, "/health/live", false).await.status(), 200);
        }
    }

    #[test]
    fn ipv6_peers_share_a_bucket_per_64() {
        let request = |ip: &str| {
            let mut r = Request::new(axum::body::Body::empty());
            let addr: SocketAddr = format!("[{ip}]:443").parse().unwrap();
            r.extensions_mut().insert(ConnectInfo(addr));
            r
        };
        assert_eq!(
            client_key(&request("2001:db8:1:2::1")),
            client_key(&request("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(&request("2001:db8:1:2::1")),
            client_key(&request("2001:db8:1:3::1"))
        );
        // An IPv4 peer seen through an IPv6 socket is its IPv4 address.
        assert_eq!(client_key(&request("::ffff:10.0.0.1")), "ip:10.0.0.1");
        let mut r = request("::1");
        r.extensions_mut()
            .insert(RateLimitKey("client-7".to_owned()));
        assert_eq!(client_key(&r), "client:client-7");
    }
}
