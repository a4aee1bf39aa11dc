"""docs/architecture.md's import rule: importing the core loads no shell library."""

import subprocess
import sys
import textwrap

SHELLS = ("simpy", "pandas", "matplotlib", "fastapi", "uvicorn", "httpx", "starlette", "pydantic")


def test_import_scheduler_loads_no_shell():
    code = textwrap.dedent(f"""
        import sys
        import scheduler, scheduler.core
        s = scheduler.Scheduler("probabilistic", clock=scheduler.ManualClock(), rng=0)
        s.add_instance("m")
        s.submit("m")
        print(",".join(m for m in {SHELLS!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


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
