"""Search as a Python client uses it: `fhirclient`'s FHIRSearch (`Model.where(...)`,
`perform`, `perform_resources`) for plain searches, and `requests` for what it has no
call for (following `next` links, `_include`, `_summary=count`, conditional create).

Expected results are computed here from what the test wrote, never from the server.
"""

import json
import uuid

from fhirclient.models.bundle import Bundle
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient

FHIR_JSON = "application/fhir+json"
JSON_HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def put(server, resource):
    r = server.http.put(
        server.url(f"{resource['resourceType']}/{resource['id']}"),
        data=json.dumps(resource),
        headers=JSON_HEADERS,
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def load(server, tag):
    """Ten patients (family `tag`, born 1960..1978 every two years, alternating gender),
    each with two Observations (a weight of 60 + n kg, and a height)."""
    people = []
    for n in range(10):
        pid = f"{tag}-p{n}"
        gender = "female" if n % 2 == 0 else "male"
        birth = f"{1960 + 2 * n}-05-01"
        put(server, {"resourceType": "Patient", "id": pid, "gender": gender,
                     "birthDate": birth, "name": [{"family": tag, "given": [f"G{n}"]}]})
        put(server, {"resourceType": "Observation", "id": f"{tag}-w{n}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                     "subject": {"reference": f"Patient/{pid}"},
                     "valueQuantity": {"value": 60 + n, "unit": "kg",
                                       "system": "http://unitsofmeasure.org", "code": "kg"}})
        put(server, {"resourceType": "Observation", "id": f"{tag}-h{n}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
                     "subject": {"reference": f"Patient/{pid}"}})
        people.append((pid, gender, birth, 60 + n))
    return people


def test_fhirclient_search_with_prefixes_and_chains(server):
    tag = "Py" + uuid.uuid4().hex[:8]
    people = load(server, tag)
    fs = server.fhirclient().server

    found = list(Patient.where(struct={"family": tag, "gender": "female"}).perform_resources_iter(fs))
    assert sorted(p.id for p in found) == sorted(p for p, g, _, _ in people if g == "female")

    born = list(Patient.where(struct={"family": tag, "birthdate": "ge1970-01-01"}).perform_resources_iter(fs))
    assert sorted(p.id for p in born) == sorted(p for p, _, b, _ in people if b >= "1970")

    heavy = list(Observation.where(
        struct={"code": "http://loinc.org|29463-7", "value-quantity": "gt65|http://unitsofmeasure.org|kg",
                "subject:Patient.family": tag}
    ).perform_resources_iter(fs))
    assert sorted(o.id for o in heavy) == sorted(
        f"{tag}-w{pid.rsplit('p', 1)[1]}" for pid, _, _, w in people if w > 65
    )
    # 66 kg = 66000 g: the same search in grams.
    grams = list(Observation.where(
        struct={"code": "29463-7", "value-quantity": "gt65000|http://unitsofmeasure.org|g",
                "subject:Patient.family": tag}
    ).perform_resources_iter(fs))
    assert sorted(o.id for o in grams) == sorted(o.id for o in heavy)

    has = list(Patient.where(
        struct={"_has:Observation:subject:value-quantity": "lt62", "family": tag}
    ).perform_resources_iter(fs))
    assert sorted(p.id for p in has) == [f"{tag}-p0", f"{tag}-p1"]


def test_paging_include_and_count_with_requests(server):
    tag = "Py" + uuid.uuid4().hex[:8]
    people = load(server, tag)

    # Follow `next` links: every match once, in a stable order, the Bundle parses.
    url = server.url(f"Observation?subject:Patient.family={tag}&_count=3&_sort=-date,_id")
    seen = []
    pages = 0
    while url:
        r = server.http.get(url, headers={"Accept": FHIR_JSON})
        assert r.status_code == 200, r.text
        b = Bundle(r.json())
        assert b.type == "searchset"
        seen += [e.resource.id for e in b.entry or [] if e.search.mode == "match"]
        url = next((l.url for l in b.link or [] if l.relation == "next"), None)
        pages += 1
    assert len(seen) == len(set(seen)) == 2 * len(people)
    assert pages == 7

    r = server.http.get(
        server.url(f"Observation?subject:Patient.family={tag}&code=29463-7&_include=Observation:subject"),
        headers={"Accept": FHIR_JSON},
    )
    b = r.json()
    modes = {}
    for e in b["entry"]:
        modes.setdefault(e["search"]["mode"], set()).add(e["resource"]["id"])
    assert modes["match"] == {f"{tag}-w{n}" for n in range(10)}
    assert modes["include"] == {p for p, _, _, _ in people}

    r = server.http.get(server.url(f"Patient?family={tag}&_summary=count"),
                        headers={"Accept": FHIR_JSON})
    assert r.json()["total"] == 10
    assert "entry" not in r.json()


def test_conditional_create_uses_search(server):
    system, value = "urn:py-mrn", uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}]}
    headers = {**JSON_HEADERS, "If-None-Exist": f"identifier={system}|{value}"}
    first = server.http.post(server.url("Patient"), data=json.dumps(body), headers=headers)
    assert first.status_code == 201, first.text
    again = server.http.post(server.url("Patient"), data=json.dumps(body), headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers["Location"] == first.headers["Location"]
    r = server.http.get(server.url(f"Patient?identifier={system}|{value}&_total=accurate"),
                        headers={"Accept": FHIR_JSON})
    assert r.json()["total"] == 1
