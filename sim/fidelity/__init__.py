"""Fidelity tools: the simulator and live mode side by side.

The only part of :mod:`sim` that imports live mode (:mod:`scheduler.live`) and
its HTTP stack; the simulator proper never imports it, and ``import sim``
loads it only when one of these names is first used (``sim.drive``,
``sim.twin``, ...).

- :mod:`sim.fidelity.drive`: a scenario's workload replayed in real time
  against a running scheduler, measured into the simulator's tables;
- :mod:`sim.fidelity.twin`: every strategy run live and simulated on the same
  workload, latency percentiles compared;
- :mod:`sim.fidelity.replay`: decision logs of either shell fed back through
  the core, every decision checked;
- :mod:`sim.fidelity.calibrate`: a scenario fitted to a twin run's live records
  (network delays, service times, speeds), and how well it reproduces the run
  (:mod:`sim.fidelity.calibrate_report`);
- :mod:`sim.fidelity.commands`: ``python -m sim drive|twin|replay|calibrate``.
"""

from .calibrate import Calibration, calibrate
from .calibrate_report import Evaluation
from .drive import DriveError, DriveResult, drive
from .replay import RunReplay, replay_file
from .twin import TwinResult, twin

__all__ = [
    "Calibration",
    "DriveError",
    "DriveResult",
    "Evaluation",
    "RunReplay",
    "TwinResult",
    "calibrate",
    "drive",
    "replay_file",
    "twin",
]
