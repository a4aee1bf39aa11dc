"""LiveScheduler: the service itself; its lifecycle (recovery, start-up registration, the
background loops), its settings (strategy, predict mode) and its read-only queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ...core import QueueInfo, SpecError, TaskRecord, UnknownStrategyError
from ..config import base_url
from ..modes import LIVE_MODES, LIVE_PREDICT_MODES, mode_to_api
from .polling import Polling
from .recovery import recover
from .state import Refused

log = logging.getLogger("scheduler.live")


class LiveScheduler(Polling):
    """The scheduler service: registration, dispatch with retries, health checks, watchdog."""

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Bring back what the state store kept (re-probing its instances and reconciling its
        tasks), register the configured instances, then start the health loop and the watchdog."""
        log.info("state store: %s", self.store.description)
        if not self._restored:
            self._restored = True
            await recover(self, self.store.load())
        known = {e.base_url for e in self._entries.values() if self.core.has_instance(e.ti_uuid)}
        wanted = [a for a in self.config.instances if base_url(a.host, a.port) not in known]
        results = await asyncio.gather(
            *(self.register(a.host, a.port, a.model_name) for a in wanted),
            return_exceptions=True,
        )
        for addr, res in zip(wanted, results):
            if isinstance(res, BaseException):
                log.error("startup registration of %s:%s failed: %s", addr.host, addr.port, res)
        self._loops = [
            asyncio.create_task(self._every(self.config.health_interval_s, self.check_health), name="health"),
            asyncio.create_task(
                self._every(self.config.watchdog_interval_s, self.check_overdue), name="watchdog"
            ),
            asyncio.create_task(self._every(self.config.poll_interval_s, self.poll_results), name="poll"),
        ]
        log.info(
            "scheduler ready: strategy %s, predict mode %s, %d instance(s), callbacks to %s",
            self.core.strategy_name,
            self.predict_mode,
            len(self._entries),
            self.callback_url,
        )

    async def stop(self) -> None:
        for t in self._loops + list(self._background):
            t.cancel()
        for t in self._loops + list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._loops = []
        await self.client.aclose()
        self.store.close()
        if self.decision_log is not None:
            # detach first: a completion arriving during shutdown must not write to a closed file
            self.core.recorder = None
            self.decision_log.close()
            log.info("decision log closed: %d events in %s", self.decision_log.events, self.decision_log.path)

    @staticmethod
    async def _every(interval_s: float, job) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await job()
            except Exception:  # a background loop must survive a bug in one round
                log.exception("background job %s failed", job.__name__)

    # -- configuration ---------------------------------------------------------
    def set_strategy(self, name: str, params: dict | None = None) -> None:
        try:
            self.core.set_strategy(name, **(params or {}))
        except UnknownStrategyError as e:
            raise Refused(f"unknown strategy {name!r}; valid names: {', '.join(e.valid)}") from None
        except SpecError as e:
            raise Refused(f"invalid parameters for strategy {name!r}: {e}") from None
        self.store.put_setting("strategy", {"name": name, "params": dict(params or {})})
        log.info("strategy is now %s %s", name, self.core.strategy.params())

    @property
    def predict_mode(self) -> str:
        """The predictor mode as clients see it (the API's name: ``default`` for the core's ``online``)."""
        return mode_to_api(self.core.predict_mode)

    def set_predict_mode(self, mode: str) -> None:
        """Switch the core's predictor to ``mode``, one of :data:`LIVE_MODES` (the core's names)."""
        if mode not in LIVE_MODES:
            raise Refused(
                f"unknown predict mode {mode_to_api(mode)!r}; valid modes: {', '.join(LIVE_PREDICT_MODES)}"
            )
        if mode == "lookup_table" and not self.core.predictor.table:
            raise Refused(
                "predict mode 'lookup_table' needs a lookup table, and none is configured; start the "
                "scheduler with --lookup-table FILE (or SCHEDULER_LOOKUP_TABLE=FILE)"
            )
        self.core.set_predict_mode(mode)
        self.store.put_setting("predict_mode", mode)
        log.info("predict mode is now %s", mode_to_api(mode))

    # -- queries ---------------------------------------------------------------
    def queue_info(self, model: str | None = None) -> list[QueueInfo]:
        return self.core.queue_info(model)

    def task(self, task_id: str) -> TaskRecord | None:
        return self.core.task(task_id)
