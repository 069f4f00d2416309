"""Crash recovery: a grading run killed at any point is noticed, and the next plain run grades again.

nbgrader skips a submission whose autograded folder exists, and it writes that folder before it
grades. :class:`MarkGradingStarted` (first of the sanitize step) leaves a marker beside the folder,
:class:`MarkGradingFinished` (last of the autograde step) removes it once the grades are saved, and
:func:`recover_interrupted` (called by ``nbgrader_config.py`` when any nbgrader command starts)
removes the folders of submissions whose marker is still there. :func:`absent_while_grading` keeps
the folder out of the way while a notebook is graded. :func:`check_submission` refuses links and
devices in a submission (:mod:`.submission`) before anything reads it.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor

from . import submission

__all__ = ["MARKER", "MarkGradingStarted", "MarkGradingFinished", "recover_interrupted", "absent_while_grading",
           "check_submission", "autograded_folder"]

MARKER = ".incomplete"


def autograded_folder(preprocessor: NbGraderPreprocessor, resources: ResourcesDict) -> str:
    coursedir = CourseDirectory(config=preprocessor.config)
    info = resources["nbgrader"]
    return coursedir.format_path(coursedir.autograded_directory, info["student"], info["assignment"])


class MarkGradingStarted(NbGraderPreprocessor):
    """First of the sanitize step: leave ``autograded/<student>/<assignment>.incomplete`` beside the folder
    nbgrader is about to write, so that a run killed before the grades are saved is noticed next time."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        check_submission(self, resources)
        marker = autograded_folder(self, resources).rstrip(os.sep) + MARKER
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        with open(marker, "w") as f:
            f.write("grading started; this submission is graded again by the next nbgrader autograde\n")
        return nb, resources


def check_submission(preprocessor: NbGraderPreprocessor, resources: ResourcesDict) -> None:
    """A submission with a link, device or the like fails whole (nbgrader then removes what it had copied to
    autograded/); extra files over the size limit are removed from autograded/, so no feedback carries them."""
    coursedir = CourseDirectory(config=preprocessor.config)
    info = resources["nbgrader"]
    folder = coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"])
    for rel in submission.check(folder):
        path = os.path.join(autograded_folder(preprocessor, resources), rel)
        if os.path.lexists(path):
            os.unlink(path)
        preprocessor.log.warning("%s: %s is larger than %d MiB: not copied to autograded/ or the feedback",
                                 info["student"], rel, submission.MAX_EXTRA_BYTES // 2**20)


class MarkGradingFinished(NbGraderPreprocessor):
    """Last of the autograde step, after SaveAutoGrades: the grades are in the gradebook, drop the marker."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        marker = autograded_folder(self, resources).rstrip(os.sep) + MARKER
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
def absent_while_grading(dest: str):
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
