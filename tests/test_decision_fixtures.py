"""Decision logs recorded before a refactoring replay identically after it.

The fixtures in ``tests/fixtures/decision_logs/`` were written with the code of
their commit:

- ``sim/<strategy>_r0.jsonl``: one simulated run of ``examples/scenarios/demo.yaml``
  with every registered strategy (300 tasks, 50 warm-up, one replication);
- ``live.jsonl``: one live run (scheduler and three reference instances on
  127.0.0.1, 40 tasks under each registered strategy in turn, two
  predictor-mode switches).

``sim replay`` must find every recorded decision identical, and a fresh
simulated run of the same scenario must make the same decisions as recorded.

To re-record (only in a commit that means to change decisions, and the commit
message says why):

    .venv/bin/python tests/fixtures/decision_logs/record.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from scheduler import read_log
from sim import cli, replay_file

FIXTURES = Path(__file__).parent / "fixtures" / "decision_logs"
SIM_LOGS = FIXTURES / "sim"
LIVE_LOG = FIXTURES / "live.jsonl"


def _decisions(path: Path) -> list[tuple[str, str]]:
    return [(e["task_id"], e["instance_id"]) for e in read_log(path) if e["event"] == "decision"]


def test_the_fixtures_cover_every_registered_strategy():
    from scheduler import strategy_names

    assert sorted(p.name for p in SIM_LOGS.glob("*.jsonl")) == [f"{n}_r0.jsonl" for n in strategy_names()]
    switched = [e["name"] for e in read_log(LIVE_LOG) if e["event"] == "set_strategy"]
    assert sorted(set(switched)) == strategy_names()


@pytest.mark.parametrize("path", [*sorted(SIM_LOGS.glob("*.jsonl")), LIVE_LOG], ids=lambda p: p.name)
def test_every_recorded_decision_replays_identically(path):
    runs = replay_file(path)
    assert len(runs) == 1
    report = runs[0].report
    assert report.decisions == len(_decisions(path)) >= 300
    assert report.all_identical, report.mismatches[:5]


def test_sim_replay_command_reports_all_identical(capsys):
    assert cli.main(["replay", str(SIM_LOGS), str(LIVE_LOG)]) == 0
    assert "all decisions identical: 2,720 of 2,720 in 9 scheduler run(s)" in capsys.readouterr().out


def test_a_fresh_simulated_run_makes_the_recorded_decisions(tmp_path):
    spec = importlib.util.spec_from_file_location("record_decision_logs", FIXTURES / "record.py")
    assert spec is not None and spec.loader is not None
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    record.record_sim(tmp_path / "sim")
    for recorded in sorted(SIM_LOGS.glob("*.jsonl")):
        assert _decisions(tmp_path / "sim" / recorded.name) == _decisions(recorded), recorded.name
