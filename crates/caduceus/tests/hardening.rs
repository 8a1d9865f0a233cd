//! HTTP hardening against the real server: security headers, CORS, rate limits, the JSON
//! depth limit and the header read timeout (slowloris). The request timeout has no natural
//! slow path to trigger here; caduceus-server's unit tests drive it with a slow handler.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;

#[test]
fn security_headers_on_every_response() {
    let server = Server::start();
    for reply in [
        server.get("metadata"),
        server.get("Patient/does-not-exist"),
        server.request("GET", &server.root_url("health/live"), &[], None),
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        // Plain HTTP without --hsts: no HSTS (a browser ignores it over http anyway).
        assert_eq!(reply.header("strict-transport-security"), None);
        assert_eq!(reply.header("cache-control"), None);
    }
    // What a request with credentials gets is never stored by a shared cache.
    let reply = server.request(
        "GET",
        "metadata",
        &[("authorization", "Bearer not-checked-in-dev-mode")],
        None,
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

#[test]
fn hsts_behind_a_tls_terminating_gateway() {
    let server = Server::start_with(&["--hsts"]);
    assert_eq!(
        server.get("metadata").header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
}

#[test]
fn cors_only_for_configured_origins() {
    let server = Server::start_with(&["--cors-origin", "https://app.example.org"]);
    let preflight = |origin: &str| {
        server.request(
            "OPTIONS",
            "Patient",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type,if-none-exist",
                ),
            ],
            None,
        )
    };
    let allowed = preflight("https://app.example.org");
    assert!(allowed.status < 300, "preflight: {}", allowed.status);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{m} not allowed: {methods}");
    }
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "if-none-exist", "prefer"] {
        assert!(headers.contains(h), "{h} not allowed: {headers}");
    }
    // Security headers on the preflight too.
    assert_eq!(allowed.header("x-content-type-options"), Some("nosniff"));

    let other = preflight("https://evil.example.com");
    assert_eq!(other.header("access-control-allow-origin"), None);

    // A simple request from the allowed origin may read ETag and Location.
    let reply = server.request(
        "GET",
        "metadata",
        &[("origin", "https://app.example.org")],
        None,
    );
    reply.expect(200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for h in [
        "etag",
        "location",
        "content-location",
        "last-modified",
        "x-request-id",
    ] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }

    // No --cors-origin: no CORS headers at all.
    let plain = Server::start();
    let reply = plain.request(
        "OPTIONS",
        "Patient",
        &[
            ("origin", "https://app.example.org"),
            ("access-control-request-method", "POST"),
        ],
        None,
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[test]
fn a_burst_over_the_limit_is_429_with_retry_after() {
    let server = Server::start_with(&["--rate-limit-per-second", "5", "--rate-limit-burst", "5"]);
    let statuses: Vec<_> = (0..20)
        .map(|_| server.get("Patient/does-not-exist"))
        .collect();
    assert!(
        statuses[..5].iter().all(|r| r.status == 404),
        "the burst must be served: {:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let throttled = statuses
        .iter()
        .find(|r| r.status == 429)
        .expect("a 429 after the burst");
    let outcome = throttled.expect_error(429);
    assert_eq!(outcome["issue"][0]["code"], "throttled", "{outcome}");
    let retry: u64 = throttled
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // Health probes are not limited.
    let live = server.request("GET", &server.root_url("health/live"), &[], None);
    live.expect(200);
    // The bucket refills.
    std::thread::sleep(Duration::from_millis(1500));
    server.get("Patient/does-not-exist").expect(404);
}

#[test]
fn json_nested_too_deep_is_a_400_and_the_server_lives_on() {
    let server = Server::start();
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut deep_object = String::from(r#"{"resourceType":"Patient","extension":"#);
    deep_object.push_str(&r#"{"a":"#.repeat(200));
    deep_object.push('1');
    deep_object.push_str(&"}".repeat(201));
    for (path, body) in [
        ("Patient", deep_array.as_bytes()),
        ("Patient", deep_object.as_bytes()),
        ("", deep_array.as_bytes()),
    ] {
        let reply = server.send_raw("POST", path, "application/fhir+json", body);
        let outcome = reply.expect_error(400);
        let text = outcome.to_string();
        assert!(
            text.contains("100 levels"),
            "the outcome must name the limit: {text}"
        );
    }
    // Nesting inside strings does not count.
    let patient = json!({"resourceType": "Patient", "name": [{"text": "[".repeat(500)}]});
    server.post("Patient", &patient).expect(201);
    server.get("metadata").expect(200);
}

#[test]
fn a_client_that_trickles_its_headers_is_disconnected() {
    let server = Server::start_with(&["--header-read-timeout-seconds", "1"]);
    let mut tcp = TcpStream::connect(&server.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\n")
        .expect("part of a request head");
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "the connection stayed open {waited:?}"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("CapabilityStatement"),
        "an incomplete request was answered"
    );
    // Others are served.
    server.get("metadata").expect(200);
}
