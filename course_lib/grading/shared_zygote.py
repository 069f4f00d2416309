"""The zygote's lifetime in a grading process: one per process, started on first use, closed at exit.

:func:`shared_zygote` is what :class:`.execute.TrustedExecute` asks for each notebook; a sequential
``nbgrader autograde`` keeps the same zygote for the whole run, and each worker of the parallel
grader keeps its own between submissions (:mod:`.parallel_worker`), which reads its report with
:func:`shared_report` and closes it with :func:`close_shared_zygote`.
"""
from __future__ import annotations

import atexit
from typing import Any

from .grader.zygote import Zygote
from .limits import Limits

__all__ = ["shared_zygote", "close_shared_zygote", "shared_report"]

_ZYGOTE: dict[str, Any] = {"key": None, "zygote": None}


def shared_zygote(limits: Limits, hide: list[str], keep: list[str], preload: list[str], log) -> Zygote:
    """This process's zygote: one per grading run (it is slow to start: it imports torch), restarted if its
    settings change; started (and its report logged to ``log``) if it is not running."""
    key = (limits, tuple(hide), tuple(keep))
    if _ZYGOTE["key"] != key or _ZYGOTE["zygote"] is None:
        if _ZYGOTE["zygote"] is not None:
            _ZYGOTE["zygote"].close()
        _ZYGOTE["zygote"] = Zygote(limits, hide=hide, keep=keep, preload=preload)
        _ZYGOTE["key"] = key
    zygote = _ZYGOTE["zygote"]
    if not zygote.alive:
        log.info("Starting the grading sandbox (it imports %s once)", ", ".join(preload))
        zygote.ensure()
        for line in zygote.report:
            (log.warning if line.startswith("NOT") else log.info)("sandbox: %s", line)
    missing = [m for m in preload if m not in zygote.preload]
    if missing:
        zygote.import_modules(missing)
        zygote.preload += missing
    return zygote


@atexit.register
def close_shared_zygote() -> None:
    """Close this process's zygote (at exit, and when a Dask worker shuts down)."""
    if _ZYGOTE["zygote"] is not None:
        _ZYGOTE["zygote"].close()
    _ZYGOTE["zygote"] = None
    _ZYGOTE["key"] = None


def shared_report() -> list[str]:
    """What this process's zygote reported about its isolation (``"NOT ISOLATED ..."`` lines and the rest)."""
    zygote = _ZYGOTE["zygote"]
    return list(zygote.report) if zygote is not None else []
