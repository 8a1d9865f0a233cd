//! TLS served by the binary itself, against real handshakes: protocol versions and cipher
//! suites (checked with `openssl s_client`, so a client willing to talk TLS 1.0 shows that
//! the *server* refuses), HSTS, certificate reload from the files and on SIGHUP (a broken
//! replacement keeps the old certificate), mutual TLS, and the secure default that refuses
//! to serve plain HTTP unless asked to.
//!
//! Certificates come from a throw-away CA made with rcgen per test; the TLS client is
//! rustls over a blocking socket, speaking just enough HTTP/1.1 to read a reply.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{SECURE, Server};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

// ---------------------------------------------------------------------------------------
// Certificates

/// A test CA and the files written for one server.
struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
}

/// A certificate with its key, as written to files.
struct Leaf {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        let pki = Pki {
            dir: tempfile::tempdir().expect("temp dir"),
            ca_der: cert.der().clone(),
            ca: Issuer::new(params, key),
        };
        std::fs::write(pki.path("ca.pem"), cert.pem()).expect("write the CA");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// A server certificate for 127.0.0.1 and localhost.
    fn server_leaf(&self, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server params");
        params.serial_number = Some(SerialNumber::from(serial));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    fn client_leaf(&self, serial: u64) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["client.example.org".into()]).expect("client params");
        params.serial_number = Some(SerialNumber::from(serial));
        params
            .distinguished_name
            .push(DnType::CommonName, "test-client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes `leaf` as `server.pem` / `server.key` (key first, so the pair is complete
    /// when the certificate changes; the server copes with either order).
    fn install(&self, leaf: &Leaf) {
        std::fs::write(self.path("server.key"), &leaf.key_pem).expect("write key");
        std::fs::write(self.path("server.pem"), &leaf.cert_pem).expect("write cert");
    }

    /// Flags serving `server.pem` / `server.key`.
    fn tls_flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.arg("server.pem"),
            "--tls-key".into(),
            self.arg("server.key"),
        ]
    }
}

fn start(flags: &[String]) -> Server {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_with(&flags)
}

// ---------------------------------------------------------------------------------------
// A TLS client

/// What a TLS request saw.
#[derive(Debug)]
struct TlsReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The server's certificate (DER).
    peer: Vec<u8>,
    version: Option<rustls::ProtocolVersion>,
}

impl TlsReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client trusting only `ca`, TLS 1.3 (or 1.2 with `tls12`), with an optional client
/// certificate.
fn client(
    ca: &CertificateDer<'static>,
    identity: Option<&Leaf>,
    tls12: bool,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("trust the test CA");
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::try_from(leaf.key_der.clone()).expect("client key"),
            )
            .expect("client certificate"),
    };
    // Every connection a full handshake: a resumed session would show the certificate of
    // the session it resumes, not the one the server serves now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// `GET path` over TLS to `addr` (SNI `localhost`); `Err` with the TLS or I/O error.
