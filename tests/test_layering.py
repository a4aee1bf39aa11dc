"""The import rules between the rooms (docs/architecture.md), each checked in a fresh interpreter.

- the core (``scheduler.core``) imports only the standard library and numpy;
- the simulator (``sim`` outside ``sim.fidelity``) imports no web stack
  (fastapi, uvicorn, httpx, starlette) and no live mode (``scheduler.live``);
- ``scheduler.instance`` does not import ``scheduler.live`` (they share ``scheduler.protocol``);
- ``scheduler.live`` does not import ``sim``.

Each check imports the room (and, for the simulator, runs it) in a new
process and compares ``sys.modules`` with what is allowed; the last three also
read every import statement of the room's source, so an import inside a
function that no test runs is caught too.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SHELLS = ("simpy", "pandas", "matplotlib", "fastapi", "uvicorn", "httpx", "starlette", "pydantic")
WEB = ("fastapi", "uvicorn", "httpx", "starlette", "scheduler.live")


def _loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running ``code`` (not before it)."""
    script = "import sys\nbefore = set(sys.modules)\n" + textwrap.dedent(code)
    script += "\nafter = set(sys.modules)\nimport json\nprint(json.dumps(sorted(after - before)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_core_imports_only_the_standard_library_and_numpy():
    loaded = _loaded_by("""
        import scheduler.core
        s = scheduler.core.Scheduler("probabilistic", clock=scheduler.core.ManualClock(), rng=0)
        s.add_instance("m")
        s.submit("m")
    """)
    # the package root runs first: ``scheduler`` itself and the stdlib-only decision-log file I/O
    ours = ("scheduler.core", "numpy")
    root = ("scheduler", "scheduler.decision_log")
    stdlib = sys.stdlib_module_names
    cython = ("cython_runtime", "_cython_")  # the runtime of numpy's compiled extensions
    foreign = [
        m
        for m in loaded
        if not (_within(m, ours) or m in root or m.split(".")[0] in stdlib or m.startswith(cython))
    ]
    assert foreign == [], f"the core loaded modules outside the standard library and numpy: {foreign}"
    assert not [m for m in loaded if _within(m, SHELLS)]


def test_the_simulator_imports_no_web_stack_and_no_live_mode():
    loaded = _loaded_by("""
        import pkgutil, importlib
        import sim
        for info in pkgutil.iter_modules(sim.__path__, "sim."):  # not walk_packages: it imports subpackages
            if info.name not in ("sim.__main__", "sim.fidelity"):
                importlib.import_module(info.name)
        scenario = {
            "tasks": 200, "warmup_tasks": 20, "strategies": ["shortest_queue", "random"],
            "models": {"m": {"service_time": {"dist": "exponential", "mean_ms": 10}}},
            "instances": [{"model": "m", "count": 2}],
            "workload": {"arrival": {"process": "poisson", "rate_per_s": 100}},
        }
        res = sim.run(scenario)
        sim.report.format_summary(res.summary)
        sim.cli.main(["strategies"])
    """)
    web = [m for m in loaded if _within(m, WEB)]
    assert web == [], f"sim (outside sim.fidelity) loaded the web stack or live mode: {web}"
    assert not [m for m in loaded if _within(m, ("sim.fidelity",))]
    import sim

    root = Path(sim.__file__).parent
    for path, names in _imports_in_source("sim").items():
        if Path(path).relative_to(root).parts[0] != "fidelity":  # also imports inside functions
            assert [n for n in names if _within(n, WEB)] == [], path


def test_the_fidelity_tools_load_on_first_use():
    loaded = _loaded_by("import sim\nsim.drive\n")
    assert "sim.fidelity" in loaded and "scheduler.live" in loaded


def test_core_source_uses_no_wall_clock_or_global_random():
    import pathlib

    import scheduler.core

    root = pathlib.Path(scheduler.core.__file__).parent
    banned = (
        "import time",
        "time.time(",
        "datetime.now",
        "import random",
        "np.random.seed",
        "np.random.rand(",
        "sleep(",
        "open(",
        "uuid4(",
    )
    for path in root.rglob("*.py"):
        text = path.read_text()
        for word in banned:
            assert word not in text, f"{path.name} contains {word!r}"


def _modules_loaded_by(package: str) -> set[str]:
    """In a fresh interpreter, import ``package`` and every module under it; the modules then loaded."""
    code = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        pkg = importlib.import_module({package!r})
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(info.name)
        print("\\n".join(sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _imports_in_source(package: str) -> dict[str, set[str]]:
    """Every module each file under ``package`` names in an import statement (also inside
    functions), relative imports resolved: what an import test would miss until the function runs."""
    import ast
    import importlib
    import pathlib

    root = pathlib.Path(importlib.import_module(package).__file__).parent
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        here = [*package.split("."), *path.relative_to(root).parent.parts]  # the file's package
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                mod = ".".join([*base, node.module] if node.module else base)
                names.add(mod)
                names.update(f"{mod}.{a.name}" for a in node.names)
        found[str(path)] = names
    return found


def _forbidden(names, banned: str) -> list[str]:
    return sorted(n for n in names if n == banned or n.startswith(banned + "."))


def test_instance_does_not_import_live():
    """The reference instance and the scheduler service share scheduler.protocol, nothing else."""
    assert _forbidden(_modules_loaded_by("scheduler.instance"), "scheduler.live") == []
    for path, names in _imports_in_source("scheduler.instance").items():
        assert _forbidden(names, "scheduler.live") == [], path


def test_live_does_not_import_sim():
    assert _forbidden(_modules_loaded_by("scheduler.live"), "sim") == []
    for path, names in _imports_in_source("scheduler.live").items():
        assert _forbidden(names, "sim") == [], path
