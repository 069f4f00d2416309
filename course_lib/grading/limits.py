"""What one sandboxed worker may use: every limit of the sandbox, defined here once.

:class:`Limits` is what the grader passes to :class:`.grader.zygote.Zygote` and what the zygote and
its workers receive (:mod:`.sandboxed`); :class:`.execute.TrustedExecute` has one configurable trait
per field, with these defaults (``c.TrustedExecute.<field> = ...`` in ``nbgrader_config.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from . import protocol

__all__ = ["Limits", "LIMIT_HELP"]


@dataclass(frozen=True)
class Limits:
    """What one worker (one graded part of one submission) may use.

    Times are seconds; sizes bytes. ``call_timeout`` and ``cell_timeout`` are wall-clock limits the
    trusted side enforces; the others are kernel limits set in the worker with soft = hard.
    """

    call_timeout: float = 60.0          # one call of the student's function
    cell_timeout: float = 120.0         # one notebook cell while the student's notebook is run
    submission_seconds: float = 600.0   # wall time for all graded parts of one submitted notebook
    cpu_seconds: int = 600              # RLIMIT_CPU: the whole worker, cells and calls
    memory_bytes: int = 6 * 2**30       # RLIMIT_AS: address space (torch + keras map ~1 GiB)
    processes: int = 64                 # RLIMIT_NPROC, for the worker's own user id (threads count)
    file_bytes: int = 64 * 2**20        # RLIMIT_FSIZE: any one file written
    open_files: int = 1024              # RLIMIT_NOFILE
    tmp_bytes: int = 256 * 2**20        # size of each private tmpfs (/tmp, /var/tmp, /dev/shm)
    resident_bytes: int = 6 * 2**30     # memory cgroup: the worker's whole tree, shared memory included
    uid_base: int = 2_000_000_000       # as root, each live sandbox runs as its own uid (= gid) from
    uid_count: int = 4096               # uid_base .. uid_base + uid_count - 1, held with a lock file
    message_bytes: int = 64 * 2**20     # largest reply the trusted side reads; also the notebook's code, sent whole
    max_cells: int = 50_000             # most code cells a notebook may have to be graded

    def wire(self) -> protocol.WireLimits:
        return protocol.WireLimits(max_bytes=self.message_bytes)

    def cells_wire(self) -> protocol.WireLimits:
        """The limits of the one message that carries the notebook's cells: every cell whole, never cut."""
        return protocol.WireLimits(max_bytes=self.message_bytes, max_header=self.message_bytes,
                                   max_str=self.message_bytes, max_nodes=3 * self.max_cells + 3)


#: One line per field, for the configurable traits of :class:`.execute.TrustedExecute`.
LIMIT_HELP = {
    "call_timeout": "Seconds one call of a student's function may take.",
    "cell_timeout": "Seconds one notebook cell may take in the sandbox before it is stopped and skipped.",
    "submission_seconds": "Wall time for all graded parts of one submitted notebook; the parts left when it runs "
                          "out score 0, with the reason.",
    "cpu_seconds": "CPU seconds for one graded part's process (RLIMIT_CPU).",
    "memory_bytes": "Address space of that process (RLIMIT_AS).",
    "processes": "Processes and threads of the sandbox user (RLIMIT_NPROC).",
    "file_bytes": "Largest file the student's code may write (RLIMIT_FSIZE).",
    "open_files": "Open files of one graded part's process (RLIMIT_NOFILE).",
    "tmp_bytes": "Size of each private tmpfs the student's code may write in (/tmp, /var/tmp, /dev/shm).",
    "resident_bytes": "Memory of one graded part's whole process tree, shared memory included (its memory "
                      "cgroup, as root).",
    "uid_base": "As root, each live sandbox on the machine runs as its own user id from uid_base .. "
                "uid_base + uid_count - 1.",
    "uid_count": "How many user ids the sandboxes may use (see uid_base).",
    "message_bytes": "Largest reply the grader reads from the sandbox; also the most code a notebook may have.",
    "max_cells": "Most code cells a notebook may have to be graded.",
}
assert set(LIMIT_HELP) == {f.name for f in fields(Limits)}
