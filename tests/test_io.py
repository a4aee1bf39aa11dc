"""sim.io: Parquet and CSV tables, the auto choice, streams, reading a folder back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
import sim.io as io
from sim.io import ParquetStream, TableStream, load_results, write_table

SCENARIO = {
    "name": "io",
    "seed": 2,
    "tasks": 400,
    "warmup_tasks": 50,
    "strategies": ["random", "round_robin"],
    "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 50}}},
    "instances": [{"model": "m", "count": 2}],
    "workload": {"arrival": {"process": "poisson", "rate_per_s": 20}},
}


def test_auto_format_switches_to_parquet_above_the_threshold(tmp_path, monkeypatch):
    df = pd.DataFrame({"x": np.arange(10, dtype=float) / 3})
    assert [p.name for p in write_table(df, tmp_path, "small")] == ["small.csv"]
    monkeypatch.setattr(io, "PARQUET_ABOVE", 5)
    assert [p.name for p in write_table(df, tmp_path, "big")] == ["big.parquet"]
    assert [p.name for p in write_table(df, tmp_path, "b", "both")] == ["b.parquet", "b.csv"]
    with pytest.raises(ValueError, match="format: expected one of auto, parquet, csv, both"):
        write_table(df, tmp_path, "x", "feather")


def test_results_round_trip_through_parquet_exactly(tmp_path):
    res = sim.run(SCENARIO)
    paths = res.save(tmp_path, "both")
    assert {"tasks", "tasks.parquet", "summary", "summary.parquet"} <= set(paths)
    back = load_results(tmp_path)
    assert set(back) == {"tasks", "summary", "instances", "replications"}
    assert back.files["tasks"].suffix == ".parquet"  # preferred over the CSV
    pd.testing.assert_frame_equal(back.tasks, res.tasks, check_exact=True)
    pd.testing.assert_frame_equal(back["summary"], res.summary, check_exact=True)
    csv_only = tmp_path / "csv"
    res.save(csv_only, "csv")
    assert np.allclose(load_results(csv_only).tasks["latency_ms"], res.tasks["latency_ms"], atol=1e-6)
    with pytest.raises(AttributeError, match="no nothing.parquet"):
        back.nothing  # noqa: B018


def test_load_results_of_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_results(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no .parquet or .csv"):
        load_results(tmp_path)


def test_streams_append_row_groups(tmp_path):
    import pyarrow.parquet as pq

    a = pd.DataFrame({"s": pd.Categorical(["x", "y"]), "v": [1.0, 2.0]})
    b = pd.DataFrame({"s": pd.Categorical(["z"]), "v": [3.0]})
    with ParquetStream(tmp_path / "t.parquet") as s:
        s.write(a)
        s.write(b)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 2
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["s"].tolist() == ["x", "y", "z"] and back["v"].tolist() == [1.0, 2.0, 3.0]
    with TableStream(tmp_path / "d", "t", "csv") as t:
        t.write(a)
        t.write(b)
    assert pd.read_csv(tmp_path / "d" / "t.csv")["s"].tolist() == ["x", "y", "z"]
