"""Where the units of a sweep run: inline, on local processes, or on a Dask cluster.

:func:`run_units` calls one top-level function on a list of argument tuples
and yields ``(index, result)`` as each call finishes, in whatever order they
finish.  The caller orders the results; nothing depends on which process ran
a call or when (every call is a pure function of its arguments).

``cluster`` chooses the engine:

- ``None``: the address in ``DASK_SCHEDULER_ADDRESS`` if that is set, else
  local processes (``concurrent.futures``; ``processes=1`` runs every call
  inline, in this process).  Dask is not imported on this path.
- ``"local"``: a ``distributed.LocalCluster`` of ``processes`` single-threaded
  worker processes, its scheduler, workers and dashboard bound to 127.0.0.1,
  started for this call and closed after it.
- ``"tcp://host:port"`` (or any Dask address): a running Dask scheduler, as
  started by ``dask scheduler``; its workers must be able to import ``sim``.

A worker that dies mid-sweep loses nothing: Dask runs the calls it held
again elsewhere (up to ``distributed.scheduler.allowed-failures`` times per
call), and since each call is pure the result is the same.  On Ctrl-C
(``KeyboardInterrupt`` while waiting) every call not yet finished is
cancelled on the cluster, the cluster's client is closed and the interrupt
is raised again; what was yielded before is the caller's to keep.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["run_units", "resolve_cluster", "ADDRESS_ENV", "LOCAL"]

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 30  # to reach a running scheduler
LOCAL = "local"


def resolve_cluster(cluster: str | None) -> str | None:
    """``None`` (local processes), ``"local"`` (a LocalCluster) or a scheduler address.

    ``None`` becomes ``$DASK_SCHEDULER_ADDRESS`` when that is set.  An address
    needs a ``scheme://`` prefix (``tcp://``, ``tls://``...), so a typo is
    not taken for a host name.
    """
    if cluster is None:
        env = os.environ.get(ADDRESS_ENV, "").strip()
        return env or None
    if not isinstance(cluster, str) or not cluster.strip():
        raise ValueError(
            f"cluster: expected None, {LOCAL!r} or a Dask scheduler address like 'tcp://10.0.0.5:8786', "
            f"got {cluster!r}"
        )
    cluster = cluster.strip()
    if cluster != LOCAL and "://" not in cluster:
        raise ValueError(
            f"cluster: expected None, {LOCAL!r} or a Dask scheduler address with its scheme, "
            f"like 'tcp://10.0.0.5:8786', got {cluster!r}"
        )
    return cluster


def run_units(
    fn: Callable[..., Any],
    args: Sequence[tuple],
    *,
    cluster: str | None = None,
    processes: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(i, fn(*args[i]))`` for every ``i``, as the calls finish (see the module doc).

    ``processes``: local worker processes for ``cluster=None`` or ``"local"``
    (default ``min(os.cpu_count(), len(args))``); ignored for an address.
    """
    target = resolve_cluster(cluster)
    if processes is None:
        processes = min(os.cpu_count() or 1, max(len(args), 1))
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(
            f"processes: expected an integer >= 1 (or None for min(cpu_count, units)), got {processes!r}"
        )
    if not args:
        return iter(())
    if target is None:
        return _local(fn, args, min(processes, len(args)))
    return _dask(fn, args, target, processes)


def _local(fn: Callable[..., Any], args: Sequence[tuple], processes: int) -> Iterator[tuple[int, Any]]:
    if processes == 1:
        log.info("running %d units inline", len(args))
        for i, a in enumerate(args):
            yield i, fn(*a)
        return
    log.info("running %d units on %d local processes", len(args), processes)
    pool = ProcessPoolExecutor(max_workers=processes)
    try:
        index = {pool.submit(fn, *a): i for i, a in enumerate(args)}
        pending = set(index)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=index.__getitem__):
                yield index[f], f.result()
    finally:
        # on Ctrl-C (or an error) drop what has not started; running calls end with the pool
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(
    fn: Callable[..., Any], args: Sequence[tuple], target: str, processes: int
) -> Iterator[tuple[int, Any]]:
    try:  # local: distributed takes ~0.6 s to import, and only cluster runs need it
        from distributed import Client, LocalCluster, as_completed
    except ModuleNotFoundError as e:  # pragma: no cover - a dependency of the project
        raise RuntimeError(f"cluster={target!r} needs Dask: pip install distributed ({e})") from e

    local = None
    if target == LOCAL:
        local = LocalCluster(
            n_workers=min(processes, len(args)),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        )
        client = Client(local)
        where = f"a LocalCluster of {len(local.workers)} processes"
    else:
        client = Client(target, timeout=f"{CONNECT_TIMEOUT_S}s")
        where = f"the Dask cluster at {target}"
    log.info("running %d units on %s", len(args), where)
    futures: list[Any] = []
    try:
        token = uuid.uuid4().hex[:12]
        futures = [
            client.submit(fn, *a, key=f"sim-unit-{token}-{i}", pure=False, retries=0)
            for i, a in enumerate(args)
        ]
        index = {f.key: i for i, f in enumerate(futures)}
        for f in as_completed(futures):
            result = f.result()
            f.release()
            yield index[f.key], result
    finally:
        # normal end: nothing left; Ctrl-C or an error: stop the cluster's work on this sweep
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            log.warning("cancelling %d unfinished units on %s", len(unfinished), where)
            client.cancel(unfinished)
        client.close()
        if local is not None:
            local.close()