fn https_get(
    addr: &str,
    path: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsReply, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("server name");
    let connection = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/fhir+json\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify, after the whole reply.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let version = tls.conn.protocol_version();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP reply: {}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(TlsReply {
        status,
        headers,
        body,
        peer,
        version,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Polls until a new connection is served `expected`, for up to 20 s.
#[track_caller]
fn wait_for_certificate(server: &Server, config: &Arc<rustls::ClientConfig>, expected: &Leaf) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = https_get(&server.addr, "/health/live", config.clone());
        if let Ok(r) = &reply
            && r.peer == expected.der.as_ref()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served; last: {:?}; logs:\n{}",
            reply.map(|r| r.status),
            server.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------
// openssl s_client

/// Runs `openssl s_client` against `addr` with `args`; returns whether it exited 0 and
/// everything it printed.
fn s_client(addr: &str, ca: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            addr,
            "-servername",
            "localhost",
            "-CAfile",
        ])
        .arg(ca)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client (install the openssl package; .ci/run does)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The handshake failed because the server sent an alert (not because the client gave up).
#[track_caller]
fn assert_server_refused(ok: bool, out: &str, what: &str) {
    assert!(!ok, "{what}: the handshake succeeded:\n{out}");
    assert!(
        out.contains("Cipher is (NONE)") && out.contains("SSL alert number"),
        "{what}: expected the server to refuse with an alert:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn only_tls_12_and_13_with_aead_suites_are_served() {
    let pki = Pki::new("versions CA");
    pki.install(&pki.server_leaf(1));
    let server = start(&pki.tls_flags());
    let ca = pki.path("ca.pem");

    // A client willing to speak TLS 1.0 or 1.1 (its own floor lowered by SECLEVEL=0):
    // the server answers with an alert.
    let (ok, out) = s_client(
        &server.addr,
        &ca,
        &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    assert_server_refused(ok, &out, "TLS 1.0");
    let (ok, out) = s_client(
        &server.addr,
        &ca,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    );
    assert_server_refused(ok, &out, "TLS 1.1");
    // TLS 1.2 with only CBC suites (and no ECDHE in two of them): refused.
    let (ok, out) = s_client(
        &server.addr,
        &ca,
        &[
            "-tls1_2",
            "-cipher",
            "AES128-SHA:AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
        ],
    );
    assert_server_refused(ok, &out, "TLS 1.2 with CBC suites");

    let (ok, out) = s_client(&server.addr, &ca, &["-tls1_2"]);
    assert!(ok, "TLS 1.2:\n{out}");
    assert!(out.contains("New, TLSv1.2, Cipher is ECDHE-"), "{out}");
    assert!(out.contains("GCM") || out.contains("CHACHA20"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let (ok, out) = s_client(&server.addr, &ca, &["-tls1_3"]);
    assert!(ok, "TLS 1.3:\n{out}");
    assert!(out.contains("New, TLSv1.3, Cipher is TLS_"), "{out}");

    // The `listening` line keeps its shape and names the scheme.
    let listening = listening_line(&server);
    let v: serde_json::Value = serde_json::from_str(&listening).expect("JSON log line");
    assert_eq!(v["scheme"], "https", "{v}");
    assert_eq!(v["addr"], server.addr.as_str(), "{v}");
    assert_eq!(v["base"], format!("https://{}/fhir", server.addr), "{v}");
}

#[test]
fn fhir_over_tls_13_with_hsts_and_https_links() {
    let pki = Pki::new("fhir CA");
    let leaf = pki.server_leaf(1);
    pki.install(&leaf);
    let server = start(&pki.tls_flags());
    let reply = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, None, false),
    )
    .expect("GET /fhir/metadata over TLS 1.3");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(reply.peer, leaf.der.as_ref());
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(v["resourceType"], "CapabilityStatement");

    // Links derived from the Host header say https.
    let reply = https_get(
        &server.addr,
        "/fhir/Patient?_count=1",
        client(&pki.ca_der, None, true),
    )
    .expect("search over TLS 1.2");
    assert_eq!(reply.version, Some(rustls::ProtocolVersion::TLSv1_2));
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    let self_link = v["link"][0]["url"].as_str().unwrap_or_default();
    assert!(
        self_link.starts_with("https://localhost/fhir/Patient"),
        "{v}"
    );

    // Plain HTTP to the TLS port gets no FHIR answer.
    let mut tcp = TcpStream::connect(&server.addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("CapabilityStatement"),
        "plain HTTP was served on the TLS port"
    );
}

#[test]
fn the_certificate_is_reloaded_when_its_files_change_and_a_broken_one_is_ignored() {
    let pki = Pki::new("reload CA");
    let first = pki.server_leaf(1);
    pki.install(&first);
    let mut flags = pki.tls_flags();
    flags.extend(["--tls-reload-interval-seconds".into(), "1".into()]);
    let server = start(&flags);
    let config = client(&pki.ca_der, None, false);
    let reply = https_get(&server.addr, "/health/live", config.clone()).expect("first");
    assert_eq!(reply.peer, first.der.as_ref());

    // A new certificate (another serial, another key): served to new connections.
    let second = pki.server_leaf(2);
    assert_ne!(first.der, second.der);
    pki.install(&second);
    wait_for_certificate(&server, &config, &second);
    let reloaded = server.logs_when(|logs| {
        logs.iter()
            .any(|l| l.contains("TLS certificate reloaded") && l.contains(r#""serial":"02""#))
    });
    assert!(
        reloaded
            .iter()
            .any(|l| l.contains("TLS certificate reloaded")),
        "no reload logged:\n{}",
        reloaded.join("\n")
    );

    // A broken replacement: logged, and the second certificate is still served.
    std::fs::write(
        pki.path("server.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .expect("break the certificate");
    let logs = server.logs_when(|logs| {
        logs.iter()
            .any(|l| l.contains("TLS certificate reload failed"))
    });
    assert!(
        logs.iter()
            .any(|l| l.contains("TLS certificate reload failed") && l.contains("server.pem")),
        "a failed reload must be logged, naming the file:\n{}",
        logs.join("\n")
    );
    let reply = https_get(&server.addr, "/health/live", config.clone()).expect("still served");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.peer, second.der.as_ref());

    // A certificate whose key is another's: refused as well.
    let third = pki.server_leaf(3);
    std::fs::write(pki.path("server.pem"), &third.cert_pem).expect("cert without its key");
    let logs = server.logs_when(|logs| {
        logs.iter()
            .filter(|l| l.contains("TLS certificate reload failed"))
            .count()
            >= 2
    });
    assert!(
        logs.iter()
            .filter(|l| l.contains("TLS certificate reload failed"))
            .count()
            >= 2,
        "{}",
        logs.join("\n")
    );
    let reply = https_get(&server.addr, "/health/live", config.clone()).expect("still served");
    assert_eq!(reply.peer, second.der.as_ref());
    // Its key arrives: served.
    std::fs::write(pki.path("server.key"), &third.key_pem).expect("key");
    wait_for_certificate(&server, &config, &third);
}

#[test]
fn sighup_reloads_the_certificate() {
    let pki = Pki::new("sighup CA");
    let first = pki.server_leaf(1);
    pki.install(&first);
    // Polling too rarely to matter here: the signal does it.
    let mut flags = pki.tls_flags();
    flags.extend(["--tls-reload-interval-seconds".into(), "3600".into()]);
    let server = start(&flags);
    let config = client(&pki.ca_der, None, false);
    let second = pki.server_leaf(2);
    pki.install(&second);
    let reply = https_get(&server.addr, "/health/live", config.clone()).expect("before");
    assert_eq!(reply.peer, first.der.as_ref(), "reloaded without a signal");
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_for_certificate(&server, &config, &second);
}

#[test]
fn mutual_tls_required_refuses_clients_without_a_valid_certificate() {
    let pki = Pki::new("client CA");
    pki.install(&pki.server_leaf(1));
    let mut flags = pki.tls_flags();
    flags.extend([
        "--tls-client-ca".into(),
        pki.arg("ca.pem"),
        "--tls-client-auth".into(),
        "required".into(),
    ]);
    let server = start(&flags);

    let refused = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, None, false),
    );
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    // A certificate from another CA: refused too.
    let stranger = Pki::new("another CA").client_leaf(9);
    let refused = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, Some(&stranger), false),
    );
    assert!(refused.is_err(), "served a foreign client certificate");
    // The CA's client: served.
    let me = pki.client_leaf(2);
    let reply = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, Some(&me), false),
    )
    .expect("served with a valid client certificate");
    assert_eq!(reply.status, 200);
    let reply = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, Some(&me), true),
    )
    .expect("TLS 1.2 with a valid client certificate");
    assert_eq!(reply.status, 200);
}

