"""Starts the real `caduceus` binary for the Python client suite.

The binary is `$CADUCEUS_BIN` (default `target/debug/caduceus` under the repository root).
Each server listens on a free loopback port (the OS picks it: `--listen 127.0.0.1:0`, and
the address is read from the JSON "listening" log line) over a fresh temporary data folder.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import requests
from fhirclient import client

REPO = Path(__file__).resolve().parents[2]
FHIR_JSON = "application/fhir+json"


def binary() -> str:
    path = Path(os.environ.get("CADUCEUS_BIN", "target/debug/caduceus"))
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file():
        pytest.exit(f"no caduceus binary at {path}: build it or set CADUCEUS_BIN", 2)
    return str(path)


class Server:
    """A running `caduceus serve` on its own data folder."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="caduceus-py-")
        self.logs = []
        self.proc = subprocess.Popen(
            [
                binary(),
                "--log-format",
                "json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                # The client suite tests FHIR, not access control.
                "--insecure-dev-mode",
                "--data-dir",
                os.path.join(self.data, "data"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "CADUCEUS_LOG"},
        )
        ready = threading.Event()
        self.addr = None

        def drain():
            for line in self.proc.stderr:
                self.logs.append(line)
                if self.addr is None:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("message") == "listening":
                        self.addr = rec.get("addr")
                        ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or self.addr is None:
            self.stop()
            raise RuntimeError("caduceus did not start:\n" + "".join(self.logs))
        self.base = f"http://{self.addr}/fhir"
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}/{path}"

    def fhirclient(self):
        """A `fhirclient` client bound to this server (reads the CapabilityStatement)."""
        smart = client.FHIRClient(
            settings={"app_id": "caduceus-tests", "api_base": self.base + "/"}
        )
        return smart

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    """One server shared by the tests that do not count what is stored."""
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def fresh_server():
    """A server of its own, for tests that count history entries."""
    s = Server()
    yield s
    s.stop()
