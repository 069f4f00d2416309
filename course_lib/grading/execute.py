"""``TrustedExecute``: the nbgrader preprocessor that grades without running student code in-process.

It takes the place of nbgrader's ``Execute`` in ``c.Autograde.autograde_preprocessors``. nbgrader's
sanitize step has already restored the instructor's test cells, points and ids from the gradebook;
this preprocessor then, for each autograded test cell,

1. reads the instructor's source of the cell from the gradebook and parses its checker calls;
2. refuses the part if the student's code reaches a forbidden shortcut (``forbidden``), with the
   reason in the cell's output and in the gradebook comment of the student's answer cell;
3. otherwise runs the checks in this process against a fresh sandboxed worker that ran the code
   cells above the test cell, as a kernel would have by then (:func:`.verdict.grade_part`), with one
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
import datetime
import importlib
import os
import time
from dataclasses import fields

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from traitlets import Dict, Float, Integer, List, Unicode

from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

from . import verdict
from .answer_key import ANSWER_KEY, SANDBOX_VISIBLE, answer_key_paths
from .grader.worker import CellPlan
from .grader.zygote import default_hidden, python_paths
from .limits import LIMIT_HELP, Limits
from .outcomes import PartOutcome, write_outcomes
from .policy import defined_names, policy_findings, strip_magics
from .reasons import Reason
from .recovery import absent_while_grading
from .shared_zygote import shared_zygote
from .testcells import parse_test_cell

__all__ = ["TrustedExecute", "COMMENT"]


class TrustedExecute(NbGraderPreprocessor):
    """Grade test cells with the course's checkers in this process; run student cells only in the sandbox."""

    # The sandbox's limits (course_lib.grading.limits.Limits), one trait each, with its defaults.
    call_timeout = Float(Limits.call_timeout, help=LIMIT_HELP["call_timeout"]).tag(config=True)
    cell_timeout = Float(Limits.cell_timeout, help=LIMIT_HELP["cell_timeout"]).tag(config=True)
    submission_seconds = Float(Limits.submission_seconds, help=LIMIT_HELP["submission_seconds"]).tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds, help=LIMIT_HELP["cpu_seconds"]).tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes, help=LIMIT_HELP["memory_bytes"]).tag(config=True)
    processes = Integer(Limits.processes, help=LIMIT_HELP["processes"]).tag(config=True)
    file_bytes = Integer(Limits.file_bytes, help=LIMIT_HELP["file_bytes"]).tag(config=True)
    open_files = Integer(Limits.open_files, help=LIMIT_HELP["open_files"]).tag(config=True)
    tmp_bytes = Integer(Limits.tmp_bytes, help=LIMIT_HELP["tmp_bytes"]).tag(config=True)
    resident_bytes = Integer(Limits.resident_bytes, help=LIMIT_HELP["resident_bytes"]).tag(config=True)
    uid_base = Integer(Limits.uid_base, help=LIMIT_HELP["uid_base"]).tag(config=True)
    uid_count = Integer(Limits.uid_count, help=LIMIT_HELP["uid_count"]).tag(config=True)
    message_bytes = Integer(Limits.message_bytes, help=LIMIT_HELP["message_bytes"]).tag(config=True)
    max_cells = Integer(Limits.max_cells, help=LIMIT_HELP["max_cells"]).tag(config=True)
    hide_paths = List(Unicode(), help="More paths the student's code must not see (the course root, the "
                                      "gradebook and the grader's home are always hidden).").tag(config=True)
    preloadable = List(Unicode(), ["numpy", "torch", "keras", "matplotlib", "matplotlib.pyplot", "course_lib",
                                   "course_lib.data"],
                       help="Modules the sandbox may import once, before forking, when the instructor's cells "
                            "import them (never the answer key: answer_key.ANSWER_KEY).").tag(config=True)
    sandbox_visible = List(Unicode(), list(SANDBOX_VISIBLE),
                           help="The parts of course_lib the sandbox shows (to the student's code), besides the "
                                "course_lib modules the instructor's cells import; every other file of course_lib "
                                "is hidden there. The answer key (answer_key.ANSWER_KEY) is never shown: the sandbox "
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
                                     "(see course_lib.grading.sandboxed.forbid): 'aten::lstm_cell' (ATen operators, fnmatch "
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
        with absent_while_grading(dest):
            nb, resources = self._grade(nb, resources, coursedir)
        write_outcomes(dest, info["notebook"], resources.pop(_OUTCOMES, []))
        return nb, resources

    def _grade(self, nb: NotebookNode, resources: ResourcesDict,
               coursedir: CourseDirectory) -> tuple[NotebookNode, ResourcesDict]:
        info = resources["nbgrader"]
        assignment, notebook_id, student = info["assignment"], info["notebook"], info["student"]
        tests = self._instructor_cells(info["db_url"], notebook_id, assignment)
        limits = self.limits()

        test_idx = {i: _grade_id(c) for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)
                    and _grade_id(c) in tests}
        code = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in test_idx]
        if not test_idx:                            # nothing to autograde: no sandbox needed
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
            return nb, resources
        calls = {gid: parse_test_cell(tests[gid], gid) for gid in test_idx.values()}

        instructor = self._instructor_sources(coursedir, assignment, notebook_id)
        student_code = [(i, src) for i, src in code
                        if utils.is_solution(nb.cells[i]) or src.strip() not in instructor]
        student_cells = {i for i, _ in student_code}
        graded_names = {gid: sorted({n for c in cs for n in c.student_names()}) for gid, cs in calls.items()}
        patterns = list(self.forbidden_everywhere) + list(self.forbidden.get(assignment, []))
        violations = policy_findings(student_code, graded_names, patterns, [src for _, src in code],
                                             everywhere=list(self.forbidden_everywhere))

        hide = [coursedir.root, *default_hidden(), *self.hide_paths, *self._db_file(info["db_url"]),
                *answer_key_paths([*self.sandbox_visible, *self._imported_course_modules(instructor)])]
        zygote = shared_zygote(limits, hide, python_paths(), self._preload(instructor), self.log)
        deadline = time.monotonic() + limits.submission_seconds     # the parts' time, not the sandbox's start
        plan = CellPlan()
        lines = [f"{student}/{assignment}/{notebook_id}: {len(test_idx)} graded parts, "
                 f"{len(code)} other code cells (each part's sandbox runs those above its test cell)"]
        checkers = importlib.import_module(self.checkers_module)
        comments: dict[str, list[str]] = {}
        records: dict[str, PartOutcome] = {}
        for index, gid in test_idx.items():
            started = time.monotonic()
            before = [(i, src) for i, src in code if i < index]     # what a kernel would have run by now
            result = verdict.grade_part(zygote, limits, before, plan, calls[gid], checkers, deadline=deadline,
                                        forbid=list(self.forbidden_operations.get(assignment, [])),
                                        findings=violations.get(gid, []), names=graded_names[gid])
            outputs = [nbformat.v4.new_output("stream", name="stdout", text=result.stdout)] if result.stdout else []
            if not result.passed:
                outputs.append(_error(result.ename, result.message))
            nb.cells[index].outputs = outputs
            if result.reason is Reason.FORBIDDEN:
                for answer in _answer_cells_defining(nb, graded_names[gid]):
                    comments.setdefault(answer, []).append(result.message)
            lines.append(f"  {gid}: {_log_line(result, time.monotonic() - started)}")
            records[gid] = PartOutcome(gid, result.outcome, list(result.mistakes), list(result.shortcuts),
                                       message=result.message[:300])
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

    def limits(self) -> Limits:
        """The sandbox's limits as configured (every field of :class:`.limits.Limits` is a trait here)."""
        return Limits(**{f.name: getattr(self, f.name) for f in fields(Limits)})

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
        secret = lambda m: any(m == k or m.startswith(k + ".") for k in ANSWER_KEY)   # noqa: E731
        return sorted({m for m in wanted if m in allowed and not secret(m)}, key=wanted.index)

    @staticmethod
    def _imported_course_modules(instructor_sources: set[str]) -> list[str]:
        """The course_lib modules the instructor's cells import (shown in the sandbox), the answer key excepted."""
        out = []
        for source in instructor_sources:
            try:
                tree = ast.parse(strip_magics(source))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    out += [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        return sorted({m for m in out if m.startswith("course_lib.")
                       and not any(m == k or m.startswith(k + ".") for k in ANSWER_KEY)})

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
                ours = not comment.manual_comment or comment.manual_comment.startswith(COMMENT)
                if ours:
                    found = messages.get(cell_name)
                    comment.manual_comment = f"{COMMENT} " + " ".join(found) if found else None
            gb.db.commit()

    def _write_log(self, coursedir: CourseDirectory, lines: list[str]) -> None:
        folder = os.path.join(coursedir.root, coursedir.autograded_directory)
        os.makedirs(folder, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with open(os.path.join(folder, self.log_name), "a", encoding="utf-8") as f:
            for line in lines:
                f.write(f"{stamp} {line}\n")


COMMENT = "[trusted grading]"          # starts the gradebook comments this grader writes (and may replace)
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


def _log_line(result: verdict.Verdict, seconds: float) -> str:
    """The trusted_grading.log line of one part (after its grade id)."""
    if not result.ran:
        return f"0 (policy) {result.message}" if result.reason is Reason.FORBIDDEN else \
            f"FAIL; not graded: {result.message}"
    return f"{'pass' if result.passed else 'FAIL'}; " + "; ".join([f"{seconds:.1f} s", *result.log])


def _error(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _answer_cells_defining(nb: NotebookNode, names: list[str]) -> list[str]:
    """grade_ids of the answer (solution) cells whose top level defines one of ``names``."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not utils.is_solution(cell):
            continue
        try:
            tree = ast.parse(strip_magics(cell.source))
        except SyntaxError:
            continue
        if any(n in names for stmt in tree.body for n in defined_names(stmt)):
            out.append(_grade_id(cell))
    return out


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")
