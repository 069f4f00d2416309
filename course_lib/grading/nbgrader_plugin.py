"""``TrustedExecute``: the nbgrader preprocessor that grades without running student code in-process.

It takes the place of nbgrader's ``Execute`` in ``c.Autograde.autograde_preprocessors``. nbgrader's
sanitize step has already restored the instructor's test cells, points and ids from the gradebook;
this preprocessor then, for each autograded test cell,

1. reads the instructor's source of the cell from the gradebook and parses its checker calls;
2. refuses the part if the student's code reaches a forbidden shortcut (``forbidden``), with the
   reason in the cell's output and in the gradebook comment of the student's answer cell;
3. otherwise runs the checks in this process against a fresh sandboxed worker that ran the code
   cells above the test cell, as a kernel would have by then (:func:`.trusted.grade_part`), with one
   extra secret seed;
4. writes the cell's outputs: the checkers' lines on success, ONE error output on failure.

nbgrader's ``SaveAutoGrades`` then turns outputs into scores as usual (an error output is 0).
Every other code cell gets the error (if any) it raised in the worker; nothing else of the
student's run is shown. A log of every decision, with the secret seeds, goes to the nbgrader log and
to ``<autograded>/trusted_grading.log``; how each part ended (passed, a named mistake, a forbidden
shortcut, a timeout...) goes to ``<notebook>.outcomes.json`` beside the graded notebook (:mod:`.outcomes`).
"""
from __future__ import annotations

import ast
import atexit
import contextlib
import glob
import datetime
import importlib
import os
import shutil
import time
from typing import Any

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from traitlets import Dict, Float, Integer, List, Unicode

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

from . import forbid, sandbox, submission, trusted
from .outcomes import Outcome, PartOutcome, write_outcomes
from .remote import CellPlan
from .sandbox import Limits, Zygote

__all__ = ["TrustedExecute", "RestoreCellMetadata"]

_ZYGOTE: dict[str, Any] = {"key": None, "zygote": None}


def _shared_zygote(limits: Limits, hide: list[str], keep: list[str], preload: list[str], log) -> Zygote:
    """One zygote per grading run (it is slow to start: it imports torch), restarted if its settings change."""
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
def _close_zygote() -> None:
    if _ZYGOTE["zygote"] is not None:
        _ZYGOTE["zygote"].close()


