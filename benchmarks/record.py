"""``--save``: what a benchmark prints, also written to ``benchmarks/results/<name>.txt``.

The book's appendix shows those files as "the latest table" of each benchmark, so each starts with
when, where and how it was measured: the date, the cores and CPU model, the Python and PyTorch
versions, and the command. A run that fails writes nothing (the previous table stays).
"""
from __future__ import annotations

import contextlib
import datetime
import io
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_lib.measure.timing import machine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


@contextlib.contextmanager
def recorded(name: str, save: bool):
    """Print as usual; with ``save``, also write everything printed to ``results/<name>.txt`` at the end."""
    if not save:
        yield
        return
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        yield
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", f"benchmarks/{Path(sys.argv[0]).name}",
                                                   *sys.argv[1:]])
    header = (f"# {datetime.date.today().isoformat()}, {machine()}\n"
              f"# $ {command}\n\n")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.txt"
    path.write_text(header + buffer.getvalue(), encoding="utf-8")
    print(f"saved {path}")
