"""Imported once by every grading worker before its first submission, so that no submission pays for it.

:func:`course_lib.grading.parallel.grade_assignment` starts its local Dask workers from a
``forkserver`` that imports this module first: each worker is a fork of a process that already has
nbgrader, the course's nbgrader plugin, PyTorch and the checkers loaded (about 5 s of imports,
paid once instead of once per worker). On a real Dask cluster, start the workers with it:

    dask worker tcp://scheduler:8786 --nthreads 1 --preload course_lib.grading.worker_preload

The student's code never runs in these processes: it runs in the sandbox's zygote, a fresh
interpreter each worker starts (:class:`course_lib.grading.grader.zygote.Zygote`).
"""
from course_lib.grading.startup import skip_iri_grammar

skip_iri_grammar()

import nbgrader.api  # noqa: E402
import nbgrader.converters  # noqa: E402
import torch  # noqa: E402,F401

import course_lib.checkers  # noqa: E402,F401
import course_lib.grading.execute  # noqa: E402,F401
import course_lib.grading.parallel_worker  # noqa: E402,F401