class TrustedExecute(NbGraderPreprocessor):
    """Grade test cells with the course's checkers in this process; run student cells only in the sandbox."""

    call_timeout = Float(60.0, help="Seconds one call of a student's function may take.").tag(config=True)
    cell_timeout = Float(120.0, help="Seconds one notebook cell may take in the sandbox before it is "
                                     "stopped and skipped.").tag(config=True)
    cpu_seconds = Integer(600, help="CPU seconds for one graded part's process (RLIMIT_CPU).").tag(config=True)
    memory_bytes = Integer(6 * 2**30, help="Address space of that process (RLIMIT_AS).").tag(config=True)
    processes = Integer(64, help="Processes and threads of the sandbox user (RLIMIT_NPROC).").tag(config=True)
    file_bytes = Integer(64 * 2**20, help="Largest file the student's code may write (RLIMIT_FSIZE).").tag(config=True)
    resident_bytes = Integer(6 * 2**30, help="Memory of one graded part's whole process tree, shared memory "
                                             "included (its memory cgroup, as root).").tag(config=True)
    uid_base = Integer(2_000_000_000, help="As root, each live sandbox on the machine runs as its own user id "
                                           "from uid_base .. uid_base + uid_count - 1.").tag(config=True)
    uid_count = Integer(4096, help="How many user ids the sandboxes may use (see uid_base).").tag(config=True)
    submission_seconds = Float(600.0, help="Wall time for all graded parts of one submitted notebook; the parts "
                                           "left when it runs out score 0, with the reason.").tag(config=True)
    hide_paths = List(Unicode(), help="More paths the student's code must not see (the course root, the "
                                      "gradebook and the grader's home are always hidden).").tag(config=True)
    preloadable = List(Unicode(), ["numpy", "torch", "keras", "matplotlib", "matplotlib.pyplot", "course_lib",
                                   "course_lib.data"],
                       help="Modules the sandbox may import once, before forking, when the instructor's cells "
                            "import them (never the answer key: forbid.ANSWER_KEY).").tag(config=True)
    sandbox_visible = List(Unicode(), list(forbid.SANDBOX_VISIBLE),
                           help="The parts of course_lib the sandbox shows (to the student's code), besides the "
                                "course_lib modules the instructor's cells import; every other file of course_lib "
                                "is hidden there. The answer key (forbid.ANSWER_KEY) is never shown: the sandbox "
                                "has a stand-in for course_lib.checkers; the checks run in the grader."
                           ).tag(config=True)
    forbidden = Dict(help="{assignment: [names]}: shortcuts an assignment forbids: 'nn.LSTMCell' (a dotted name, "
                          "resolved through the notebook's imports), 'eval' (a bare name), '.backward' (any "
                          "method of that name). A part whose code reaches one scores 0.").tag(config=True)
    forbidden_everywhere = List(Unicode(), ["course_lib.reference", "course_lib.checkers.*", "course_lib.convert",
                                            "course_lib.grading", "eval", "exec", "compile", "pickle", "marshal",
                                            "types.FunctionType", "types.CodeType", "torch.library",
                                            ".__subclasses__"],
                                help="Shortcuts forbidden in every assignment (the notebooks say so): the answer "
                                     "key, code built at run time, and the ways to undo what `forbidden_operations` "
                                     "switches off.").tag(config=True)
    forbidden_operations = Dict(help="{assignment: [names]}: what is switched off in the sandbox while the "
                                     "assignment is graded, whatever name the student's code reaches it by "
                                     "(see course_lib.grading.forbid): 'aten::lstm_cell' (ATen operators, fnmatch "
                                     "patterns allowed), 'autograd', 'torch.nn.utils.clip_grad_norm_' (a Python "
                                     "function). A graded call that reaches one scores 0.").tag(config=True)
    log_name = Unicode("trusted_grading.log", help="Log file in the autograded directory.").tag(config=True)
    checkers_module = Unicode("course_lib.checkers", help="The module whose check_* functions test cells call "
                                                          "as `checkers.check_*`.").tag(config=True)

    # ------------------------------------------------------------------------------------- entry

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        dest = coursedir.format_path(coursedir.autograded_directory, info["student"], info["assignment"])
        with _absent_while_grading(dest):
            nb, resources = self._grade(nb, resources, coursedir)
        write_outcomes(dest, info["notebook"], resources.pop(_OUTCOMES, []))
        return nb, resources

    def _grade(self, nb: NotebookNode, resources: ResourcesDict,
               coursedir: CourseDirectory) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        assignment, notebook_id, student = info["assignment"], info["notebook"], info["student"]
        tests = self._instructor_cells(info["db_url"], notebook_id, assignment)
        limits = Limits(call_timeout=self.call_timeout, cell_timeout=self.cell_timeout,
                        cpu_seconds=self.cpu_seconds, memory_bytes=self.memory_bytes, processes=self.processes,
                        file_bytes=self.file_bytes, resident_bytes=self.resident_bytes, uid_base=self.uid_base,
                        uid_count=self.uid_count, submission_seconds=self.submission_seconds)

        test_idx = {i: _grade_id(c) for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)
                    and _grade_id(c) in tests}
        code = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in test_idx]
        if not test_idx:                            # nothing to autograde: no sandbox needed
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
            return nb, resources
        calls = {gid: trusted.parse_test_cell(tests[gid], gid) for gid in test_idx.values()}

        instructor = self._instructor_sources(coursedir, assignment, notebook_id)
        student_code = [(i, src) for i, src in code
                        if utils.is_solution(nb.cells[i]) or src.strip() not in instructor]
        student_cells = {i for i, _ in student_code}
        graded_names = {gid: sorted({n for c in cs for n in c.student_names()}) for gid, cs in calls.items()}
        patterns = list(self.forbidden_everywhere) + list(self.forbidden.get(assignment, []))
        violations = trusted.policy_findings(student_code, graded_names, patterns, [src for _, src in code],
                                             everywhere=list(self.forbidden_everywhere))

        hide = [coursedir.root, *sandbox.default_hidden(), *self.hide_paths, *self._db_file(info["db_url"]),
                *forbid.answer_key_paths([*self.sandbox_visible, *self._imported_course_modules(instructor)])]
        zygote = _shared_zygote(limits, hide, sandbox.python_paths(), self._preload(instructor), self.log)
        deadline = time.monotonic() + limits.submission_seconds     # the parts' time, not the sandbox's start
        plan = CellPlan()
        lines = [f"{student}/{assignment}/{notebook_id}: {len(test_idx)} graded parts, "
                 f"{len(code)} other code cells (each part's sandbox runs those above its test cell)"]
        checkers = importlib.import_module(self.checkers_module)
        comments: dict[str, list[str]] = {}
        records: dict[str, PartOutcome] = {}
        for index, gid in test_idx.items():
            cell = nb.cells[index]
            if gid in violations:
                found = violations[gid]
                message = (f"{', '.join(graded_names[gid])}: uses " + ", ".join(f.describe() for f in found)
                           + ", which this assignment does not allow. This part scores 0.")
                cell.outputs = [_error("PolicyViolation", message)]
                lines.append(f"  {gid}: 0 (policy) {message}")
                records[gid] = PartOutcome(gid, Outcome.POLICY, shortcuts=sorted({f.pattern for f in found}),
                                           message=message[:300])
                for answer in _answer_cells_defining(nb, graded_names[gid]):
                    comments.setdefault(answer, []).append(message)
                continue
            started = time.monotonic()
            if started >= deadline:
                message = (f"the time for grading this submission ({limits.submission_seconds:g} s for all its "
                           f"parts) ran out before this part: it scores 0. Look for code that is far too slow.")
                cell.outputs = [_error("GradingStopped", message)]
                lines.append(f"  {gid}: FAIL; not graded: {message}")
                records[gid] = PartOutcome(gid, Outcome.TIMEOUT, message=message[:300])
                continue
            before = [(i, src) for i, src in code if i < index]     # what a kernel would have run by now
            result = trusted.grade_part(zygote, limits, before, plan, calls[gid], checkers, deadline=deadline,
                                        forbid=list(self.forbidden_operations.get(assignment, [])))
            result.log.insert(0, f"{time.monotonic() - started:.1f} s")
            outputs = [nbformat.v4.new_output("stream", name="stdout", text=result.stdout)] if result.stdout else []
            if not result.passed:
                outputs.append(_error(result.ename, result.message))
            cell.outputs = outputs
            if result.ename == "PolicyViolation":
                for answer in _answer_cells_defining(nb, graded_names[gid]):
                    comments.setdefault(answer, []).append(result.message)
            lines.append(f"  {gid}: {'pass' if result.passed else 'FAIL'}; " + "; ".join(result.log))
            records[gid] = PartOutcome(gid, result.outcome, list(result.mistakes), message=result.message[:300])
        count = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            count += 1
            cell.execution_count = count
            if i not in test_idx:
                cell.outputs = [_error(*plan.errors[i])] if i in plan.errors else []
                if i in plan.errors and plan.errors[i][0] == "ForbiddenOperation" and i not in student_cells:
                    cell.outputs = []        # the instructor's try-it cell, run with the shortcuts switched off
                    lines.append(f"  cell {i} (the instructor's) stopped: {plan.errors[i][1]}")
        self._comments(info, [_grade_id(c) for c in nb.cells if utils.is_solution(c)], comments)
        resources[_OUTCOMES] = _completed(records, test_idx, graded_names, nb, plan)
        for line in lines:
            self.log.info("trusted grading: %s", line)
        self._write_log(coursedir, lines)
        return nb, resources

    # ------------------------------------------------------------------------------------- helpers

    def _instructor_cells(self, db_url: str, notebook_id: str, assignment: str) -> dict[str, str]:
        """The instructor's source of every autograded test cell, by grade_id."""
        with Gradebook(db_url) as gb:
            nb = gb.find_notebook(notebook_id, assignment)
            tests = {}
            for cell in nb.grade_cells:
                if cell.cell_type != "code":
                    continue
                try:
                    source = gb.find_source_cell(cell.name, notebook_id, assignment)
                except MissingEntry:
                    continue
                if not any(s.name == cell.name for s in nb.solution_cells):
                    tests[cell.name] = source.source
        return tests

    def _instructor_sources(self, coursedir: CourseDirectory, assignment: str, notebook_id: str) -> set[str]:
        """Sources of the instructor's non-answer code cells (so they are not scanned as the student's)."""
        path = os.path.join(coursedir.format_path(coursedir.source_directory, ".", assignment), f"{notebook_id}.ipynb")
        if not os.path.exists(path):
            return set()
        source_nb = nbformat.read(path, as_version=4)
        return {c.source.strip() for c in source_nb.cells if c.cell_type == "code" and not utils.is_solution(c)}

    def _preload(self, instructor_sources: set[str]) -> list[str]:
        wanted = ["numpy", "torch", "torch._decomp", "IPython.core.interactiveshell"]   # _decomp: for .forbid
        for source in instructor_sources:
            try:
                tree = ast.parse(source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    wanted += [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    wanted += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        allowed = set(self.preloadable) | {"IPython.core.interactiveshell", "torch._decomp"}
        secret = lambda m: any(m == k or m.startswith(k + ".") for k in forbid.ANSWER_KEY)   # noqa: E731
        return sorted({m for m in wanted if m in allowed and not secret(m)}, key=wanted.index)

    @staticmethod
    def _imported_course_modules(instructor_sources: set[str]) -> list[str]:
        """The course_lib modules the instructor's cells import (shown in the sandbox), the answer key excepted."""
        out = []
        for source in instructor_sources:
            try:
                tree = ast.parse(trusted.strip_magics(source))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    out += [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        return sorted({m for m in out if m.startswith("course_lib.")
                       and not any(m == k or m.startswith(k + ".") for k in forbid.ANSWER_KEY)})

    @staticmethod
    def _db_file(db_url: str) -> list[str]:
        if db_url.startswith("sqlite:///"):
            return [os.path.abspath(db_url[len("sqlite:///"):])]
        return []

    def _comments(self, info: dict, answer_cells: list[str], messages: dict[str, list[str]]) -> None:
        """Policy findings into the gradebook comments of the student's answer cells (for the instructor);
        a finding of an earlier run that is gone now is removed. The instructor's own comments are kept."""
        with Gradebook(info["db_url"]) as gb:
            for cell_name in answer_cells:
                try:
                    comment = gb.find_comment(cell_name, info["notebook"], info["assignment"], info["student"])
                except MissingEntry:
                    continue
                ours = not comment.manual_comment or comment.manual_comment.startswith(_COMMENT)
                if ours:
                    found = messages.get(cell_name)
                    comment.manual_comment = f"{_COMMENT} " + " ".join(found) if found else None
            gb.db.commit()

    def _write_log(self, coursedir: CourseDirectory, lines: list[str]) -> None:
        folder = os.path.join(coursedir.root, coursedir.autograded_directory)
        os.makedirs(folder, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with open(os.path.join(folder, self.log_name), "a", encoding="utf-8") as f:
            for line in lines:
                f.write(f"{stamp} {line}\n")


class RestoreCellMetadata(NbGraderPreprocessor):
    """Sanitize step: every cell's nbgrader metadata is rebuilt from the gradebook, before nbgrader reads it.

    A student can edit the notebook's JSON. nbgrader restores points, sources and checksums of known
    cells, but a cell with an unknown or missing ``grade_id`` (a forged "graded" cell, a renamed one,
    a copy left by ``DeduplicateIds``) makes the whole submission fail, and flipped ``grade``/``solution``
    flags are kept. Here a cell keeps nbgrader metadata only if its ``grade_id`` is the instructor's
    (the last copy of a duplicate, as ``DeduplicateIds`` decides), with the instructor's flags and points;
    every other cell becomes a plain cell. Deleted graded cells come back through ``OverwriteCells``.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            source = gb.find_notebook(info["notebook"], info["assignment"])
            grade = {c.name: float(c.max_score) for c in source.grade_cells}
            task = {c.name: float(c.max_score) for c in source.task_cells}
            solution = {c.name for c in source.solution_cells}
            locked = {c.name: bool(c.locked) for c in source.source_cells}
        seen = set()
        for cell in reversed(nb.cells):
            meta = cell.metadata.get("nbgrader")
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if not isinstance(gid, str) or gid not in locked or gid in seen:
                if meta is not None:
                    self.log.warning("Cell with grade_id %r is not the instructor's: treated as a plain cell", gid)
                    del cell.metadata["nbgrader"]
                continue
            seen.add(gid)
            restored = {"grade_id": gid, "grade": gid in grade, "solution": gid in solution,
                        "locked": locked[gid], "schema_version": 3}
            if gid in grade:
                restored["points"] = grade[gid]
            if gid in task:
                restored.update(task=True, points=task[gid])
            if "checksum" in meta:
                restored["checksum"] = meta["checksum"]
            if restored != {k: meta.get(k) for k in restored}:
                self.log.warning("nbgrader metadata of cell %r was edited; restored from the gradebook", gid)
            cell.metadata["nbgrader"] = restored
        return nb, resources


MARKER = ".incomplete"


def _dest(preprocessor: NbGraderPreprocessor, resources: ResourcesDict) -> str:
    coursedir = CourseDirectory(config=preprocessor.config)
    info = resources["nbgrader"]
    return coursedir.format_path(coursedir.autograded_directory, info["student"], info["assignment"])


class MarkGradingStarted(NbGraderPreprocessor):
    """First of the sanitize step: leave ``autograded/<student>/<assignment>.incomplete`` beside the folder
    nbgrader is about to write, so that a run killed before the grades are saved is noticed next time."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        _check_submission(self, resources)
        marker = _dest(self, resources).rstrip(os.sep) + MARKER
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w") as f:
            f.write("grading started; this submission is graded again by the next nbgrader autograde\n")
        return nb, resources


def _check_submission(preprocessor: NbGraderPreprocessor, resources: ResourcesDict) -> None:
    """A submission with a link, device or the like fails whole (nbgrader then removes what it had copied to
    autograded/); extra files over the size limit are removed from autograded/, so no feedback carries them."""
    coursedir = CourseDirectory(config=preprocessor.config)
    info = resources["nbgrader"]
    folder = coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"])
    for rel in submission.check(folder):
        path = os.path.join(_dest(preprocessor, resources), rel)
        if os.path.lexists(path):
            os.unlink(path)
        preprocessor.log.warning("%s: %s is larger than %d MiB: not copied to autograded/ or the feedback",
                                 info["student"], rel, submission.MAX_EXTRA_BYTES // 2**20)


class MarkGradingFinished(NbGraderPreprocessor):
    """Last of the autograde step, after SaveAutoGrades: the grades are in the gradebook, drop the marker."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        marker = _dest(self, resources).rstrip(os.sep) + MARKER
        if os.path.exists(marker):
            os.unlink(marker)
        return nb, resources


def recover_interrupted(autograded_dir: str) -> list[str]:
    """Remove the autograded folders of submissions whose grading was killed before its grades were saved.

    nbgrader skips a submission whose autograded folder exists, and it writes that folder before
    grading. ``nbgrader_config.py`` calls this when any nbgrader command starts, so a plain re-run of
    ``nbgrader autograde`` grades those submissions again. Returns the folders removed.
    """
    removed = []
    for marker in glob.glob(os.path.join(glob.escape(autograded_dir), "*", "*" + MARKER)):
        dest = marker[: -len(MARKER)]
        if os.path.isdir(dest):
            shutil.rmtree(dest)
            removed.append(dest)
        os.unlink(marker)
    return removed


@contextlib.contextmanager
def _absent_while_grading(dest: str):
    """Move ``autograded/<student>/<assignment>`` aside while this notebook is graded, and back after.

    nbgrader skips a submission whose autograded folder exists. It writes that folder (the sanitized
    notebook) before grading and the graded notebook after, so a run killed while grading would leave
    a folder that the next plain ``nbgrader autograde`` skips, ungraded. With the folder absent during
    grading, the next run grades that submission again; the gradebook keeps one grade per cell.
    """
    aside = dest.rstrip(os.sep) + ".grading"
    if os.path.isdir(aside):                    # left by a killed run
        shutil.rmtree(aside)
    moved = os.path.isdir(dest)
    if moved:
        os.rename(dest, aside)
    try:
        yield
    finally:
        if moved:
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            os.rename(aside, dest)


_COMMENT = "[trusted grading]"
_OUTCOMES = "course_lib_outcomes"


def _completed(records: dict[str, PartOutcome], test_idx: dict[int, str], graded_names: dict[str, list[str]],
               nb: NotebookNode, plan: CellPlan) -> list[PartOutcome]:
    """The parts' outcomes, in notebook order, with whether the student left the part as released
    (nbgrader's own test: every answer cell it grades still has the released checksum) and how many
    cells above it the sandbox had to stop."""
    cells = {_grade_id(c): c for c in nb.cells if c.cell_type == "code" and utils.is_solution(c)}
    out = []
    for index, gid in test_idx.items():
        record = records[gid]
        answers = [cells[a] for a in _answer_cells_defining(nb, graded_names[gid]) if a in cells]
        record.unattempted = bool(answers) and all(
            c.metadata["nbgrader"].get("checksum") == utils.compute_checksum(c) for c in answers)
        record.cells_stopped = sum(1 for i in plan.skip if i < index)
        out.append(record)
    return out


def _error(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _answer_cells_defining(nb: NotebookNode, names: list[str]) -> list[str]:
    """grade_ids of the answer (solution) cells whose top level defines one of ``names``."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not utils.is_solution(cell):
            continue
        try:
            tree = ast.parse(trusted.strip_magics(cell.source))
        except SyntaxError:
            continue
        if any(n in names for stmt in tree.body for n in trusted.defined_names(stmt)):
            out.append(_grade_id(cell))
    return out


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")
