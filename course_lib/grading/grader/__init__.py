"""The grader's handles on the sandbox: trusted code that starts it, talks to it and never runs student code.

- :mod:`.zygote`  :class:`~.zygote.Zygote`, the handle on the sandbox's zygote; a user id and cgroups per worker
- :mod:`.worker`  :class:`~.worker.Worker`, the grader's end of one worker's channel: cells, then calls
- :mod:`.remote`  :class:`~.remote.RemoteFunction`, what a checker calls instead of the student's function

Their other ends run in the sandbox: :mod:`course_lib.grading.sandboxed` (``zygote``, ``worker``).
"""
