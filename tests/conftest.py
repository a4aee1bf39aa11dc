"""Test-session settings shared by every test file."""

from __future__ import annotations

import os

# `serve` keeps its state in ./scheduler-state.db unless told otherwise: no test may leave one in the
# repository, so every scheduler a test starts (in process or as a subprocess) keeps state in memory
# unless the test names a file (tmp_path) itself.
os.environ.setdefault("SCHEDULER_STATE_DB", "none")
