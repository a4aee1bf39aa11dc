"""Access control and hygiene of the scheduler API (docs/api.md, "Trust"): tokens, callback secrets,
the instance allowlist, body and pending limits, input edges, log escaping, metrics.

In process (TestClient); instances are the MockTransport fakes of ``test_api``, so no
registration reaches a socket.  Each probe finding of issue 9 has its regression test here.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_api import FakeInstances, make_service, serve

from scheduler.live.allowlist import Allowlist, HostRefused, check_host, parse_allowlist
from scheduler.live.limits import BodyGuard, check_json, loggable
from scheduler.protocol.guard import BODY_COMPLETE

API, ADMIN = "api-secret", "admin-secret"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fakes() -> FakeInstances:
    f = FakeInstances()
    f.add(9001)
    f.add(9002)
    return f


def guarded(fakes, **settings):
    return serve(make_service(fakes, api_token=API, admin_token=ADMIN, **settings))


def reg(tc, port, token=ADMIN, host="127.0.0.1"):
    return tc.post("/ti/register", json={"host": host, "port": port}, headers=bearer(token))


def sub(tc, token=API, **extra):
    body = {"model_name": "llm", "task_input": {"prompt": "hi"}, **extra}
    return tc.post("/queue/submit", json=body, headers=bearer(token))


# -- tokens ------------------------------------------------------------------------------------
CLIENT_CALLS = [
    ("POST", "/queue/submit", {"model_name": "llm", "task_input": 1}),
    ("GET", "/queue/info", None),
    ("GET", "/task/query?task_id=x", None),
    ("POST", "/task/details", {"task_ids": ["x"]}),
    ("GET", "/scheduler/stats", None),
    ("GET", "/metrics", None),
]
ADMIN_CALLS = [
    ("POST", "/ti/register", {"host": "127.0.0.1", "port": 9001}),
    ("POST", "/ti/remove", {"ti_uuid": "123e4567-e89b-12d3-a456-426614174000"}),
    ("POST", "/scheduler/set", {"name": "round_robin"}),
    ("POST", "/scheduler/predict_mode", {"mode": "default"}),
]


def call(tc, method, path, body, headers=None):
    return tc.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize("method, path, body", CLIENT_CALLS + ADMIN_CALLS)
def test_missing_or_wrong_token_is_401(fakes, method, path, body):
    with guarded(fakes) as tc:
        for headers in ({}, bearer("wrong"), {"Authorization": API}, {"Authorization": f"Basic {ADMIN}"}):
            r = call(tc, method, path, body, headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.json()["status"] == "error" and "token" in r.json()["message"]
            assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("method, path, body", CLIENT_CALLS)
def test_client_endpoints_open_to_the_api_and_the_admin_token(fakes, method, path, body):
    with guarded(fakes) as tc:
        assert reg(tc, 9001).json()["status"] == "success"
        for token in (API, ADMIN):
            r = call(tc, method, path, body, bearer(token))
            assert r.status_code not in (401, 403), r.text


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_api_token_on_a_management_endpoint_is_403_and_admin_token_opens_it(fakes, method, path, body):
    with guarded(fakes) as tc:
        r = call(tc, method, path, body, bearer(API))
        assert r.status_code == 403 and r.json()["status"] == "error"
        assert "admin token" in r.json()["message"]
        assert call(tc, method, path, body, bearer(ADMIN)).status_code == 200


def test_health_and_docs_always_open(fakes):
    with guarded(fakes) as tc:
        assert tc.get("/health").status_code == 200


def test_without_tokens_everything_is_open_as_before(fakes):
    with serve(make_service(fakes)) as tc:
        assert tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9001}).json()["status"] == "success"
        r = tc.post("/queue/submit", json={"model_name": "llm", "task_input": 1})
        assert r.status_code == 200
        assert "callback_token" not in fakes.by_port[9001].enqueued[0]


def test_only_an_api_token_still_closes_the_management_endpoints(fakes):
    with serve(make_service(fakes, api_token=API)) as tc:
        assert tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9001}).status_code == 401
        assert reg(tc, 9001, token=API).json()["status"] == "success"


def test_only_an_admin_token_leaves_client_endpoints_open(fakes):
    with serve(make_service(fakes, admin_token=ADMIN)) as tc:
        assert tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9001}).status_code == 401
        assert reg(tc, 9001).json()["status"] == "success"
        assert tc.post("/queue/submit", json={"model_name": "llm", "task_input": 1}).status_code == 200


def test_tokens_from_the_environment():
    from scheduler.live import LiveConfig

    env = {"SCHEDULER_API_TOKEN": "tok-api-1", "SCHEDULER_ADMIN_TOKEN": "tok-admin-2"}
    cfg = LiveConfig.from_sources({}, env)
    assert (cfg.api_token, cfg.admin_token) == ("tok-api-1", "tok-admin-2")
    assert "tok-" not in repr(cfg)  # secrets are not printed


# -- completion callbacks -------------------------------------------------------------------------
def _one_task(tc, fakes, port=9001):
    assert reg(tc, port).json()["status"] == "success"
    task_id = sub(tc).json()["task_id"]
    sent = fakes.by_port[port].enqueued[-1]
    return task_id, sent["callback_token"]


def _complete(tc, task_id, instance_id, token=None, **extra):
    body = {"task_id": task_id, "instance_id": instance_id, "execution_time": 10.0, **extra}
    return tc.post("/notify/task_complete", json=body, headers=bearer(token) if token else {})


def test_each_instance_gets_its_own_callback_secret(fakes):
    with guarded(fakes) as tc:
        _, secret1 = _one_task(tc, fakes, 9001)
        _, secret2 = _one_task(tc, fakes, 9002)
        assert secret1 and secret2 and secret1 != secret2 and len(secret1) >= 32


def test_completion_without_or_with_a_wrong_secret_is_401_and_changes_nothing(fakes):
    with guarded(fakes) as tc:
        task_id, secret = _one_task(tc, fakes)
        for token in (None, "wrong", API, ADMIN):
            r = _complete(tc, task_id, "llm@9001", token, result="forged")
            assert r.status_code == 401 and r.json()["status"] == "warning"
        assert (
            tc.get(f"/task/query?task_id={task_id}", headers=bearer(API)).json()["task_status"] == "scheduled"
        )
        r = _complete(tc, task_id, "llm@9001", secret, result="real")
        assert r.status_code == 200 and r.json()["status"] == "success"
        assert tc.get(f"/task/query?task_id={task_id}", headers=bearer(API)).json()["result"] == "real"


def test_forged_result_from_another_instance_cannot_replace_the_real_one(fakes):
    """Probe finding: a forged ``result`` replaced the real one, which was then ignored."""
    with guarded(fakes) as tc:
        task_id, secret1 = _one_task(tc, fakes, 9001)
        _, secret2 = _one_task(tc, fakes, 9002)
        # instance 2, with its own valid secret, claims to be instance 1, then speaks as itself
        assert _complete(tc, task_id, "llm@9001", secret2, result="forged").status_code == 401
        assert _complete(tc, task_id, "llm@9002", secret2, result="forged").status_code == 401
        assert _complete(tc, task_id, "llm@9001", secret1, result="real").status_code == 200
        assert tc.get(f"/task/query?task_id={task_id}", headers=bearer(API)).json()["result"] == "real"


def test_forged_execution_time_cannot_poison_routing(fakes):
    """Probe finding: one forged ``execution_time: 1e9`` starved an instance.  Without its secret
    the forgery is refused and the estimate stays where it was."""
    with guarded(fakes) as tc:
        task_id, _ = _one_task(tc, fakes)
        before = tc.get("/queue/info", headers=bearer(API)).json()["queues"]
        assert _complete(tc, task_id, "llm@9001", None, execution_time=1e9).status_code == 401
        assert tc.get("/queue/info", headers=bearer(API)).json()["queues"] == before


# -- guarded registration -------------------------------------------------------------------------
def test_allowlist_parsing():
    rules = parse_allowlist("127.0.0.0/8, ::1, 10.0.0.0/16:8100-8199, gpu-1.internal:9000, [fd00::/64]:80")
    assert [r.ports for r in rules] == [None, None, (8100, 8199), (9000, 9000), (80, 80)]
    assert rules[3].hostname == "gpu-1.internal"
    for bad in ("10.0.0.0/16:0", "10.0.0.0/16:9-8", "a/b", "host:x", "[::1]x"):
        with pytest.raises(Exception, match="allow_instance_hosts"):
            parse_allowlist(bad)


def _pin(allow: str, host: str, port: int = 8100, resolver=None) -> str:
    return asyncio.run(Allowlist(allow, resolver).pin(host, port))


def test_allowlist_admits_and_refuses_addresses_and_ports():
    assert _pin("127.0.0.0/8,::1", "127.0.0.5") == "127.0.0.5"
    assert _pin("127.0.0.0/8,::1", "::1") == "::1"
    assert _pin("127.0.0.0/8", "::ffff:127.0.0.1") == "127.0.0.1"  # IPv4-mapped counts as IPv4
    assert _pin("10.0.0.0/16:8100-8199", "10.0.3.4", 8150) == "10.0.3.4"
    for host, port in (("10.0.3.4", 8200), ("10.1.0.1", 8100), ("169.254.169.254", 8100)):
        with pytest.raises(HostRefused, match="--allow-instance-hosts"):
            _pin("10.0.0.0/16:8100-8199", host, port)


def test_host_name_resolving_to_an_allowed_and_a_refused_address_is_refused():
    async def resolver(name):
        return {"mixed.example": ["127.0.0.2", "10.9.9.9"], "good.example": ["127.0.0.2"]}[name]

    assert _pin("127.0.0.2/32", "good.example", resolver=resolver) == "127.0.0.2"
    with pytest.raises(HostRefused, match="10.9.9.9 is not admitted by --allow-instance-hosts"):
        _pin("127.0.0.2/32", "mixed.example", resolver=resolver)


def test_allowlist_host_name_entries_match_by_address():
    async def resolver(name):
        return {"gpu-1.internal": ["10.0.0.7"], "alias.internal": ["10.0.0.7"]}[name]

    assert _pin("gpu-1.internal:8100", "alias.internal", 8100, resolver) == "10.0.0.7"
    with pytest.raises(HostRefused):
        _pin("gpu-1.internal:8100", "alias.internal", 8101, resolver)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1/internal/admin?token=",
        "127.0.0.1#x",
        "user@127.0.0.1",
        "127.0.0.1 ",
        "a b",
        "http://127.0.0.1",
        "127.0.0.1:80",
        "",
        "-bad-.example",
    ],
)
def test_host_must_be_a_host_name_or_ip_literal(host):
    """Probe finding (path injection): ``127.0.0.1/internal/admin?token=`` made the scheduler
    request another path on port 80."""
    with pytest.raises(HostRefused, match="invalid host"):
        check_host(host)


def test_refused_registration_contacts_nothing_and_names_the_option(fakes):
    """Allow only 127.0.0.2/32 and register on 127.0.0.1: refused before any connection."""
    with guarded(fakes, allow_instance_hosts="127.0.0.2/32") as tc:
        body = reg(tc, 9001).json()
        assert body["status"] == "error" and body["ti_uuid"] == ""
        assert "--allow-instance-hosts" in body["message"]
        body = reg(tc, 9001, host="127.0.0.1/internal/admin?token=").json()
        assert body["status"] == "error" and "invalid host" in body["message"]
    assert fakes.calls == []  # no request reached any instance


def test_registration_connects_to_the_checked_address(fakes):
    async def resolver(name):
        return ["127.0.0.1"]

    service = make_service(fakes, api_token=API, admin_token=ADMIN)
    service.allowlist = Allowlist("127.0.0.0/8", resolver)
    with serve(service) as tc:
        assert reg(tc, 9001, host="instances.example").json()["status"] == "success"
    assert service._entries[next(iter(service._entries))].base_url == "http://127.0.0.1:9001"


# -- limits -----------------------------------------------------------------------------------------
def test_body_above_the_limit_is_413_from_its_content_length(fakes):
    with serve(make_service(fakes, max_body_bytes=1000)) as tc:
        r = tc.post("/queue/submit", json={"model_name": "llm", "task_input": "x" * 2000})
        assert r.status_code == 413 and "--max-body-bytes" in r.json()["message"]


def test_streamed_body_is_cut_off_at_the_limit_not_read_whole():
    """A chunked body (no Content-Length) growing past the limit is 413 once it does."""
    received, sent = [], []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}  # never ends

    async def send(msg):
        sent.append(msg)

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("the app got the request")

    scope = {"type": "http", "method": "POST", "path": "/queue/submit", "headers": []}
    asyncio.run(BodyGuard(app, max_body_bytes=1000)(scope, receive, send))
    assert sent[0]["status"] == 413 and len(received) == 11


def test_body_that_never_completes_times_out():
    """Probe finding: a body shorter than its Content-Length hung for ever."""
    sent = []

    async def receive():
        await asyncio.sleep(3600)

    async def send(msg):
        sent.append(msg)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/queue/submit",
        "headers": [(b"content-length", b"50")],
    }
    asyncio.run(BodyGuard(None, max_body_bytes=1000, body_timeout_s=0.05)(scope, receive, send))
    assert sent[0]["status"] == 408


def _guarded(scope: dict, messages: list[dict], max_body_bytes: int = 1000) -> tuple[list[dict], list[bytes]]:
    """What BodyGuard sends and what its app read, for a request whose body comes as ``messages``."""
    sent: list[dict] = []
    seen: list[bytes] = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)

    async def send(msg):
        sent.append(msg)

    async def app(scope, receive, send):
        seen.append((await receive())["body"])

    asyncio.run(BodyGuard(app, max_body_bytes=max_body_bytes, body_timeout_s=0.05)(scope, receive, send))
    return sent, seen


def test_a_body_the_server_had_whole_is_read_without_a_timer_and_still_checked():
    # the guarded uvicorn protocol marks a request whose body was complete before the app ran
    scope = {"type": "http", "method": "POST", "path": "/queue/submit", "headers": [], BODY_COMPLETE: True}
    body = b'{"model_name": "llm", "task_input": 1}'
    assert _guarded(dict(scope), [{"type": "http.request", "body": body, "more_body": False}]) == ([], [body])
    sent, seen = _guarded(dict(scope), [{"type": "http.request", "body": b"x" * 1001, "more_body": False}])
    assert sent[0]["status"] == 413 and seen == []
    sent, seen = _guarded(dict(scope), [{"type": "http.request", "body": b'{"a": NaN}', "more_body": False}])
    assert sent[0]["status"] == 422 and seen == []
    # a body in pieces all the same: the rest is read under the stall timer, and bounded
    pieces = [{"type": "http.request", "body": b"x" * 600, "more_body": True}] * 2
    sent, seen = _guarded(dict(scope), pieces)
    assert sent[0]["status"] == 413
    sent, seen = _guarded(dict(scope), [{"type": "http.request", "body": b"{", "more_body": True}])
    assert sent[0]["status"] == 408


def test_too_many_pending_is_429_with_retry_after(fakes):
    with serve(make_service(fakes, max_pending=3)) as tc:
        tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9001})
        codes = [tc.post("/queue/submit", json={"model_name": "llm", "task_input": i}) for i in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert codes[3].headers["retry-after"] == "1" and "--max-pending" in codes[3].json()["detail"]


def test_refused_tasks_keep_no_metadata(fakes):
    """Probe finding: refused submits kept their (1 MiB) metadata for good."""
    service = make_service(fakes)
    with serve(service) as tc:
        r = tc.post(
            "/queue/submit", json={"model_name": "llm", "task_input": 1, "metadata": {"big": "x" * 1000}}
        )
        assert r.status_code == 503
        assert service.core.task(r.json()["task_id"]).metadata == {}
        assert service.pending == 0


# -- input edges ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, where",
    [
        (b'{"model_name": "llm", "task_input": {"size_ms": NaN}}', ["body", "task_input", "size_ms"]),
        (b'{"model_name": "llm", "task_input": [1, Infinity]}', ["body", "task_input", 1]),
        (b'{"model_name": "llm", "task_input": -Infinity}', ["body", "task_input"]),
        (b'{"model_name": "llm", "task_input": "\xff\xfe"}', ["body"]),
        (b'{"model_name": "llm", "task_input": ' + b"[" * 100 + b"]" * 100 + b"}", None),
        (b'{"model_name": "llm", "task_input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    ],
)
def test_nan_infinity_bad_utf8_and_deep_json_are_422(fakes, raw, where):
    with serve(make_service(fakes, max_body_bytes=1 << 20)) as tc:
        r = tc.post("/queue/submit", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        if where is not None:
            assert r.json()["detail"][0]["loc"] == where


def test_check_json_leaves_ordinary_bodies_alone():
    assert check_json(b'{"a": [1, 2.5, {"b": "NaN"}]}') is None  # "NaN" as a string is fine
    assert check_json(b"not json") is None  # FastAPI answers syntax errors itself
    assert check_json('{"a": "é ü 字"}'.encode()) is None  # not ASCII, valid UTF-8
    assert check_json(b'{"a": "\xc3\xa9\xff"}') == ("the body is not valid UTF-8 (byte 9)", ["body"])
    assert check_json('{"a": ["é", NaN]}'.encode()) == (
        "nan is not a JSON number; send finite numbers only",
        ["body", "a", 1],
    )


@pytest.mark.parametrize(
    "body",
    [
        {"host": "127.0.0.1", "port": True},
        {"host": "127.0.0.1", "port": "9001"},
        {"host": "127.0.0.1", "port": 9001, "speed": True},
    ],
)
def test_booleans_and_strings_are_not_numbers(fakes, body):
    with serve(make_service(fakes)) as tc:
        assert tc.post("/ti/register", json=body).status_code == 422
        r = tc.post(
            "/notify/task_complete", json={"task_id": "t", "instance_id": "i", "execution_time": True}
        )
        assert r.status_code == 422


# -- log injection --------------------------------------------------------------------------------
def test_client_text_in_logs_is_escaped(fakes, caplog):
    """Probe finding: newlines in a completion's ``error`` or an instance_id wrote fake log lines."""
    fakes.add(9003, instance_id="evil\nINFO:     forged line")
    with serve(make_service(fakes)) as tc, caplog.at_level(logging.INFO, logger="scheduler.live"):
        assert tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9001}).json()["status"] == "success"
        assert tc.post("/ti/register", json={"host": "127.0.0.1", "port": 9003}).json()["status"] == "success"
        task_id = tc.post("/queue/submit", json={"model_name": "llm", "task_input": 1}).json()["task_id"]
        inst = "llm@9001" if fakes.by_port[9001].enqueued else "evil\nINFO:     forged line"
        body = {"task_id": task_id, "instance_id": inst, "execution_time": 1.0, "error": "x\nERROR: forged\r"}
        tc.post("/notify/task_complete", json=body)
        tc.post("/notify/task_complete", json={**body, "instance_id": "who\nWARNING: forged"})
    messages = [r.getMessage() for r in caplog.records]
    assert messages and all("\n" not in m and "\r" not in m for m in messages), messages
    assert any("forged" in m for m in messages)
    assert loggable("a\nb\x1b[0m") == "a\\nb\\x1b[0m"


