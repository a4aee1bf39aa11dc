"""Execute the notebooks in notebooks/ on small sizes; a cell that raises fails the test.

How the kernel is found: the test writes a kernel spec into a temporary folder
whose command is *this* interpreter (``sys.executable -m ipykernel_launcher``)
and hands nbclient a kernel manager that looks only in that folder.  So the
notebooks run in the project's virtualenv whatever kernels the machine (or
the user's ``~/.local/share/jupyter``) has installed, and nothing is
installed outside the temporary folder.

Each notebook reads its sizes from environment variables (``NB_SMALL=1``,
``NB_OUT``, ``TWIN_DIR``), which the kernel inherits from this process.  The
kernel starts in ``notebooks/``, as it does when a user opens the notebook in
Jupyter.

``test_sim_vs_live_runs_a_tiny_twin`` starts real task instances and a
scheduler on 127.0.0.1 (through ``sim.twin``), hence its ``e2e`` mark; it
takes the longest of these tests (tens of seconds on a loaded machine).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "infersched-test"
CELL_TIMEOUT_S = 120  # per cell; a generous bound, not a speed target


@pytest.fixture(scope="module")
def kernel_dirs(tmp_path_factory) -> list[str]:
    """A kernel spec folder holding one spec: this interpreter running ipykernel."""
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "infersched (test)",
                "language": "python",
            }
        )
    )
    return [str(folder)]


def execute(name: str, kernel_dirs: list[str]) -> nbformat.NotebookNode:
    """Run every cell of ``notebooks/<name>`` in a fresh kernel; return the executed notebook."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    km = AsyncKernelManager(
        kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs)
    )
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        startup_timeout=60,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError naming the cell and the exception
    return nb


def outputs(nb: nbformat.NotebookNode, cell_id: str) -> list:
    cells = [c for c in nb.cells if c.get("id") == cell_id]
    assert cells, f"no cell with id {cell_id!r}"
    return cells[0].get("outputs", [])


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_notebooks_are_committed_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{path.name}: cell {cell.get('id')} has outputs; clear them before committing"
                )


def test_latency_distributions(kernel_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("NB_SMALL", "1")
    monkeypatch.setenv("NB_OUT", str(tmp_path))
    nb = execute("latency_distributions.ipynb", kernel_dirs)
    written = {p.name for p in tmp_path.glob("*.png")}
    assert {"latency_cdf.png", "latency_percentiles.png", "sweep_p99.png", "utilization.png"} <= written
    # the sim.plot_* images plus the notebook's own matplotlib figures, shown inline
    assert images(nb) >= 7
    table = "".join(o.get("data", {}).get("text/plain", "") for o in outputs(nb, "run"))
    for strategy in ("shortest_queue", "round_robin"):
        assert strategy in table


def fake_twin_dir(folder: Path) -> Path:
    """A folder holding a twin run's files in which both "worlds" are simulated, with two seeds.

    Written with the public API only; it exercises every reading and plotting
    path of sim_vs_live without starting live servers."""
    import numpy as np
    import pandas as pd

    import sim

    scenario = sim.load_scenario(ROOT / "examples" / "scenarios" / "demo.yaml").with_changes(
        {"warmup_tasks": 50}
    )
    strategies = ["shortest_queue", "round_robin"]
    folder.mkdir()
    runs = {
        world: sim.run(
            scenario.with_changes({"seed": seed}), strategies=strategies, replications=1, tasks=600
        )
        for world, seed in (("live", 1), ("sim", 2))
    }
    for world, res in runs.items():
        res.tasks.to_csv(folder / f"{world}_tasks.csv", index=False)
        res.summary.to_csv(folder / f"{world}_summary.csv", index=False)
    rows = []
    for strategy in strategies:
        for p in (50, 95, 99):
            live_ms, sim_ms = (
                float(
                    np.percentile(runs[w].tasks.loc[runs[w].tasks["strategy"] == strategy, "latency_ms"], p)
                )
                for w in ("live", "sim")
            )
            rows.append(
                {
                    "strategy": strategy,
                    "percentile": f"p{p}",
                    "live_ms": live_ms,
                    "sim_ms": sim_ms,
                    "relative_difference": (sim_ms - live_ms) / live_ms,
                }
            )
    pd.DataFrame(rows).to_csv(folder / "comparison.csv", index=False)
    return folder


def test_sim_vs_live_reads_a_twin_folder(kernel_dirs, tmp_path, monkeypatch):
    folder = fake_twin_dir(tmp_path / "twin")
    monkeypatch.setenv("NB_SMALL", "1")
    monkeypatch.setenv("TWIN_DIR", str(folder))
    nb = execute("sim_vs_live.ipynb", kernel_dirs)
    setup = "".join(o.get("text", "") for o in outputs(nb, "setup"))
    assert "no twin run" not in setup  # it read the folder, it did not run a twin of its own
    assert images(nb) >= 3  # CDF panels, percentile bars, QQ plot
    table = "".join(o.get("data", {}).get("text/plain", "") for o in outputs(nb, "pct"))
    assert "shortest_queue" in table and "p99" in table
    # the fake folder has no hops: the calibration section reads the run shipped in examples/runs
    report = "".join(o.get("text", "") for o in outputs(nb, "calibration"))
    assert "twin_hetero_small" in report and "per-task latency MAPE" in report and "Kendall's tau" in report
    ranking = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs(nb, "ranking")
    )
    assert "calibrated, by mean latency: Kendall's tau" in ranking and "probabilistic" in ranking


@pytest.mark.e2e
def test_sim_vs_live_runs_a_tiny_twin(kernel_dirs, tmp_path, monkeypatch):
    """The slowest test here: with no twin run in TWIN_DIR the notebook runs one (sim.twin: real task
    instances and a scheduler on 127.0.0.1, 60 tasks per strategy, two strategies)."""
    folder = tmp_path / "twin"
    monkeypatch.setenv("NB_SMALL", "1")
    monkeypatch.setenv("TWIN_DIR", str(folder))
    nb = execute("sim_vs_live.ipynb", kernel_dirs)
    for name in ("live_tasks.csv", "sim_tasks.csv", "comparison.csv", "live_summary.csv", "sim_summary.csv"):
        assert (folder / name).is_file(), name
    assert images(nb) >= 3
    setup = "".join(o.get("text", "") for o in outputs(nb, "setup"))
    assert "no twin run" in setup


def test_trace_replay(kernel_dirs, monkeypatch):
    monkeypatch.setenv("NB_SMALL", "1")
    nb = execute("trace_replay.ipynb", kernel_dirs)
    assert images(nb) >= 3  # arrival rate, latency over time, attainment per class
    table = "".join(o.get("data", {}).get("text/plain", "") for o in outputs(nb, "run"))
    assert "regression" in table and "online" in table and "shortest_queue" in table
    classes = "".join(o.get("data", {}).get("text/plain", "") for o in outputs(nb, "classes"))
    assert "interactive" in classes and "batch" in classes
