"""The scheduler's task-instance client and its HTTP transport.

``TaskInstanceClient`` is checked with an httpx MockTransport; the pooled
transport against a real uvicorn app and against small raw asyncio servers
that misbehave on purpose (close kept-alive connections, never answer, answer
garbage): whatever the server does, the caller gets an httpx error in time.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from live_helpers import ServerThread

from scheduler.live import InstanceError, TaskInstanceClient, free_port, pooled_transport

STATUS = {"instance_id": "i", "model_type": "llm", "replicas_running": 2, "queue_size": 0, "status": "idle"}


def run(coro):
    return asyncio.run(coro)


# -- TaskInstanceClient -------------------------------------------------------------


def client_with(handler) -> TaskInstanceClient:
    return TaskInstanceClient(timeout_s=1.0, transport=httpx.MockTransport(handler))


def test_client_parses_answers():
    seen = []

    def handler(request: httpx.Request):
        seen.append(request)
        if request.url.path == "/status":
            return httpx.Response(200, json=STATUS)
        if request.url.path == "/queue/enqueue":
            return httpx.Response(200, json={"task_id": "t/1", "queue_size": 1, "enqueue_time": 1.0})
        return httpx.Response(404)

    async def go():
        c = client_with(handler)
        st = await c.status("http://h:1")
        enq = await c.enqueue("http://h:1", "t/1", {"x": 1}, {"m": 2}, "http://s/notify/task_complete")
        missing = await c.result("http://h:1", "t/1")
        await c.aclose()
        return st, enq, missing

    st, enq, missing = run(go())
    assert (st.model_type, st.replicas_running, enq.queue_size, missing) == ("llm", 2, 1, None)
    assert seen[1].read() == (
        b'{"task_id":"t/1","input_data":{"x":1},"metadata":{"m":2},'
        b'"callback_url":"http://s/notify/task_complete"}'
    )
    assert seen[2].url.raw_path == b"/results/t%2F1"  # the task id is one path segment


@pytest.mark.parametrize(
    "answer, unreachable, words",
    [
        (httpx.ConnectError("refused"), True, "unreachable (connection refused: nothing listens there)"),
        (httpx.ReadTimeout("slow"), True, "unreachable (no answer within the timeout of 1 s)"),
        (httpx.Response(500, text="boom"), False, "answered HTTP 500"),
        (
            httpx.Response(200, json={**STATUS, "status": "sleeping"}),
            False,
            "invalid InstanceStatus answer at status",
        ),
        (httpx.Response(200, content=b"not json"), False, "invalid InstanceStatus answer"),
    ],
)
def test_client_errors(answer, unreachable, words):
    def handler(request):
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(InstanceError) as info:
        run(client_with(handler).status("http://h:1"))
    assert info.value.unreachable is unreachable
    assert words in str(info.value) and "http://h:1/status" in str(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, text="SECRET-admin-page token=abc"),
        httpx.Response(200, text="SECRET-admin-page token=abc"),
        httpx.Response(200, json={**STATUS, "status": "SECRET-admin-page token=abc"}),
    ],
)
def test_errors_never_echo_what_another_host_answered(answer):
    """Probe finding (SSRF read-back): registering another service's port echoed 200 characters of
    its answer in the error message.  The message now says what was wrong, never what was said."""
    with pytest.raises(InstanceError) as info:
        run(client_with(lambda request: answer).status("http://h:1"))
    assert "SECRET" not in str(info.value) and "token=abc" not in str(info.value)


# -- the pooled transport against uvicorn ----------------------------------------------------


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request):
        return {
            "body": (await request.body()).decode(),
            "query": request.url.query,
            "port": request.client.port,
            "agent": request.headers.get("x-agent"),
        }

    @app.get("/port")
    async def port(request: Request):
        return {"port": request.client.port}

    @app.get("/close")
    async def close(request: Request):
        return Response(str(request.client.port), headers={"connection": "close"})

    @app.get("/chunks")
    async def chunks():
        async def parts():
            for i in range(5):
                yield f"part{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/empty", status_code=204)
    async def empty():
        return Response(status_code=204)

    return app


def test_transport_with_uvicorn():
    async def go(url):
        async with httpx.AsyncClient(transport=pooled_transport(), timeout=5) as c:
            r = await c.post(f"{url}/echo?a=1&b=x%20y", json={"k": [1, 2]}, headers={"x-agent": "test"})
            assert r.status_code == 200
            body = r.json()
            assert (body["body"], body["query"], body["agent"]) == ('{"k":[1,2]}', "a=1&b=x%20y", "test")
            ports = [(await c.get(f"{url}/port")).json()["port"] for _ in range(3)]
            assert len(set(ports)) == 1  # one kept-alive connection
            closing = [int((await c.get(f"{url}/close")).text) for _ in range(2)]
            assert len(set(closing)) == 2  # "Connection: close" is honoured
            r = await c.get(f"{url}/chunks")
            assert r.text == "part0;part1;part2;part3;part4;"
            r = await c.get(f"{url}/empty")
            assert r.status_code == 204 and r.content == b""
            together = await asyncio.gather(*(c.get(f"{url}/port") for _ in range(20)))
            assert all(r.status_code == 200 for r in together)

    with ServerThread(echo_app()) as url:
        run(go(url))


# -- the pooled transport against misbehaving servers ------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def raw_server(answer):
    """A server on a free port; ``answer(reader, writer, n)`` handles the n-th connection."""
    count = 0

    async def handle(reader, writer):
        nonlocal count
        count += 1
        try:
            await answer(reader, writer, count)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", lambda: count


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = [
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    ]
    if length:
        await reader.readexactly(length[0])
    return head


def test_closed_kept_alive_connections_are_replaced():
    async def answer_once(reader, writer, n):
        await read_request(reader)
        writer.write(OK)  # keep-alive implied...
        await writer.drain()
        if n == 1:
            await read_request(reader)  # ...but the next request on it gets no answer: the server hangs up

    async def go():
        server, url, connections = await raw_server(answer_once)
        async with server, httpx.AsyncClient(transport=pooled_transport(), timeout=2) as c:
            assert (await c.get(url)).text == "ok"
            assert (await c.post(url, json={"a": 1})).text == "ok"  # sent once more on a new connection
            assert connections() == 2

    run(go())


async def silent(reader, writer, n):
    await read_request(reader)
    await asyncio.sleep(5)


async def garbage(reader, writer, n):
    await read_request(reader)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()


async def hang_up(reader, writer, n):
    await read_request(reader)


async def half(reader, writer, n):
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    await writer.drain()


@pytest.mark.parametrize(
    "handler", [None, silent, garbage, hang_up, half], ids=["refused", "silent", "garbage", "hang_up", "half"]
)
def test_a_misbehaving_instance_is_an_instance_error_in_bounded_time(handler):
    """Whatever an instance does, the client answers InstanceError within its timeout."""

    async def go():
        client = TaskInstanceClient(timeout_s=0.5)
        t0 = asyncio.get_running_loop().time()
        try:
            if handler is None:
                with pytest.raises(InstanceError) as info:
                    await client.status(f"http://127.0.0.1:{free_port()}")
            else:
                server, url, _ = await raw_server(handler)
                async with server:
                    with pytest.raises(InstanceError) as info:
                        await client.status(url)
        finally:
            await client.aclose()
        assert info.value.unreachable or "invalid" in str(info.value) or "HTTP" in str(info.value)
        assert asyncio.get_running_loop().time() - t0 < 3.0

    run(go())


def test_pool_limit():
    async def slow(reader, writer, n):
        while True:
            await read_request(reader)
            await asyncio.sleep(0.2)
            writer.write(OK)
            await writer.drain()

    async def go():
        server, url, connections = await raw_server(slow)
        async with server:
            async with httpx.AsyncClient(transport=pooled_transport(1), timeout=5) as c:
                rs = await asyncio.gather(*(c.get(url) for _ in range(3)))
                assert [r.text for r in rs] == ["ok"] * 3 and connections() == 1  # one at a time

    run(go())


def test_the_default_client_says_refused_and_timed_out_in_words():
    """Probe finding: a refused connection was reported as a timeout.  The default client (aiohttp
    directly, scheduler.protocol.jsonhttp) names each."""

    async def go():
        client = TaskInstanceClient(timeout_s=0.5)
        try:
            with pytest.raises(InstanceError) as refused:
                await client.status(f"http://127.0.0.1:{free_port()}")
            server, url, _ = await raw_server(silent)
            async with server:
                with pytest.raises(InstanceError) as slow:
                    await client.status(url)
        finally:
            await client.aclose()
        assert "connection refused" in str(refused.value) and not refused.value.timed_out
        assert "no answer within the timeout of 0.5 s" in str(slow.value) and slow.value.timed_out

    run(go())
