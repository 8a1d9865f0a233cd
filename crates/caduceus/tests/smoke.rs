//! The smallest end-to-end check: the binary starts, answers `/metadata` and the health
//! probes, and stops cleanly on SIGTERM.

mod common;

use common::Server;

#[test]
fn starts_answers_and_stops_on_sigterm() {
    let server = Server::start();
    let meta = server.get("metadata");
    meta.expect(200);
    let v = meta.json();
    assert_eq!(v["resourceType"], "CapabilityStatement");
    assert_eq!(v["fhirVersion"], "4.0.1");
    server
        .request(
            "GET",
            &format!("http://{}/health/live", server.addr),
            &[],
            None,
        )
        .expect(200);
    server
        .request(
            "GET",
            &format!("http://{}/health/ready", server.addr),
            &[],
            None,
        )
        .expect(200);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}
