"""``python -m course_lib.instructor.report ASSIGNMENT``: how the class did, after ``nbgrader autograde``.

    python -m course_lib.instructor.report 02_lstm
    python -m course_lib.instructor.report 02_lstm --db-url postgresql://grader@dbhost/course
    python -m course_lib.instructor.report 02_lstm --threshold 0.7 --out reports/lstm

Run it from the course root (or pass ``--root``). It writes ``reports/<assignment>/``:

- ``report.html``  one self-contained page (figures inline as SVG, no script, nothing fetched): the
  score distribution; per part the pass rate, difficulty, discrimination and how many left it
  unattempted; the named mistakes with the share of students who made each and a link to an
  example; forbidden shortcuts, timeouts and crashes per part; the similarity check;
- ``students.csv``, ``parts.csv``, ``mistakes.csv``, ``similarity.csv``: the same numbers as tables.
"""
from __future__ import annotations

import argparse
import csv
import html
import io
import itertools
import math
import os
import sys
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..grading.outcomes import Outcome
from . import similarity as sim
from .classdata import ClassData, load_class
from .stats import ItemStats, item_stats

__all__ = ["ClassReport", "Pair", "analyse", "write_report", "main", "THRESHOLD", "MIN_KEY_PRINTS"]

THRESHOLD = 0.6     # calibrated on the practice class: see README, "The class report"
MIN_KEY_PRINTS = 15  # code with fewer fingerprints (a short helper, one line of answer) is too short to tell apart


@dataclass(frozen=True)
class Pair:
    """Two documents whose fingerprints overlap: two students, or a student and a piece of the answer key."""

    a: str
    b: str
    similarity: float


@dataclass
class ClassReport:
    """The numbers of the report (what the page and the CSV files show)."""

    data: ClassData
    items: dict[str, ItemStats]
    outcomes: dict[str, Counter]                      # part -> Counter of Outcome
    unattempted: dict[str, int]                       # part -> students who left it as released
    cells_stopped: dict[str, int]                     # part -> students with a stopped cell above it
    mistakes: dict[tuple[str, str], list[str]]        # (part, mistake label) -> students
    shortcuts: dict[tuple[str, str], list[str]]       # (part, forbidden pattern) -> students
    pairs: list[Pair]                                 # every pair of students, most similar first
    key_matches: list[Pair]                           # each student's closest answer-key document
    threshold: float
    documents: dict[str, sim.Document] = field(default_factory=dict)

    def is_flagged(self, pair: Pair) -> bool:
        """At or above the threshold, and both sides long enough to tell (``MIN_KEY_PRINTS`` fingerprints)."""
        short = min(len(self.documents[pair.a].prints), len(self.documents[pair.b].prints)) < MIN_KEY_PRINTS
        return pair.similarity >= self.threshold and not short

    @property
    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if self.is_flagged(p)]

    @property
    def flagged_key(self) -> list[Pair]:
        return [p for p in self.key_matches if self.is_flagged(p)]


# ---------------------------------------------------------------------------------------------- numbers

def analyse(data: ClassData, threshold: float = THRESHOLD) -> ClassReport:
    """Compute every number of the report from a loaded class."""
    if not 0 < threshold <= 1:
        raise ValueError(f"expected a similarity threshold between 0 and 1, got {threshold!r}")
    totals = [s.total for s in data.students]
    items = {p.name: item_stats(p.name, [s.scores.get(p.name, 0.0) for s in data.students], totals, p.max_score)
             for p in data.parts}
    outcomes = {p.name: Counter() for p in data.parts if p.autograded}
    unattempted = {p: 0 for p in outcomes}
    stopped = {p: 0 for p in outcomes}
    mistakes: dict[tuple[str, str], list[str]] = {}
    shortcuts: dict[tuple[str, str], list[str]] = {}
    for s in data.students:
        for part, o in s.outcomes.items():
            if part not in outcomes:
                continue
            outcomes[part][o.outcome] += 1
            unattempted[part] += o.unattempted
            stopped[part] += o.cells_stopped > 0
            for label in dict.fromkeys(o.mistakes):
                mistakes.setdefault((part, label), []).append(s.id)
            for pattern in dict.fromkeys(o.shortcuts):
                shortcuts.setdefault((part, pattern), []).append(s.id)
    mistakes = dict(sorted(mistakes.items(), key=lambda kv: (-len(kv[1]), kv[0])))

    starter = sim.starter_hashes(list(data.starter.values()))
    docs = {s.id: sim.make_document(s.id, s.answers, starter) for s in data.students}
    key_docs = {name: doc for name, parts in data.key.items()
                if len((doc := sim.make_document(name, parts, starter)).prints) >= MIN_KEY_PRINTS}
    pairs = sorted((Pair(a, b, sim.similarity(docs[a], docs[b])) for a, b in itertools.combinations(sorted(docs), 2)),
                   key=lambda p: (-p.similarity, p.a, p.b))
    key_matches = []
    for student, doc in docs.items():
        best = max((Pair(student, name, _containment(doc, kd)) for name, kd in key_docs.items()),
                   key=lambda p: p.similarity, default=None)
        if best is not None:
            key_matches.append(best)
    key_matches.sort(key=lambda p: (-p.similarity, p.a))
    return ClassReport(data, items, outcomes, unattempted, stopped, mistakes, shortcuts, pairs, key_matches,
                       threshold, {**docs, **key_docs})


