"""A real FHIR client against `caduceus serve`: the `fhirclient` models and server class
(SMART on FHIR's Python client, generated from the R4 4.0.1 definitions) for what it
covers (CapabilityStatement, create, read, vread by path, update, delete, Bundle parsing),
and plain `requests` for what it has no call for (JSON Patch, If-Match, history paging
links, batch/transaction posting with statuses, $validate, status codes such as 410).
"""

import json
import re

import pytest
import requests
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.codeableconcept import CodeableConcept
from fhirclient.models.fhirreference import FHIRReference
from fhirclient.models.humanname import HumanName
from fhirclient.models.observation import Observation
from fhirclient.models.operationoutcome import OperationOutcome
from fhirclient.models.patient import Patient
from fhirclient.models.quantity import Quantity

FHIR_JSON = "application/fhir+json"
JSON_HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def new_patient(family="Chalmers", given="Peter"):
    p = Patient()
    name = HumanName()
    name.family = family
    name.given = [given]
    p.name = [name]
    p.gender = "male"
    p.birthDate = None
    p.active = True
    return p


def etag_version(response) -> str:
    tag = response.headers["ETag"]
    m = re.fullmatch(r'W/"([^"]+)"', tag)
    assert m, f"ETag is not a weak version tag: {tag}"
    return m.group(1)


def post_json(server, path, body, **headers):
    return server.http.post(
        server.url(path), data=json.dumps(body), headers={**JSON_HEADERS, **headers}
    )


def put_json(server, path, body, **headers):
    return server.http.put(
        server.url(path), data=json.dumps(body), headers={**JSON_HEADERS, **headers}
    )


def outcome(response) -> OperationOutcome:
    assert response.headers["Content-Type"].startswith(FHIR_JSON), response.headers
    return OperationOutcome(response.json())


# --- /metadata -------------------------------------------------------------------------


def test_metadata_parses_as_a_capability_statement(server):
    smart = server.fhirclient()
    smart.server.get_capability(force=True)
    cap = smart.server.capabilityStatement
    assert isinstance(cap, CapabilityStatement)
    assert cap.fhirVersion == "4.0.1"
    assert cap.kind == "instance"
    assert "json" in " ".join(cap.format)
    rest = cap.rest[0]
    assert rest.mode == "server"
    patient = next(r for r in rest.resource if r.type == "Patient")
    interactions = {i.code for i in patient.interaction}
    for needed in ("read", "vread", "update", "patch", "delete", "history-instance",
                   "history-type", "create"):
        assert needed in interactions, (needed, interactions)
    system = {i.code for i in rest.interaction or []}
    assert {"transaction", "batch", "history-system"} <= system, system

    raw = server.http.get(server.url("metadata"), headers={"Accept": FHIR_JSON})
    assert raw.status_code == 200
    assert raw.headers["Content-Type"].startswith(FHIR_JSON)


# --- create, read, vread, update, delete ----------------------------------------------


def test_create_read_vread_update_with_fhirclient(server):
    smart = server.fhirclient()
    fs = smart.server

    created = new_patient().create(fs)
    assert created is not None, "create returned no body (Prefer return=representation)"
    pid = created["id"]
    assert created["meta"]["versionId"] == "1"
    assert "lastUpdated" in created["meta"]

    p = Patient.read(pid, fs)
    assert p.id == pid
    assert p.name[0].family == "Chalmers"
    assert p.meta.versionId == "1"

    p.name[0].family = "Chalmers-Smith"
    p.gender = "other"
    updated = p.update()
    assert updated["meta"]["versionId"] == "2"

    now = Patient.read(pid, fs)
    assert now.name[0].family == "Chalmers-Smith"
    assert now.meta.versionId == "2"

    v1 = Patient.read_from(f"Patient/{pid}/_history/1", fs)
    assert v1.name[0].family == "Chalmers"
    assert v1.meta.versionId == "1"
    v2 = Patient.read_from(f"Patient/{pid}/_history/2", fs)
    assert v2.gender == "other"

    # The HTTP surface a client relies on, with plain requests.
    r = server.http.get(server.url(f"Patient/{pid}"), headers={"Accept": FHIR_JSON})
    assert r.status_code == 200
    assert etag_version(r) == "2"
    assert "Last-Modified" in r.headers
    missing = server.http.get(server.url(f"Patient/{pid}/_history/9"))
    assert missing.status_code == 404
    assert outcome(missing).issue[0].severity == "error"


