"""Trusted grading: the grade is decided by code that never runs the student's code.

nbgrader normally runs a student's notebook and the instructor's test cells in one kernel, so the
student can replace anything the tests use. Here the student's cells run in a sandboxed child
process and only plain arrays come back; the real checkers of :mod:`course_lib.checkers` run in the
grader's process on those arrays, with an extra secret seed per graded part.

**Which module decides a grade:** :mod:`.verdict` (:func:`~.verdict.grade_part` returns each part's
:class:`~.verdict.Verdict`, with a :class:`~.reasons.Reason`). **Which code runs as the student:** the
:mod:`.sandboxed` subpackage, and nothing else.

Runs in the sandbox (untrusted)
- :mod:`.sandboxed`        isolation, the zygote, the worker that runs the student's cells, forbidden operations

Decides the grade (trusted, in the grader's process)
- :mod:`.verdict`          one part's verdict: forbidden shortcut? time left? then the checks against a fresh worker
- :mod:`.reasons`          the enum of reasons a part ends with (passed, check failed, forbidden, timed out, crashed...)
- :mod:`.testcells`        the instructor's test cells, read strictly into checker calls
- :mod:`.policy`           the static scan of the student's code for forbidden shortcuts
- :mod:`.grader`           the handles on the sandbox: the zygote, a worker's channel, ``RemoteFunction``

Shared by both sides (plain modules)
- :mod:`.protocol`         the wire format (a JSON header + ``.npy`` blobs, never pickles) and the operation names
- :mod:`.limits`           every limit of the sandbox, defined once
- :mod:`.answer_key`       the modules and files of the course's answer key, never shown in the sandbox

nbgrader and the class
- :mod:`.execute`          ``TrustedExecute``, the nbgrader preprocessor that replaces ``Execute``
- :mod:`.metadata`         ``RestoreCellMetadata``: nbgrader metadata rebuilt from the gradebook
- :mod:`.recovery`         a killed run is noticed and the next plain run grades again
- :mod:`.shared_zygote`    the zygote's lifetime in a grading process
- :mod:`.outcomes`         how each graded part ended, written beside the graded notebook
- :mod:`.submission`       a submission is data: regular files only, links and devices refused, big extras left out
- :mod:`.inert`            submissions shown inert in Formgrader and the feedback (Markdown allow-list, outputs)
- :mod:`.nbgrader_plugin`  the old import path of the preprocessors (for existing ``nbgrader_config.py`` files)

The parallel grader
- :mod:`.parallel`         every submission of an assignment at once, on Dask, into one gradebook
- :mod:`.parallel_worker`  a Dask worker's task and its state between submissions
- :mod:`.gradebook_copy`   the template gradebook sent to workers, and results copied back into the real one
- :mod:`.cli`              ``python -m course_lib.grading.cli ASSIGNMENT``, the instructor's command for it
- :mod:`.worker_preload`   what each Dask worker imports once before its first submission
- :mod:`.startup`          what the grading processes skip at start-up because it is slow
"""