def _containment(student: sim.Document, key: sim.Document) -> float:
    """The share of the key document's fingerprints found in the student's (a student who copied one
    reference function into a longer notebook is still found)."""
    if not student.prints or not key.prints:
        return 0.0
    return len(student.prints.keys() & key.prints.keys()) / len(key.prints)


# ---------------------------------------------------------------------------------------------- files

def write_report(report: ClassReport, out: Path) -> Path:
    """Write ``report.html`` and the CSV files into ``out``; return the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    data = report.data
    parts = data.parts
    _write_csv(out / "students.csv", ["student", "total", "max_score"]
               + [f"{p.name} score" for p in parts] + [f"{p.name} outcome" for p in parts if p.autograded],
               [[s.id, _num(s.total), _num(data.max_score)] + [_num(s.scores.get(p.name, 0.0)) for p in parts]
                + [s.outcomes[p.name].outcome.value if p.name in s.outcomes else "" for p in parts if p.autograded]
                for s in data.students])
    _write_csv(out / "parts.csv", ["part", "notebook", "max_score", "autograded", "students", "pass_rate",
                                   "difficulty", "point_biserial", "upper_lower", "unattempted",
                                   *[o.value for o in Outcome], "cells_stopped"],
               [[p.name, p.notebook, _num(p.max_score), p.autograded, report.items[p.name].n,
                 _num(report.items[p.name].pass_rate), _num(report.items[p.name].difficulty),
                 _num(report.items[p.name].point_biserial), _num(report.items[p.name].upper_lower),
                 report.unattempted.get(p.name, ""),
                 *[report.outcomes[p.name][o] if p.autograded else "" for o in Outcome],
                 report.cells_stopped.get(p.name, "")] for p in parts])
    n = len(data.students)
    _write_csv(out / "mistakes.csv", ["part", "mistake", "students", "share", "example"],
               [[part, label, len(who), _num(len(who) / n), who[0]] for (part, label), who in report.mistakes.items()])
    _write_csv(out / "similarity.csv", ["a", "b", "kind", "similarity", "flagged"],
               [[p.a, p.b, "student", _num(p.similarity), report.is_flagged(p)] for p in report.pairs]
               + [[p.a, p.b, "answer key", _num(p.similarity), report.is_flagged(p)] for p in report.key_matches])
    page = out / "report.html"
    page.write_text(_page(report, out), encoding="utf-8")
    return page


def _num(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ---------------------------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.side{display:grid;grid-template-columns:1fr 1fr;gap:1rem}pre{background:#fafafa;border:1px solid #ddd;padding:.5rem;
overflow-x:auto;font-size:.85rem}mark{background:#ffe08a}.note{background:#f5f8ff;border-left:4px solid #5b7bd5;
padding:.5rem 1rem}figure{margin:1rem 0}figcaption{font-size:.9rem;color:#555}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _r(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f}"


def _link(report: ClassReport, out: Path, student: str) -> str:
    s = next(r for r in report.data.students if r.id == student)
    if not s.graded:
        return _e(student)
    path = next(iter(s.graded.values()))
    rel = os.path.relpath(path, out)
    return f'<a href="{_e(urllib.parse.quote(rel))}">{_e(student)}</a>'


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figures(report: ClassReport) -> dict[str, str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "course-report"         # the same SVG for the same numbers
    data = report.data
    figs = {}
    fig, ax = plt.subplots(figsize=(6, 2.8))
    totals = [s.total for s in data.students]
    bins = max(1, min(20, int(math.ceil(data.max_score)) + 1))
    ax.hist(totals, bins=bins, range=(0, data.max_score), color="#5b7bd5", edgecolor="white")
    ax.set_xlabel(f"total score (of {data.max_score:g})")
    ax.set_ylabel("students")
    figs["scores"] = _svg(fig)

    auto = [p for p in data.parts if p.autograded]
    if auto:
        fig, ax = plt.subplots(figsize=(6, 0.45 * len(auto) + 1))
        names = [p.name for p in auto][::-1]
        n = max(1, len(data.students))
        left = [0.0] * len(names)
        colours = {Outcome.PASSED: "#4caf50", Outcome.MISTAKE: "#ff9800", Outcome.CHECK_FAILED: "#f4c542",
                   Outcome.NOT_DEFINED: "#9e9e9e", Outcome.POLICY: "#9c27b0", Outcome.TIMEOUT: "#e91e63",
                   Outcome.CRASH: "#b71c1c"}
        for o, colour in colours.items():
            share = [report.outcomes[name][o] / n for name in names]
            ax.barh(names, share, left=left, color=colour, label=o.value.replace("_", " "))
            left = [a + b for a, b in zip(left, share)]
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the class")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=4, fontsize=8, frameon=False)
        figs["outcomes"] = _svg(fig)

    if report.mistakes:
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(report.mistakes) + 1))
        labels = [f"{part}: {label[:70]}" for part, label in report.mistakes][::-1]
        shares = [len(who) / max(1, len(data.students)) for who in report.mistakes.values()][::-1]
        ax.barh(labels, shares, color="#ff9800")
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the class")
        ax.tick_params(axis="y", labelsize=8)
        figs["mistakes"] = _svg(fig)

    if report.pairs:
        fig, ax = plt.subplots(figsize=(6, 2.6))
        ax.hist([p.similarity for p in report.pairs], bins=20, range=(0, 1), color="#888", edgecolor="white")
        ax.axvline(report.threshold, color="#b71c1c", linestyle="--", label=f"threshold {report.threshold:g}")
        ax.set_xlabel("similarity of a pair of students")
        ax.set_ylabel("pairs")
        ax.legend(frameon=False)
        figs["similarity"] = _svg(fig)
    return figs


def _side_by_side(report: ClassReport, pair: Pair) -> str:
    a, b = report.documents[pair.a], report.documents[pair.b]
    lines_a, lines_b = sim.matching_lines(a, b)
    cols = []
    for doc, marked in ((a, lines_a), (b, lines_b)):
        blocks = []
        for part, source in doc.sources.items():
            hits = marked.get(part, set())
            rows = [f"<mark>{_e(line)}</mark>" if i in hits else _e(line)
                    for i, line in enumerate(source.splitlines(), start=1)]
            blocks.append(f"<p><b>{_e(part)}</b></p><pre>{chr(10).join(rows)}</pre>")
        cols.append(f"<div><h4>{_e(doc.name)}</h4>{''.join(blocks)}</div>")
    return f'<div class="side">{"".join(cols)}</div>'


def _page(report: ClassReport, out: Path) -> str:
    data = report.data
    n = len(data.students)
    figs = _figures(report)
    h = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Class report: {_e(data.assignment)}"
         f"</title><style>{_CSS}</style></head><body>", f"<h1>Class report: {_e(data.assignment)}</h1>"]
    totals = sorted(s.total for s in data.students)
    mean = sum(totals) / n if n else math.nan
    median = (totals[(n - 1) // 2] + totals[n // 2]) / 2 if n else math.nan
    h.append(f"<p>{n} submissions graded ({len(data.not_submitted)} students in the gradebook handed nothing in). "
             f"Mean score {mean:.2f} of {data.max_score:g}, median {median:.2f}.</p>")
    if data.missing_outcomes:
        h.append(f"<p class='note'>{len(data.missing_outcomes)} submissions were graded without outcome records "
                 f"(graded by an older version of the grader): their parts count in the scores but not in the "
                 f"outcome columns. Grade them again with <code>nbgrader autograde --force</code>.</p>")

    h.append("<h2>Score distribution</h2>")
    h.append(f"<figure>{figs['scores']}<figcaption>Total scores of the {n} submissions.</figcaption></figure>")

    h.append("<h2>Parts</h2><p>Pass rate: share with full marks. Difficulty: mean share of the points. "
             "Discrimination: point-biserial correlation of passing the part with the score on the rest of the "
             "assignment (r), and the pass rate of the top 27% by total minus that of the bottom 27% (D); near 0 "
             "or negative means strong and weak students fail it alike: check the instructions and the test. "
             "Unattempted: the answer cells it grades are as released.</p>")
    h.append("<table><tr><th>part</th><th>points</th><th>pass rate</th><th>difficulty</th><th>r</th><th>D</th>"
             "<th>unattempted</th><th>named mistake</th><th>other wrong</th><th>not defined</th>"
             "<th>forbidden shortcut</th><th>timeout</th><th>crash</th><th>a cell above stopped</th></tr>")
    for p in data.parts:
        it = report.items[p.name]
        c = report.outcomes.get(p.name, Counter())
        cells = [report.unattempted.get(p.name, "–"), c[Outcome.MISTAKE], c[Outcome.CHECK_FAILED],
                 c[Outcome.NOT_DEFINED], c[Outcome.POLICY], c[Outcome.TIMEOUT], c[Outcome.CRASH],
                 report.cells_stopped.get(p.name, "–")] if p.autograded else ["graded by hand"] + [""] * 7
        h.append(f"<tr><td>{_e(p.name)}</td><td class=n>{p.max_score:g}</td><td class=n>{_pct(it.pass_rate)}</td>"
                 f"<td class=n>{_pct(it.difficulty)}</td><td class=n>{_r(it.point_biserial)}</td>"
                 f"<td class=n>{_r(it.upper_lower)}</td>" + "".join(f"<td class=n>{_e(x)}</td>" for x in cells)
                 + "</tr>")
    h.append("</table>")
    if "outcomes" in figs:
        h.append(f"<figure>{figs['outcomes']}<figcaption>How each autograded part ended, as a share of the class."
                 f"</figcaption></figure>")
    worst = sorted(report.unattempted.items(), key=lambda kv: -kv[1])
    if worst and worst[0][1]:
        h.append("<p>Most often left unattempted: " + ", ".join(
            f"{_e(part)} ({k} of {n})" for part, k in worst if k) + ".</p>")

    h.append("<h2>Named mistakes</h2>")
    if report.mistakes:
        h.append("<p>Counted from the mistake each checker named while grading (its catalogue entry in "
                 "<code>course_lib.checkers.mistakes</code>). A student whose answer fits no catalogue entry is "
                 "under <i>other wrong</i> above.</p><table><tr><th>part</th><th>mistake</th><th>students</th>"
                 "<th>share</th><th>example</th></tr>")
        for (part, label), who in report.mistakes.items():
            h.append(f"<tr><td>{_e(part)}</td><td>{_e(label)}</td><td class=n>{len(who)}</td>"
                     f"<td class=n>{_pct(len(who) / n)}</td><td>{_link(report, out, who[0])}</td></tr>")
        h.append(f"</table><figure>{figs['mistakes']}<figcaption>Share of the class making each named mistake."
                 f"</figcaption></figure>")
    else:
        h.append("<p>No checker named a mistake in this class.</p>")

    h.append("<h2>Forbidden shortcuts and sandbox failures</h2>")
    rows = [(part, pattern, who) for (part, pattern), who in report.shortcuts.items()]
    failures = [(s.id, part, o) for s in data.students for part, o in s.outcomes.items()
                if o.outcome in (Outcome.TIMEOUT, Outcome.CRASH)]
    if rows:
        h.append("<table><tr><th>part</th><th>forbidden</th><th>students</th></tr>" + "".join(
            f"<tr><td>{_e(p)}</td><td><code>{_e(pat)}</code></td><td>"
            + ", ".join(_link(report, out, w) for w in who) + "</td></tr>" for p, pat, who in rows) + "</table>")
    if failures:
        h.append("<table><tr><th>student</th><th>part</th><th>what happened</th><th>message</th></tr>" + "".join(
            f"<tr><td>{_link(report, out, s)}</td><td>{_e(p)}</td><td>{_e(o.outcome.value)}</td>"
            f"<td>{_e(o.message)}</td></tr>" for s, p, o in failures) + "</table>")
    if not rows and not failures:
        h.append("<p>None: no part used a forbidden shortcut, timed out or crashed.</p>")

    h.append(_similarity_section(report, out, figs))
    if data.not_submitted:
        h.append("<h2>No submission</h2><p>" + ", ".join(_e(s) for s in data.not_submitted) + "</p>")
    h.append("</body></html>")
    return "\n".join(h)


def _similarity_section(report: ClassReport, out: Path, figs: dict[str, str]) -> str:
    h = ["<h2>Similar submissions</h2>", "<div class='note'><p>Each student's answer cells (the starter code and "
         "the locked cells left out) are tokenised, every name a student chooses is replaced by one symbol and "
         "layout is ignored, so renaming variables or reformatting does not hide shared code; runs of "
         f"{sim.K} tokens are fingerprinted by winnowing. The similarity of two students is the share of the "
         "smaller submission's fingerprints that the other has too. Each submission is also compared with the "
         "answer key (the solution notebook and the functions of <code>course_lib.reference</code>, which "
         "students can read): there the share of the key's fingerprints found in the submission. Code with fewer "
         f"than {MIN_KEY_PRINTS} fingerprints (a short helper of the key, a one-line answer) is too short to tell "
         "and is never listed.</p>"
         "<p><b>What a match proves and what not.</b> A high similarity means the two pieces of code have the same "
         "structure, token for token, over long stretches. It does not say who copied whom, or that anyone did: "
         "a short exercise with one natural solution is written alike by people who never met, and the book "
         "shows the course's own code. The threshold "
         f"({report.threshold:g}) was set above the similarity of independently written correct solutions in "
         "the practice class. A flagged pair is a reason to read the two side by side, never a verdict.</p></div>"]
    if "similarity" in figs:
        h.append(f"<figure>{figs['similarity']}<figcaption>Similarity of every pair of students; pairs right of the "
                 f"dashed line are listed below.</figcaption></figure>")
    if report.flagged:
        h.append("<table><tr><th>student</th><th>student</th><th>similarity</th></tr>" + "".join(
            f"<tr><td>{_link(report, out, p.a)}</td><td>{_link(report, out, p.b)}</td>"
            f"<td class=n>{_pct(p.similarity)}</td></tr>" for p in report.flagged) + "</table>")
        for p in report.flagged:
            h.append(f"<details><summary>{_e(p.a)} and {_e(p.b)}: {_pct(p.similarity)} (matching lines marked)"
                     f"</summary>{_side_by_side(report, p)}</details>")
    else:
        h.append(f"<p>No pair of students above the threshold (highest: "
                 f"{_pct(report.pairs[0].similarity) if report.pairs else '–'}).</p>")
    if report.flagged_key:
        h.append("<h3>Close to the answer key</h3><table><tr><th>student</th><th>answer key</th><th>similarity</th>"
                 "</tr>" + "".join(f"<tr><td>{_link(report, out, p.a)}</td><td>{_e(p.b)}</td>"
                                   f"<td class=n>{_pct(p.similarity)}</td></tr>" for p in report.flagged_key)
                 + "</table>")
        for p in report.flagged_key:
            h.append(f"<details><summary>{_e(p.a)} and {_e(p.b)}: {_pct(p.similarity)}</summary>"
                     f"{_side_by_side(report, p)}</details>")
    else:
        h.append("<p>No submission above the threshold against the answer key.</p>")
    return "\n".join(h)


# ---------------------------------------------------------------------------------------------- command

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.instructor.report",
                                     description="Write the class report of one autograded assignment.")
    parser.add_argument("assignment", help="assignment name, e.g. 02_lstm")
    parser.add_argument("--root", default=".", help="course directory with nbgrader_config.py (default: .)")
    parser.add_argument("--db-url", default=None, help="gradebook SQLAlchemy URL (default: the course's)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help=f"similarity from which a pair is listed (default {THRESHOLD})")
    parser.add_argument("--out", default=None, help="output folder (default: <root>/reports/<assignment>)")
    args = parser.parse_args(argv)
    try:
        data = load_class(args.assignment, args.root, args.db_url)
        if not data.students:
            raise ValueError(f"expected autograded submissions of {args.assignment}, found none; run "
                             f"`nbgrader autograde {args.assignment}` first")
        report = analyse(data, args.threshold)
    except ValueError as exc:
        parser.error(str(exc))
    out = Path(args.out) if args.out else data.root / "reports" / args.assignment
    page = write_report(report, out)
    print(f"{args.assignment}: {len(data.students)} submissions, {len(report.mistakes)} named mistakes, "
          f"{len(report.flagged)} similar pairs, {len(report.flagged_key)} close to the answer key")
    print(f"  {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
