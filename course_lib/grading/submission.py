"""A student's submission is data: regular files and folders only, read without following anything.

``submitted/<student>/<assignment>/`` comes from the student (an archive, ``unzip``, ``cp -r`` or
``git clone`` all keep symbolic links). The grader runs as root, so following a link there would
read any file of the machine (the solutions, the gradebook, a root-only file) and copy it into
``autograded/`` and ``feedback/``, which go back to the student. So:

- a symbolic link, a device, a FIFO or a socket anywhere in the submission refuses the whole
  submission, with one line for the instructor (:class:`SubmissionRefused`);
- an extra file (not a notebook) larger than ``max_extra_bytes`` is left out of ``autograded/``
  (and so of the feedback), with one line in the log; notebooks are read whatever their size
  (the grader refuses one that is too large to run, with the reason).

:func:`check` is used by ``nbgrader autograde`` (first sanitize step, ``MarkGradingStarted``) and
:func:`read_files` by the parallel grader, which reads each submission only when it is sent.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["SubmissionRefused", "check", "read_files", "MAX_EXTRA_BYTES"]

MAX_EXTRA_BYTES = 16 * 2**20


class SubmissionRefused(ValueError):
    """The submission holds something that is not a regular file or folder; the message names it."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check(folder: str, max_extra_bytes: int = MAX_EXTRA_BYTES) -> list[str]:
    """Raise :class:`SubmissionRefused` if ``folder`` holds anything but regular files and folders (links are
    never followed); return the extra files (relative paths) too large to copy."""
    too_big = []
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise SubmissionRefused(f"{folder} is {_kind(st.st_mode)}, not a folder: submission refused")
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise SubmissionRefused(f"{path} is {_kind(mode)}: submission refused (a submission may hold only "
                                        f"regular files and folders)")
            if not name.endswith(".ipynb") and os.lstat(path).st_size > max_extra_bytes:
                too_big.append(os.path.relpath(path, folder))
    return too_big


def read_files(folder: str, max_extra_bytes: int = MAX_EXTRA_BYTES) -> tuple[dict[str, bytes], list[str]]:
    """Every regular file of a checked submission, {relative path: bytes}, without the extra files that are
    too large (returned as the second value). Files are opened with ``O_NOFOLLOW``."""
    skipped = check(folder, max_extra_bytes)
    files = {}
    for root, _, names in os.walk(folder, followlinks=False):
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel in skipped:
                continue
            fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise SubmissionRefused(f"{os.path.join(root, name)} changed while it was read: submission refused")
                files[rel] = f.read()
    return files, skipped


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (links skipped), by path relative to it, as bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (as :func:`read_tree` returns them) under ``folder``."""
    for rel, data in files.items():
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