#[test]
fn mutual_tls_optional_serves_clients_without_a_certificate() {
    let pki = Pki::new("optional CA");
    pki.install(&pki.server_leaf(1));
    let mut flags = pki.tls_flags();
    flags.extend(["--tls-client-ca".into(), pki.arg("ca.pem")]);
    let server = start(&flags);
    let reply = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, None, false),
    )
    .expect("no certificate is fine");
    assert_eq!(reply.status, 200);
    let me = pki.client_leaf(2);
    let reply = https_get(
        &server.addr,
        "/fhir/metadata",
        client(&pki.ca_der, Some(&me), false),
    )
    .expect("a valid certificate");
    assert_eq!(reply.status, 200);
    // One that does not verify is refused even when optional.
    let stranger = Pki::new("another CA").client_leaf(9);
    assert!(
        https_get(
            &server.addr,
            "/fhir/metadata",
            client(&pki.ca_der, Some(&stranger), false)
        )
        .is_err()
    );
}

/// Runs `caduceus serve` expecting it to exit at once; returns (success, output).
fn serve_exits(flags: &[&str]) -> (bool, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let mut child = Command::new(common::binary())
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .args(flags)
        .env_remove("CADUCEUS_LOG")
        .env_remove("CADUCEUS_INSECURE_DEV_MODE")
        .env_remove("CADUCEUS_PLAIN_HTTP")
        .env_remove("CADUCEUS_TLS_CERT")
        .env_remove("CADUCEUS_TLS_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start caduceus");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("caduceus serve {flags:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn plain_http_is_refused_unless_asked_for() {
    let (ok, out) = serve_exits(&[]);
    assert!(!ok, "served without TLS flags:\n{out}");
    assert!(
        out.contains("--tls-cert") && out.contains("--tls-key") && out.contains("--plain-http"),
        "the refusal must name the flags:\n{out}"
    );
    // Half a TLS configuration, and a certificate that is not there: refused too.
    let (ok, out) = serve_exits(&["--tls-cert", "/nonexistent/cert.pem"]);
    assert!(!ok && out.contains("--tls-key"), "{out}");
    let (ok, out) = serve_exits(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(!ok && out.contains("/nonexistent/cert.pem"), "{out}");
    // --plain-http and TLS flags contradict each other.
    let (ok, out) = serve_exits(&[
        "--plain-http",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(!ok && out.contains("--plain-http"), "{out}");
}

#[test]
fn plain_http_when_asked_for_says_so() {
    let server = Server::start_with(&[SECURE, "--plain-http"]);
    let listening = listening_line(&server);
    assert!(listening.contains(r#""scheme":"http""#), "{listening}");
    let logs = server.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("--plain-http: serving plain HTTP")),
        "{}",
        logs.join("\n")
    );
}

/// The `listening` log line (the harness learns the address a moment before it keeps the
/// line, so wait for it).
fn listening_line(server: &Server) -> String {
    let is_it = |l: &String| l.contains(r#""message":"listening""#);
    server
        .logs_when(|logs| logs.iter().any(is_it))
        .into_iter()
        .find(is_it)
        .expect("a listening line")
}

/// A client certificate from the client CA whose subject CN is a registered client id
/// authenticates as that client, with its scopes and roles, without any token.
#[test]
fn a_client_certificate_authenticates_a_registered_service() {
    let pki = Pki::new("service CA");
    pki.install(&pki.server_leaf(1));
    let data = pki.path("data");
    let out = Command::new(common::binary())
        .args([
            "clients",
            "add",
            "test-client",
            "--secret-generate",
            "--scope",
            "system/Patient.rs",
            "--role",
            "clinician",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("caduceus clients add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut flags: Vec<String> = vec![SECURE.into()];
    flags.extend(pki.tls_flags());
    flags.extend(["--tls-client-ca".into(), pki.arg("ca.pem")]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_in(&data, &flags);

    let registered = pki.client_leaf(2); // CN test-client
    let reply = https_get(
        &server.addr,
        "/fhir/Patient",
        client(&pki.ca_der, Some(&registered), false),
    )
    .expect("TLS with the service's certificate");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // Its scopes hold: no Encounter.
    let reply = https_get(
        &server.addr,
        "/fhir/Encounter",
        client(&pki.ca_der, Some(&registered), false),
    )
    .expect("TLS");
    assert_eq!(reply.status, 403);
    // No certificate, or one naming no registered client: 401.
    let reply = https_get(
        &server.addr,
        "/fhir/Patient",
        client(&pki.ca_der, None, false),
    )
    .expect("TLS without a certificate (optional mode)");
    assert_eq!(reply.status, 401);
    let mut params =
        CertificateParams::new(vec!["other.example.org".into()]).expect("client params");
    params.serial_number = Some(SerialNumber::from(3u64));
    params
        .distinguished_name
        .push(DnType::CommonName, "unregistered");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let stranger = pki.sign(params);
    let reply = https_get(
        &server.addr,
        "/fhir/Patient",
        client(&pki.ca_der, Some(&stranger), false),
    )
    .expect("TLS with an unregistered service's certificate");
    assert_eq!(reply.status, 401);
}
