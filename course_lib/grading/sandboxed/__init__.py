"""What runs in the sandbox: the code that becomes the student's process, and the zygote it is forked from.

Nothing here decides a grade; nothing here trusts what the student's code sends or leaves behind.

- :mod:`.isolation`  how the zygote isolates itself and each worker is contained (namespaces, cgroups, a
                     user id of its own, limits, a scrubbed environment), as root, before any student code
- :mod:`.zygote`     the zygote: imports torch once, forks one worker per graded part, cleans up after it
- :mod:`.worker`     the worker: runs the student's cells, then answers the grader's calls (the student's code)
- :mod:`.forbid`     in the worker: the answer key sealed, the assignment's forbidden operations switched off

The grader's end of each channel is :mod:`course_lib.grading.grader` (same module names: ``zygote``,
``worker``); what crosses is :mod:`course_lib.grading.protocol`, within :mod:`course_lib.grading.limits`.
"""