# -- metrics --------------------------------------------------------------------------------------
def _scrape(tc, token=API) -> dict:
    r = tc.get("/metrics", headers=bearer(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_scrape_counts_the_tasks_run(fakes):
    with guarded(fakes) as tc:
        reg(tc, 9001)
        reg(tc, 9002)
        secrets = {}
        ids = []
        for _ in range(7):
            ids.append(sub(tc).json()["task_id"])
        for port in (9001, 9002):
            for sent in fakes.by_port[port].enqueued:
                secrets[sent["task_id"]] = (f"llm@{port}", sent["callback_token"])
        for tid in ids[:5]:
            inst, secret = secrets[tid]
            _complete(tc, tid, inst, secret, result="ok")
        inst, secret = secrets[ids[5]]
        _complete(tc, ids[5], inst, secret, error="boom")
        tc.post("/queue/submit", json={"model_name": "nope", "task_input": 1}, headers=bearer(API))  # 503
        m = _scrape(tc)
        assert tc.get("/metrics").status_code == 401
    llm, nope = (("model", "llm"),), (("model", "nope"),)
    assert m[("infersched_tasks_submitted_total", llm)] == 7
    assert m[("infersched_tasks_completed_total", llm)] == 5
    assert m[("infersched_tasks_failed_total", llm)] == 1
    assert m[("infersched_tasks_failed_total", nope)] == 1
    assert m[("infersched_tasks_in_flight", ())] == 1
    assert m[("infersched_decision_seconds_count", ())] == 7
    assert m[("infersched_task_latency_seconds_count", llm)] == 6
    healthy = [v for (name, _), v in m.items() if name == "infersched_instance_healthy"]
    waits = [k for k in m if k[0] == "infersched_instance_expected_wait_seconds"]
    assert healthy == [1.0, 1.0] and len(waits) == 2


def test_openapi_lists_every_status_an_endpoint_answers(fakes):
    with guarded(fakes) as tc:
        paths = tc.get("/openapi.json").json()["paths"]
    assert {"401", "403", "413", "422"} <= set(paths["/ti/register"]["post"]["responses"])
    assert {"401", "413", "429", "503", "409"} <= set(paths["/queue/submit"]["post"]["responses"])
    assert "401" in paths["/notify/task_complete"]["post"]["responses"]
    assert "401" in paths["/metrics"]["get"]["responses"]


def test_mock_transport_instances_only(fakes):
    """Guard for this file: every instance call above went to the MockTransport."""
    assert isinstance(make_service(fakes).client._http.transport, httpx.MockTransport)


# -- robust learning ------------------------------------------------------------------------------
def _train_and_forge(fakes, strategy: str, **settings) -> dict[int, int]:
    """Two equal instances learn 100 ms tasks; one forged 1e9 ms completion lands on the first;
    then 200 tasks arrive without completing.  Returns how many each instance got."""
    service = make_service(fakes, strategy="round_robin", **settings)
    with serve(service) as tc:
        tis = [
            tc.post("/ti/register", json={"host": "127.0.0.1", "port": p}).json()["ti_uuid"]
            for p in (9001, 9002)
        ]
        port_of = dict(zip(tis, (9001, 9002)))
        forged = False
        for i in range(200):
            r = tc.post("/queue/submit", json={"model_name": "llm", "task_input": i}).json()
            port = port_of[r["scheduled_ti"]]
            forge = i >= 20 and port == 9001
            tc.post(
                "/notify/task_complete",
                json={
                    "task_id": r["task_id"],
                    "instance_id": f"llm@{port}",
                    "execution_time": 1e9 if forge else 100.0 + i % 3,
                },
            )
            if forge:
                forged = True
                break
        assert forged
        assert tc.post("/scheduler/set", json={"name": strategy}).json()["status"] == "success"
        counts = {9001: 0, 9002: 0}
        for i in range(200):
            counts[
                port_of[
                    tc.post("/queue/submit", json={"model_name": "llm", "task_input": i}).json()[
                        "scheduled_ti"
                    ]
                ]
            ] += 1
    return counts


def test_one_forged_completion_cannot_starve_an_instance(fakes):
    """Probe finding: one forged ``execution_time: 1e9`` gave an instance 0 of 440 later tasks;
    the online mean never forgot.  Clipped against the current spread, it moves a bounded step."""
    counts = _train_and_forge(fakes, "round_robin")  # round robin ignores estimates: the setup is fair
    assert counts == {9001: 100, 9002: 100}
    # reproduced: with clipping and forgetting out of reach, the poisoned instance gets nothing
    counts = _train_and_forge(fakes, "shortest_queue")  # the defaults: plain running mean, as in sim
    assert counts[9001] == 0, counts
    counts = _train_and_forge(fakes, "shortest_queue", learn_clip_sigmas=4, learn_half_life=500)
    assert counts[9001] >= 60, counts


def test_predictor_clip_and_half_life():
    from scheduler.core.stats import DecayingStats

    d = DecayingStats(half_life=10)
    for _ in range(200):
        d.add(100.0)
    for _ in range(10):
        d.add(200.0)
    assert 140 < d.mean < 160  # the last half-life holds about half the weight
    for _ in range(200):
        d.add(200.0)
    assert abs(d.mean - 200.0) < 1e-3 and d.n == 410

    from scheduler import Scheduler
    from scheduler.core import Predictor

    def mean_after_forgery(**robust) -> float:
        core = Scheduler("round_robin", predictor=Predictor("online", **robust), rng=0)
        core.add_instance("m", instance_id="a")
        for i in range(10):
            core.submit("m", None, task_id=f"t{i}")
            core.complete(f"t{i}", 100.0 + i % 2)
        core.submit("m", None, task_id="forged")
        core.complete("forged", 1e9)
        return core.prediction("a").expected_ms

    assert mean_after_forgery() > 1e7  # the plain running mean is poisoned
    assert mean_after_forgery(clip_sigmas=4.0, half_life=500.0) < 120.0
    with pytest.raises(Exception, match="clip_sigmas"):
        Predictor("online", clip_sigmas=-1)


# -- memory -----------------------------------------------------------------------------------------
def test_history_is_bounded_in_bytes_as_well_as_count():
    from scheduler.core import TaskTracker
    from scheduler.live.service import record_bytes

    tr = TaskTracker(max_history=1000, max_bytes=50_000, sizeof=record_bytes)
    for i in range(100):
        tr.add(f"t{i}", "m", 0.0)
        tr.schedule(f"t{i}", "a", 0.0, 1.0, 0.0)
        tr.complete(f"t{i}", 1.0, 1.0, "x" * 10_000)  # about 10 kB each
    assert tr.history_bytes <= 50_000 and len(tr) == 4
    assert tr.get("t99") is not None and tr.get("t0") is None


def test_a_large_invalid_input_is_not_echoed_back(fakes):
    with serve(make_service(fakes)) as tc:
        r = tc.post("/ti/register", json={"host": "127.0.0.1", "port": "9" * 100_000})
        assert r.status_code == 422 and len(r.content) < 2_000


def test_servers_freeze_the_start_up_heap_and_collect_young_objects_less_often():
    import gc

    from scheduler.protocol.server import GC_THRESHOLDS, tune_gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > before[0]
        assert gc.get_freeze_count() > 0  # what existed at start-up is out of every collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
