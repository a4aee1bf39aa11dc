"""Decision log and replay across both shells.

Live: a real scheduler (``python -m scheduler serve --decision-log FILE --seed 7``) and
three reference instances on 127.0.0.1 serve tasks under each of the eight strategies
in turn (switched with ``/scheduler/set`` while earlier tasks are still running) and
through a predictor-mode switch; after a clean stop, ``python -m sim replay`` finds
every decision identical.  Simulated: ``python -m sim run --decision-log DIR`` writes
one log per (strategy, replication), and each replays identically too.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import yaml

from scheduler import read_log
from scheduler.live import LocalCluster, pooled_transport, wait_for_tasks
from sim import cli, replay_file

pytestmark = pytest.mark.e2e

STRATEGIES = [
    ("shortest_queue", {}),
    ("round_robin", {}),
    ("weighted", {"w": 1.5}),
    ("probabilistic", {}),
    ("random", {}),
    ("power_of_two", {"d": 2}),
    ("least_requests", {}),
    ("min_quantile", {"p": 0.9}),
]
PER_STRATEGY = 70


async def _submit(url: str, n: int, concurrency: int, first: int) -> list[str]:
    ids: list[str] = []
    todo = iter(range(first, first + n))
    async with httpx.AsyncClient(base_url=url, transport=pooled_transport(concurrency), timeout=30) as c:

        async def worker():
            for i in todo:
                r = await c.post("/queue/submit", json={"model_name": "llm", "task_input": {"i": i}})
                assert r.status_code == 200, r.text
                ids.append(r.json()["task_id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def test_live_run_replays_identically_for_every_strategy(tmp_path, capsys):
    log_path = tmp_path / "live.jsonl"
    table = tmp_path / "table.yaml"
    table.write_text(yaml.safe_dump({"llm": {"mean_ms": 6.0, "std_ms": 3.0}}))
    spec = [
        dict(model="llm", replicas=1 + k % 2, seed=k, service_time={"dist": "exponential", "mean_ms": 4})
        for k in range(3)
    ]
    scheduler = dict(seed=7, decision_log=str(log_path), lookup_table=str(table), log_level="warning")
    cluster = LocalCluster(spec, scheduler=scheduler, log_dir=tmp_path / "logs")
    try:
        cluster.start()
        ids: list[str] = []
        with httpx.Client(base_url=cluster.url, timeout=10) as c:
            for k, (name, params) in enumerate(STRATEGIES):
                body = c.post("/scheduler/set", json={"name": name, "params": params}).json()
                assert body == {"status": "success", "message": "OK"}, body
                if k in (3, 6):  # the predictor's mode changes mid-run too, and is recorded
                    mode = "lookup_table" if k == 3 else "default"
                    assert (
                        c.post("/scheduler/predict_mode", json={"mode": mode}).json()["status"] == "success"
                    )
                ids += asyncio.run(_submit(cluster.url, PER_STRATEGY, 8, len(ids)))
        with httpx.Client(base_url=cluster.url, timeout=10) as c:
            ended = wait_for_tasks(c, ids, timeout_s=60)
        assert {t["task_status"] for t in ended.values()} == {"completed"}
        cluster.scheduler.stop()  # SIGTERM: the lifespan closes (and so flushes) the log
    finally:
        cluster.stop()

    events = list(read_log(log_path))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "config" and kinds.count("config") == 1
    assert kinds.count("decision") == kinds.count("submit") == kinds.count("complete") == len(ids)
    assert [e["name"] for e in events if e["event"] == "set_strategy"] == [n for n, _ in STRATEGIES]
    assert kinds.count("add_instance") == 3
    assert all(e.get("size_ms") is None for e in events if e["event"] == "submit")  # sizes stay unknown live

    [run] = replay_file(log_path)
    assert run.report.decisions == len(ids)
    assert run.report.all_identical, run.report.mismatches
    assert cli.main(["replay", str(log_path)]) == 0
    assert f"{len(ids)} of {len(ids)} decisions identical" in capsys.readouterr().out

    # a tampered log is caught: one decision moved to another instance
    instances = sorted({e["instance_id"] for e in events if e["event"] == "add_instance"})
    tampered = tmp_path / "tampered.jsonl"
    k = next(i for i, e in enumerate(events) if e["event"] == "decision" and i > len(events) // 2)
    events[k] = dict(events[k], instance_id=next(i for i in instances if i != events[k]["instance_id"]))
    tampered.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert cli.main(["replay", str(tampered)]) == 1
    assert f"recorded {events[k]['instance_id']}" in capsys.readouterr().out


def test_simulated_runs_replay_identically(tmp_path, capsys):
    scenario = {
        "name": "replayed",
        "seed": 3,
        "replications": 2,
        "tasks": 400,
        "warmup_tasks": 10,
        "strategies": [
            "shortest_queue",
            "random",
            {"name": "weighted", "params": {"w": 2.0}},
            "probabilistic",
        ],
        "models": {
            "a": {"service_time": {"dist": "lognormal", "mean_ms": 20, "cv": 1.0}},
            "b": {"service_time": {"dist": "exponential", "mean_ms": 5}},
        },
        "instances": [
            {"model": "a", "count": 3, "speed": 1.0},
            {"model": "a", "count": 1, "replicas": 2, "speed": 0.5},
            {"model": "b", "count": 2},
        ],
        "workload": {"arrival": {"process": "poisson", "rate_per_s": 150}, "mix": {"a": 0.6, "b": 0.4}},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    logs = tmp_path / "logs"
    assert (
        cli.main(
            [
                "run",
                str(path),
                "--out",
                str(tmp_path / "out"),
                "--no-plots",
                "--no-progress",
                "--decision-log",
                str(logs),
            ]
        )
        == 0
    )
    files = sorted(p.name for p in logs.glob("*.jsonl"))
    assert files == sorted(
        f"{s}_r{r}.jsonl"
        for s in ("shortest_queue", "random", "weighted_w=2.0", "probabilistic")
        for r in (0, 1)
    )
    capsys.readouterr()
    assert cli.main(["replay", str(logs)]) == 0
    out = capsys.readouterr().out
    assert "all decisions identical: 3,200 of 3,200 in 8 scheduler run(s)" in out
    assert "weighted(w=2.0)" in out


def test_replay_of_a_bad_log_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert cli.main(["replay", str(missing)]) == 2
    assert "no such decision log" in capsys.readouterr().err
    headless = tmp_path / "headless.jsonl"
    headless.write_text('{"event": "submit", "t": 0, "task_id": "x", "model": "m"}\n')
    assert cli.main(["replay", str(headless)]) == 2
    assert "config" in capsys.readouterr().err
