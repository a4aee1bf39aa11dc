"""``serve`` errors name the flag or environment variable the bad value came from, never an
internal field; every case here fails before anything binds a port."""

from __future__ import annotations

import pytest

from scheduler.__main__ import main

ENV = [
    "SCHEDULER_STRATEGY",
    "SCHEDULER_STRATEGY_PARAMS",
    "SCHEDULER_LOOKUP_TABLE",
    "SCHEDULER_CONFIG_PATH",
    "SCHEDULER_PREDICT_MODE",
    "SCHEDULER_TASK_TIMEOUT_S",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def _serve_error(capsys, *args: str) -> str:
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infersched serve: ") and "Traceback" not in err
    return err


def test_a_missing_lookup_table_names_the_flag_or_the_variable(capsys, monkeypatch, tmp_path):
    missing = str(tmp_path / "nope.yaml")
    err = _serve_error(capsys, "--lookup-table", missing)
    assert err.startswith("infersched serve: --lookup-table: got") and "lookup_table" not in err.replace(
        missing, ""
    )
    monkeypatch.setenv("SCHEDULER_LOOKUP_TABLE", missing)
    err = _serve_error(capsys)
    assert "SCHEDULER_LOOKUP_TABLE (environment)" in err and "readable file" in err


def test_a_bad_instance_file_names_config(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "instances.yaml"
    bad.write_text("instances:\n  - {host: 127.0.0.1, port: 0}\n")
    err = _serve_error(capsys, "--config", str(bad))
    assert "--config" in err and "instances[0].port" in err and "config_path" not in err
    monkeypatch.setenv("SCHEDULER_CONFIG_PATH", str(tmp_path / "missing.yaml"))
    err = _serve_error(capsys)
    assert "SCHEDULER_CONFIG_PATH (environment)" in err and "config_path" not in err


def test_strategy_params_errors_list_the_accepted_parameters(capsys, monkeypatch):
    err = _serve_error(capsys, "--strategy", "weighted", "--strategy-params", "{k: 3}")
    assert "--strategy-params: k: got 3" in err
    assert "w (default 1.0): weight of the completion time's standard deviation" in err
    assert "unexpected keyword" not in err
    err = _serve_error(capsys, "--strategy-params", "{k: 3}")  # shortest_queue takes none
    assert "no parameters" in err
    monkeypatch.setenv("SCHEDULER_STRATEGY", "power_of_two")
    monkeypatch.setenv("SCHEDULER_STRATEGY_PARAMS", "{d: 0}")
    err = _serve_error(capsys)
    assert "SCHEDULER_STRATEGY_PARAMS (environment): d: got 0" in err


def test_unknown_strategy_and_predict_mode_name_their_flags(capsys):
    err = _serve_error(capsys, "--strategy", "fastest")
    assert "--strategy: unknown strategy 'fastest'" in err and "round_robin" in err
    err = _serve_error(capsys, "--predict-mode", "lookup_table")
    assert "--predict-mode: got 'lookup_table'" in err and "--lookup-table" in err


def test_a_limit_below_another_names_both_flags(capsys):
    err = _serve_error(capsys, "--task-timeout-s", "900")
    assert "--task-hard-limit-s (default): got 600.0" in err and "--task-timeout-s (900.0)" in err
    assert "task_timeout_s" not in err
