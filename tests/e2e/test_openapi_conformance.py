"""The OpenAPI document tells the truth: schemathesis (every check, the stateful phase too) finds
nothing against a real `lienwatch serve`, and the document's promises about errors, methods and
keys hold.

The schemathesis run uses tests/e2e/schemathesis.toml (the key, and the operations whose checks
JSON Schema cannot fully state). Its budget is small for CI: `LIENWATCH_TEST_CONFORMANCE_EXAMPLES`
(examples per operation, default 5) raises it for a deeper run by hand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth import new_key
from tests.support.processes import api_url, start_serve, stop

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
PHASES = "examples,coverage,fuzzing,stateful"


class Served:
    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.auth = {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`lienwatch serve` on SQLite in a temp dir, free ports on 127.0.0.1, a known admin key."""
    key = new_key()
    env = {
        "LIENWATCH_DATA_DIR": str(tmp_path_factory.mktemp("conformance") / "data"),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_ADMIN_API_KEY": key,
    }
    proc, _ = start_serve(env)
    try:
        yield Served(api_url(proc), key)
    finally:
        assert stop(proc, signal.SIGTERM) == 0


@pytest.mark.slow
def test_schemathesis_finds_no_failure_against_serve(served: Served, tmp_path: Path) -> None:
    examples = os.environ.get("LIENWATCH_TEST_CONFORMANCE_EXAMPLES", "5")
    operations = len(
        [
            method
            for item in httpx.get(f"{served.url}/openapi.json").json()["paths"].values()
            for method in item
        ]
    )
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{served.url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            PHASES,
            "--max-examples",
            examples,
            "--workers",
            "1",  # worker threads: Hypothesis's AST parsing is not thread-safe on 3.11
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path),
        ],
        env={**os.environ, "LIENWATCH_TEST_CONFORMANCE_KEY": served.key},
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # A run that tested nothing (a wrong URL, a document failing to load) must not pass.
    assert f"Tested: {operations}" in report, report
    assert "Stateful" in report and "Scenarios:" in report, report
    # The run's key survived it, so every operation was tested with it.
    assert httpx.get(f"{served.url}/api/v1/me", headers=served.auth).status_code == 200


def test_the_document_declares_the_bearer_key_and_the_error_body(served: Served) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["required"]) == {"error", "detail"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert "422" not in operation["responses"], where
            keyed = path.startswith("/api/v1/")
            assert (operation.get("security") == [{"bearer": []}]) is keyed, where
            for status, answer in operation["responses"].items():
                if status.startswith("4") or (status == "503" and keyed):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, where


def test_bad_input_is_answered_with_the_documented_400(served: Served) -> None:
    answer = httpx.get(f"{served.url}/api/v1/devices?limit=0", headers=served.auth)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    assert answer.json()["detail"].startswith("query.limit")
    answer = httpx.get(f"{served.url}/api/v1/devices/12ab", headers=served.auth)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/keys", "GET, POST"),
        ("DELETE", "/api/v1/fences", "GET, POST"),
        ("POST", "/api/v1/devices/013900000001", "GET, PUT"),
        ("OPTIONS", "/api/v1/devices/013900000001/commands", "GET, POST"),
        ("PUT", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_is_a_405_naming_every_allowed_method(
    served: Served, method: str, path: str, allowed: str
) -> None:
    answer = httpx.request(method, f"{served.url}{path}", headers=served.auth)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allowed
    assert answer.json()["error"] == "method_not_allowed"


def test_the_configured_admin_key_cannot_be_deleted(served: Served) -> None:
    """It is stored again at every start: deleting it would not revoke it (and the run above
    depends on it)."""
    answer = httpx.delete(f"{served.url}/api/v1/keys/admin", headers=served.auth)
    assert answer.status_code == 409
    assert answer.json()["error"] == "configured_key"
    assert httpx.get(f"{served.url}/api/v1/me", headers=served.auth).status_code == 200


def test_a_polygon_with_holes_of_different_sizes_is_not_a_500(served: Served) -> None:
    """Found by schemathesis: holes with different point counts crashed the loader (a 500)."""
    outer = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
    triangle = [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]]
    square = [[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 6.0], [5.0, 5.0]]
    body = {
        "type": "Feature",
        "properties": {"id": "holes", "kind": "zone"},
        "geometry": {"type": "Polygon", "coordinates": [outer, triangle, square]},
    }
    answer = httpx.post(f"{served.url}/api/v1/fences", json=body, headers=served.auth)
    assert answer.status_code in (201, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"] == "bad_fence"


def test_an_unknown_path_is_a_json_404(served: Served) -> None:
    answer = httpx.get(f"{served.url}/api/v2/nothing", headers=served.auth)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