def test_create_observation_keeps_decimals_and_references(server):
    fs = server.fhirclient().server
    pid = new_patient("Obs", "Subject").create(fs)["id"]
    o = Observation()
    o.status = "final"
    code = CodeableConcept()
    code.text = "body weight"
    o.code = code
    subject = FHIRReference()
    subject.reference = f"Patient/{pid}"
    o.subject = subject
    q = Quantity()
    q.value = 72.5
    q.unit = "kg"
    q.system = "http://unitsofmeasure.org"
    q.code = "kg"
    o.valueQuantity = q
    oid = o.create(fs)["id"]

    back = Observation.read(oid, fs)
    assert back.subject.reference == f"Patient/{pid}"
    assert back.valueQuantity.value == 72.5

    # Decimals are kept as written, trailing zeros included (the JSON text, not a float).
    # (json.dumps would write 5.1, so the body is written as text.)
    text = (
        '{"resourceType":"Observation","status":"final","code":{"text":"glucose"},'
        '"valueQuantity":{"value":5.10,"unit":"mmol/L"}}'
    )
    r = server.http.post(server.url("Observation"), data=text, headers=JSON_HEADERS)
    assert r.status_code == 201, r.text
    got = server.http.get(server.url(f"Observation/{r.json()['id']}")).text
    assert '"value":5.10' in got.replace(" ", ""), got


def test_delete_then_read_is_gone(server):
    fs = server.fhirclient().server
    p = Patient.read(new_patient("Gone").create(fs)["id"], fs)
    p.delete()
    r = server.http.get(server.url(f"Patient/{p.id}"))
    assert r.status_code == 410, r.text
    assert outcome(r).issue[0].severity == "error"
    with pytest.raises(requests.HTTPError) as err:
        Patient.read(p.id, fs)
    assert err.value.response.status_code == 410
    # The versions before the deletion stay readable.
    assert server.http.get(server.url(f"Patient/{p.id}/_history/1")).status_code == 200
    # Deleting again is not an error.
    again = server.http.delete(server.url(f"Patient/{p.id}"))
    assert again.status_code in (200, 204), again.text


# --- PATCH -----------------------------------------------------------------------------


