"""DESIGN.md's import rule: importing the core loads no shell library."""

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
