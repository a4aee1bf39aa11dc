"""Trace readers: each format on its shipped fixture, bad files, options, and replay through sim.run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from scheduler import SpecError
from sim import trace_files, traces
from sim.trace_fixtures import FIXTURES, fixture_frame, main, write_fixture

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "examples" / "traces"
SCENARIOS = ROOT / "examples" / "scenarios" / "traces"


@pytest.mark.parametrize(
    "name, fmt, tokens, sources",
    [
        ("azure_conv_2023.csv", "azure_llm", {"input_tokens", "output_tokens"}, ()),
        ("azure_code_2024.csv", "azure_llm", {"input_tokens", "output_tokens"}, ()),
        ("azure_multimodal_2025.csv", "azure_llm", {"input_tokens", "output_tokens", "images"}, ()),
        ("burstgpt.csv", "burstgpt", {"input_tokens", "output_tokens"}, ("ChatGPT", "GPT-4")),
        ("mooncake.jsonl", "mooncake", {"input_tokens", "output_tokens"}, ()),
        ("tasks.csv", "csv", {"input_tokens", "output_tokens"}, ("big", "chat")),
    ],
)
def test_each_reader_on_its_fixture(name, fmt, tokens, sources):
    path = TRACES / name
    assert traces.detect_format(path) == fmt
    raw = traces.read_raw(path)  # format: auto
    assert raw.format == fmt and set(raw.tokens) == tokens
    assert sorted(raw.sources) == sorted(sources)
    assert np.all(np.diff(raw.arrival_ms) >= 0)
    kind = FIXTURES[name]
    src = fixture_frame(kind, seed=list(FIXTURES).index(name))
    frame = pd.DataFrame(src) if isinstance(src, list) else src
    first = {"csv": "input_tokens", "burstgpt": "Request tokens", "mooncake": "input_length"}
    column = first.get(fmt, "ContextTokens")
    expected = frame[column].to_numpy(dtype=float)
    if fmt == "burstgpt":  # failed requests (no response tokens) are dropped by default
        expected = expected[frame["Response tokens"].to_numpy() > 0]
        assert len(raw) == int((frame["Response tokens"] > 0).sum()) < len(frame)
    else:
        assert len(raw) == len(frame)
    assert raw.tokens["input_tokens"].tolist() == expected.tolist()
    if fmt != "csv":  # ms from the first row
        assert raw.arrival_ms[0] == 0.0


def test_azure_timestamps_become_ms_from_the_first_row_at_microsecond_precision(tmp_path):
    p = tmp_path / "az.csv"
    p.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,10,2\n"
        "2023-11-16 18:15:46.6815900,20,3\n"
        "2023-11-16 18:16:46.6805900,30,4\n"
    )
    raw = traces.read_raw(p, "azure_llm")
    assert raw.arrival_ms.tolist() == [0.0, 1.0, 60_000.0]
    p.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-05-10 00:00:00.009930+00:00,1,1\n2024-05-10 00:00:02.509930+00:00,1,1\n"
    )
    assert traces.read_raw(p).arrival_ms.tolist() == [0.0, 2500.0]


def test_burstgpt_keep_failed(tmp_path):
    p = write_fixture("burstgpt", tmp_path / "b.csv", rows=400, seed=3)
    frame = pd.read_csv(p)
    assert len(traces.read_raw(p, keep_failed=True)) == len(frame)
    kept = traces.read_raw(p)
    assert len(kept) == int((frame["Response tokens"] > 0).sum())
    assert (kept.tokens["output_tokens"] > 0).all()


UNSORTED = {
    "azure_llm": "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:47.0,20,2\n2023-11-16 18:15:46.0,10,1\n2023-11-16 18:15:48.0,30,3\n",
    "burstgpt": "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
    "6,GPT-4,20,2,22,API log\n5,ChatGPT,10,1,11,API log\n7,ChatGPT,30,3,33,API log\n",
    "mooncake": '{"timestamp": 1000, "input_length": 20, "output_length": 2, "hash_ids": [1]}\n'
    '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [2]}\n'
    '{"timestamp": 2000, "input_length": 30, "output_length": 3, "hash_ids": [3]}\n',
    "csv": "arrival_ms,model,input_tokens,output_tokens\n1000,a,20,2\n0,a,10,1\n2000,a,30,3\n",
}


@pytest.mark.parametrize("fmt", sorted(UNSORTED))
def test_unsorted_timestamps_are_sorted_with_their_rows(tmp_path, fmt):
    p = tmp_path / ("t.jsonl" if fmt == "mooncake" else "t.csv")
    p.write_text(UNSORTED[fmt])
    raw = traces.read_raw(p, fmt)
    assert raw.arrival_ms.tolist() == [0.0, 1000.0, 2000.0]
    assert raw.tokens["input_tokens"].tolist() == [10, 20, 30]
    assert raw.tokens["output_tokens"].tolist() == [1, 2, 3]
    if fmt == "burstgpt":
        assert [raw.sources[c] for c in raw.source] == ["ChatGPT", "GPT-4", "ChatGPT"]


MALFORMED = {
    "azure_llm": (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.1,10,1\nyesterday,5,1\n",
        "line 3",
    ),
    "burstgpt": (
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n5,ChatGPT,ten,1,11,API log\n",
        "line 2",
    ),
    "mooncake": (
        '{"timestamp": 0, "input_length": 10, "output_length": 1}\n{"timestamp": 5, "input_le',
        "JSON",
    ),
    "csv": ("arrival_ms,model,input_tokens\n0,a,-3\n", "line 2"),
}


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_malformed_files_name_the_field_and_the_line(tmp_path, fmt):
    text, where = MALFORMED[fmt]
    p = tmp_path / ("bad.jsonl" if fmt == "mooncake" else "bad.csv")
    p.write_text(text)
    with pytest.raises(SpecError) as exc:
        traces.read_raw(p, fmt)
    assert exc.value.field == "workload.arrival.file"
    assert where in str(exc.value)


def test_a_wrong_format_named_explicitly_says_what_the_file_looks_like():
    with pytest.raises(SpecError) as exc:
        traces.read_raw(TRACES / "burstgpt.csv", "azure_llm")
    msg = str(exc.value)
    assert exc.value.field == "workload.arrival.file"
    assert "TIMESTAMP" in msg and "looks like burstgpt" in msg
    with pytest.raises(SpecError, match="looks like azure_llm"):
        traces.read_raw(TRACES / "azure_conv_2023.csv", "mooncake")
    with pytest.raises(SpecError, match="looks like mooncake"):
        traces.read_raw(TRACES / "mooncake.jsonl", "csv")


def test_auto_on_an_unknown_file_lists_the_known_formats(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("when,what\n1,2\n")
    with pytest.raises(SpecError) as exc:
        traces.read_raw(p)
    msg = str(exc.value)
    assert "['when', 'what']" in msg
    for fmt in traces.FORMATS:
        assert fmt in msg
    (tmp_path / "y.jsonl").write_text('{"ts": 1}\n')
    with pytest.raises(SpecError, match="JSON keys"):
        traces.read_raw(tmp_path / "y.jsonl")
    (tmp_path / "empty.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(SpecError, match="no rows"):
        traces.read_raw(tmp_path / "empty.csv")
    with pytest.raises(SpecError) as exc:
        traces.read_raw(tmp_path / "empty.csv", "parquet")
    assert exc.value.field == "workload.arrival.format"


def test_reading_in_chunks_keeps_model_names_straight(tmp_path, monkeypatch):
    p = write_fixture("burstgpt", tmp_path / "b.csv", rows=1000, seed=5)
    whole = traces.read_raw(p)
    monkeypatch.setattr(trace_files, "CHUNK_ROWS", 7)
    chunked = traces.read_raw(p)
    assert np.array_equal(whole.arrival_ms, chunked.arrival_ms)
    names = lambda r: [r.sources[c] for c in r.source]  # noqa: E731
    assert names(whole) == names(chunked)
    m = write_fixture("mooncake", tmp_path / "m.jsonl", rows=50, seed=5)
    assert np.array_equal(
        traces.read_raw(m).tokens["input_tokens"], whole_m := traces.read_raw(m).tokens["input_tokens"]
    )
    assert whole_m.size == 50


# -- options, in a scenario ------------------------------------------------------------------
def _scenario(arrival: dict, models: dict | None = None, **extra) -> dict:
    models = models or {
        "chat": {"service_time": {"dist": "tokens", "base_ms": 10, "per_output_token_ms": 0.5}}
    }
    return {
        "models": models,
        "instances": [{"model": m, "count": 2} for m in models],
        "workload": {"arrival": {"process": "trace", **arrival}},
        **extra,
    }


def test_window_speedup_and_max_tasks():
    file = str(TRACES / "azure_conv_2023.csv")
    full = sim.load_scenario(_scenario({"file": file})).trace
    scn = sim.load_scenario(_scenario({"file": file, "start_s": 10, "duration_s": 20, "speedup": 2.0}))
    t = full.arrival_ms
    inside = (t >= 10_000) & (t < 30_000)
    assert np.allclose(scn.trace.arrival_ms, (t[inside] - 10_000) / 2.0)
    assert scn.trace.tokens["input_tokens"].tolist() == full.tokens["input_tokens"][inside].tolist()
    assert scn.arrival["format"] == "azure_llm"  # auto resolved in the normalised scenario
    few = sim.load_scenario(_scenario({"file": file, "max_tasks": 25}))
    assert len(few.trace) == 25
    assert sim.load_scenario(few.to_dict()) == few
    with pytest.raises(SpecError, match="spans"):
        sim.load_scenario(_scenario({"file": file, "start_s": 10_000}))
    for key, bad in (
        ("speedup", 0),
        ("start_s", -1),
        ("max_tasks", 0),
        ("keep_failed", "yes"),
        ("format", "x"),
    ):
        with pytest.raises(SpecError) as exc:
            sim.load_scenario(_scenario({"file": file, key: bad}))
        assert exc.value.field == f"workload.arrival.{key}"


def test_models_option_one_model_a_mapping_or_a_mix():
    two = {
        "a": {"service_time": {"dist": "exponential", "mean_ms": 10}},
        "b": {"service_time": {"dist": "exponential", "mean_ms": 10}},
    }
    burst = str(TRACES / "burstgpt.csv")
    scn = sim.load_scenario(_scenario({"file": burst, "models": {"ChatGPT": "a", "GPT-4": "b"}}, two))
    src = np.array(scn.trace.sources)[scn.trace.source]
    assert (scn.trace.model[src == "ChatGPT"] == "a").all() and (scn.trace.model[src == "GPT-4"] == "b").all()
    assert set(sim.load_scenario(_scenario({"file": burst, "models": "b"}, two)).trace.model) == {"b"}
    mix = _scenario(
        {"file": str(TRACES / "mooncake.jsonl"), "models": {"mix": {"a": 0.5, "b": 0.5}}}, two, seed=4
    )
    first, again = sim.load_scenario(mix).trace.model, sim.load_scenario(mix).trace.model
    assert first.tolist() == again.tolist() and 0.3 < np.mean(first == "a") < 0.7  # drawn with the seed
    with pytest.raises(SpecError) as exc:  # two models, no model column, no choice
        sim.load_scenario(_scenario({"file": str(TRACES / "mooncake.jsonl")}, two))
    assert exc.value.field == "workload.arrival.models"
    with pytest.raises(SpecError) as exc:  # an unmapped trace model
        sim.load_scenario(_scenario({"file": burst, "models": {"ChatGPT": "a"}}, two))
    assert "GPT-4" in str(exc.value)
    with pytest.raises(SpecError) as exc:
        sim.load_scenario(_scenario({"file": burst, "models": {"ChatGPT": "zzz"}}, two))
    assert exc.value.field == "workload.arrival.models.ChatGPT"
    with pytest.raises(SpecError, match="no model column"):
        sim.load_scenario(_scenario({"file": str(TRACES / "mooncake.jsonl"), "models": {"x": "a"}}, two))


@pytest.mark.parametrize("name", sorted(p.name for p in SCENARIOS.glob("*.yaml")))
def test_a_scenario_per_format_runs(name):
    res = sim.run(SCENARIOS / name, replications=1)
    t = res.tasks
    assert len(t) > 100 and t["latency_ms"].gt(0).all()
    assert {"input_tokens", "output_tokens", "class"} <= set(t.columns)
    assert t["input_tokens"].gt(0).all()


def test_every_format_has_a_scenario():
    formats = {sim.load_scenario(p).arrival["format"] for p in SCENARIOS.glob("*.yaml")}
    assert formats == set(traces.FORMATS)


def test_token_metadata_reaches_the_core():
    events = []
    res = sim.run(
        SCENARIOS / "burstgpt.yaml", replications=1, strategies=["round_robin"], recorder=events.append
    )
    submits = [e for e in events if e["event"] == "submit"]
    t = res.tasks.set_index("task_id")
    for e in submits[50:60]:
        row = t.loc[int(e["task_id"])]
        assert e["metadata"] == {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]}


def test_fixture_generator_writes_every_format(tmp_path, capsys):
    assert main([str(tmp_path), "40"]) == 0
    for name, kind in FIXTURES.items():
        fmt = "azure_llm" if kind.startswith("azure") else kind
        assert traces.detect_format(tmp_path / name) == fmt
    line = (tmp_path / "mooncake.jsonl").read_text().splitlines()[0]
    assert set(json.loads(line)) == {"timestamp", "input_length", "output_length", "hash_ids"}
    assert main([]) == 2


@pytest.mark.parametrize(
    "bad_line, found",
    [
        (
            '{"timestamp": 9, "input_length": -4, "output_length": 1, "hash_ids": []}',
            "input_length=-4 on line 3",
        ),
        ('{"timestamp": 9, "output_length": 1, "hash_ids": [1]}', "input_length=None on line 3"),
        ('{"timestamp": 9, "input_length": "many", "output_length": 1}', "input_length='many' on line 3"),
    ],
)
def test_mooncake_bad_values_are_reported_with_their_line(tmp_path, bad_line, found):
    good = '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1, 2]}\n'
    p = tmp_path / "m.jsonl"
    p.write_text(good + good + bad_line + "\n" + good)
    with pytest.raises(SpecError) as exc:
        traces.read_raw(p, "mooncake")
    assert found in str(exc.value)


def test_mooncake_blocks_split_lines_correctly(tmp_path, monkeypatch):
    p = write_fixture("mooncake", tmp_path / "m.jsonl", rows=500, seed=9)
    whole = traces.read_raw(p)
    monkeypatch.setattr(trace_files, "_JSON_BLOCK", 97)  # blocks far smaller than a line
    small = traces.read_raw(p)
    assert np.array_equal(whole.arrival_ms, small.arrival_ms)
    assert np.array_equal(whole.tokens["output_tokens"], small.tokens["output_tokens"])
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    assert whole.tokens["input_tokens"].tolist() == [r["input_length"] for r in rows]