def test_json_patch(server):
    pid = post_json(server, "Patient", {"resourceType": "Patient", "active": True}).json()["id"]
    patch = [
        {"op": "test", "path": "/active", "value": True},
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/name", "value": [{"family": "Patched"}]},
    ]
    r = server.http.patch(
        server.url(f"Patient/{pid}"),
        data=json.dumps(patch),
        headers={"Content-Type": "application/json-patch+json", "Accept": FHIR_JSON},
    )
    assert r.status_code == 200, r.text
    assert etag_version(r) == "2"
    p = Patient(server.http.get(server.url(f"Patient/{pid}")).json())
    assert p.active is False
    assert p.name[0].family == "Patched"

    # A failing `test` op changes nothing.
    failing = [{"op": "test", "path": "/active", "value": True},
               {"op": "remove", "path": "/name"}]
    r = server.http.patch(
        server.url(f"Patient/{pid}"),
        data=json.dumps(failing),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code in (409, 422), r.text
    outcome(r)
    # A patch that makes the resource invalid is refused.
    invalid = [{"op": "replace", "path": "/gender", "value": "not-a-gender"}]
    r = server.http.patch(
        server.url(f"Patient/{pid}"),
        data=json.dumps(invalid),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 422, r.text
    assert etag_version(server.http.get(server.url(f"Patient/{pid}"))) == "2"


# --- If-Match --------------------------------------------------------------------------


def test_if_match_guards_update_patch_and_delete(server):
    r = post_json(server, "Patient", {"resourceType": "Patient", "active": True})
    pid = r.json()["id"]
    body = {"resourceType": "Patient", "id": pid, "active": False}

    ok = put_json(server, f"Patient/{pid}", body, **{"If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    assert etag_version(ok) == "2"

    stale = put_json(server, f"Patient/{pid}", body, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412, stale.text
    assert outcome(stale).issue[0].severity == "error"

    stale_patch = server.http.patch(
        server.url(f"Patient/{pid}"),
        data=json.dumps([{"op": "replace", "path": "/active", "value": True}]),
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert stale_patch.status_code == 412, stale_patch.text

    stale_delete = server.http.delete(server.url(f"Patient/{pid}"), headers={"If-Match": 'W/"1"'})
    assert stale_delete.status_code == 412, stale_delete.text

    current = server.http.get(server.url(f"Patient/{pid}"))
    assert current.status_code == 200
    assert etag_version(current) == "2"
    assert current.json()["active"] is False


# --- history ---------------------------------------------------------------------------


def follow_history(server, url):
    """Every page of a history Bundle, parsed by fhirclient, following `next` links."""
    pages = []
    while url:
        r = server.http.get(server.url(url), headers={"Accept": FHIR_JSON})
        assert r.status_code == 200, r.text
        b = Bundle(r.json())
        assert b.type == "history"
        pages.append(b)
        url = next((link.url for link in b.link or [] if link.relation == "next"), None)
    return pages


def test_history_instance_type_and_system_with_paging(fresh_server):
    server = fresh_server
    fs = server.fhirclient().server
    pid = new_patient("History").create(fs)["id"]
    for i in range(4):
        p = Patient.read(pid, fs)
        p.name[0].given = [f"v{i + 2}"]
        p.update()
    others = [new_patient("Other", str(i)).create(fs)["id"] for i in range(5)]
    obs = post_json(server, "Observation", {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": f"Patient/{pid}"},
    }).json()["id"]
    server.http.delete(server.url(f"Patient/{others[0]}"))

    # Instance: 5 versions, newest first, 2 per page.
    pages = follow_history(server, f"Patient/{pid}/_history?_count=2")
    assert [len(p.entry or []) for p in pages] == [2, 2, 1]
    versions = [e.resource.meta.versionId for p in pages for e in p.entry]
    assert versions == ["5", "4", "3", "2", "1"]
    assert all(isinstance(e.resource, Patient) for p in pages for e in p.entry)
    assert pages[0].entry[0].request.method == "PUT"
    assert pages[-1].entry[-1].request.method == "POST"

    # Type: 5 + 5 creates + 1 delete = 11 Patient history entries.
    pages = follow_history(server, "Patient/_history?_count=3")
    entries = [e for p in pages for e in p.entry]
    assert len(entries) == 11
    assert len(pages) == 4
    deleted = [e for e in entries if e.request.method == "DELETE"]
    assert len(deleted) == 1 and deleted[0].resource is None
    assert deleted[0].request.url == f"Patient/{others[0]}"

    # System: every type, 12 entries, no entry twice across pages.
    pages = follow_history(server, "_history?_count=5")
    entries = [e for p in pages for e in p.entry]
    assert len(entries) == 12
    keys = [(e.fullUrl, e.response.etag) for e in entries]
    assert len(set(keys)) == len(keys)
    assert any(e.resource is not None and e.resource.resource_type == "Observation"
               and e.resource.id == obs for e in entries)


# --- batch and transaction -------------------------------------------------------------


def test_batch_entries_succeed_or_fail_on_their_own(server):
    existing = post_json(server, "Patient", {"resourceType": "Patient"}).json()["id"]
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {"resourceType": "Patient", "active": True},
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{existing}"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"resource": {"resourceType": "Patient", "gender": "not-a-gender"},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "batch-put"},
             "request": {"method": "PUT", "url": "Patient/batch-put"}},
        ],
    }
    # fhirclient posts batch and transaction Bundles to its base URL, which ends in "/".
    b = Bundle(Bundle(batch).create(server.fhirclient().server))
    assert b.type == "batch-response"
    statuses = [e.response.status.split()[0] for e in b.entry]
    assert statuses[0] == "201"
    assert statuses[1] == "200"
    assert b.entry[1].resource.id == existing
    assert statuses[2] == "404"
    assert statuses[3] in ("400", "422")
    assert b.entry[3].response.outcome is not None
    assert statuses[4] in ("200", "201")
    assert server.http.get(server.url("Patient/batch-put")).status_code == 200


def test_transaction_resolves_references_and_is_all_or_nothing(server):
    pat = "urn:uuid:0b6a3b8e-1f0e-4a5e-9a59-000000000001"
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": pat,
             "resource": {"resourceType": "Patient", "name": [{"family": "Tx"}]},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final",
                          "code": {"text": "pulse"},
                          "valueQuantity": {"value": 61, "unit": "/min"},
                          "subject": {"reference": pat}},
             "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    b = Bundle(Bundle(tx).create(server.fhirclient().server))
    assert b.type == "transaction-response"
    assert [e.response.status.split()[0] for e in b.entry] == ["201", "201"]
    pid = b.entry[0].response.location.split("/")[1]
    oid = b.entry[1].response.location.split("/")[1]
    fs = server.fhirclient().server
    assert Observation.read(oid, fs).subject.reference == f"Patient/{pid}"

    # One invalid entry: nothing of the transaction is stored.
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "tx-never"},
             "request": {"method": "PUT", "url": "Patient/tx-never"}},
            {"resource": {"resourceType": "Observation", "status": "not-a-status",
                          "code": {"text": "x"}},
             "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    r = post_json(server, server.base, bad)
    assert r.status_code in (400, 422), r.text
    assert outcome(r).issue[0].severity == "error"
    assert server.http.get(server.url("Patient/tx-never")).status_code == 404


# --- $validate -------------------------------------------------------------------------


def test_validate_reports_issues_and_stores_nothing(server):
    good = {"resourceType": "Patient", "id": "validate-only", "gender": "female"}
    r = post_json(server, "Patient/$validate", good)
    assert r.status_code == 200, r.text
    oo = outcome(r)
    assert not [i for i in oo.issue or [] if i.severity in ("error", "fatal")]

    bad = {"resourceType": "Patient", "gender": "unknown-code", "birthDate": "1974-13-45"}
    r = post_json(server, "Patient/$validate", bad)
    assert r.status_code == 200, r.text
    errors = [i for i in outcome(r).issue if i.severity == "error"]
    paths = {e for i in errors for e in (i.expression or [])}
    assert "Patient.gender" in paths, paths
    assert "Patient.birthDate" in paths, paths

    params = {"resourceType": "Parameters",
              "parameter": [{"name": "resource", "resource": bad}]}
    r = post_json(server, "Patient/$validate", params)
    assert r.status_code == 200, r.text
    assert any(i.severity == "error" for i in outcome(r).issue)

    assert server.http.get(server.url("Patient/validate-only")).status_code == 404
