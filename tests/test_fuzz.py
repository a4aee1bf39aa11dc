"""The scheduler API under schemathesis: generated requests against the app in process (ASGI),
every endpoint, with valid tokens and with none.  No answer may be a 5xx, and every answer must
match the OpenAPI document (status code, content type, body schema).

The app's instance client runs on an ``httpx.MockTransport`` (the fakes of ``test_api``), so no
generated registration reaches a socket.  ``make fuzz`` runs the schemathesis command line with
more cases against a real server on loopback.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import given as hypothesis_given
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import FakeInstances, make_service

from scheduler.live import create_app

API, ADMIN = "fuzz-api", "fuzz-admin"


def no_server_error(ctx, response, case):
    """Any 5xx fails, except the contract's own 503 of /queue/submit (no instance serves the model)."""
    documented = response.status_code == 503 and case.operation.path == "/queue/submit"
    assert response.status_code < 500 or documented, f"{response.status_code}: {response.text[:300]}"


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CASES_PER_OPERATION = 58  # 9 operations reach it: about 525 cases per run, 1,050 in all


def _schema():
    fakes = FakeInstances()
    fakes.add(8100)
    fakes.add(8101, model="other")
    service = make_service(fakes, api_token=API, admin_token=ADMIN, max_body_bytes=64 * 1024)
    app = create_app(service)
    return schemathesis.openapi.from_asgi("/openapi.json", app), fakes


@pytest.mark.parametrize("token", [ADMIN, None], ids=["with-token", "without-token"])
def test_generated_requests_never_get_a_5xx_or_an_answer_off_the_schema(token):
    schema, fakes = _schema()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    ran: dict[str, int] = {}
    for op in operations:

        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis_given(case=op.as_strategy())
        def one(case):
            case.call_and_validate(headers=headers, checks=CHECKS)
            ran[case.operation.label] = ran.get(case.operation.label, 0) + 1

        one()
    total = sum(ran.values())
    print(f"{total} generated cases ({'with' if token else 'without'} a token) over {len(ran)} operations")
    assert total >= 500 and len(ran) == len(operations), ran
    assert all(port in (8100, 8101) for port, _ in fakes.calls)  # the mock only: no socket was used
