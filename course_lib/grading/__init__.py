"""Trusted grading: the grade is decided by code that never runs the student's code.

nbgrader normally runs a student's notebook and the instructor's test cells in one kernel, so the
student can replace anything the tests use. Here the student's cells run in a sandboxed child
process and only plain arrays come back; the real checkers of :mod:`course_lib.checkers` run in the
trusted process on those arrays, with an extra secret seed per graded part.

- :mod:`.protocol`         the wire format: a JSON header + ``.npy`` blobs, never pickles
- :mod:`.sandbox`          limits, namespaces, a user id and cgroups per worker, scrubbed environment; the zygote handle
- :mod:`.submission`       a submission is data: regular files only, links and devices refused, big extras left out
- :mod:`.child`            the untrusted side: the zygote and the worker that runs the student's cells
- :mod:`.remote`           a worker session and ``RemoteFunction``, the proxy a checker calls
- :mod:`.trusted`          reads the instructor's test cells, runs the checkers, scans for forbidden shortcuts
- :mod:`.nbgrader_plugin`  ``TrustedExecute``, the nbgrader preprocessor that replaces ``Execute``
- :mod:`.outcomes`         how each graded part ended (a named mistake, a timeout...), written beside the graded notebook
- :mod:`.parallel`         every submission of an assignment at once, on Dask, into one gradebook
- :mod:`.cli`              ``python -m course_lib.grading.cli ASSIGNMENT``, the instructor's command for it
- :mod:`.worker_preload`   what each Dask worker imports once before its first submission
- :mod:`.forbid`           in the worker: the answer key sealed, the assignment's forbidden operations switched off
- :mod:`.inert`            submissions shown inert in Formgrader and the feedback (Markdown allow-list, outputs)
"""
