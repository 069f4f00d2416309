"""Old home of the course's nbgrader preprocessors, kept so that existing ``nbgrader_config.py`` files work.

Instructors have copies of ``nbgrader_config.py`` that import
``course_lib.grading.nbgrader_plugin.TrustedExecute`` (and the others below); those dotted names stay
importable from here. The classes live in :mod:`.execute` (``TrustedExecute``), :mod:`.metadata`
(``RestoreCellMetadata``) and :mod:`.recovery` (``MarkGradingStarted``, ``MarkGradingFinished``,
``recover_interrupted``). New configuration should import them from there.
"""
from .execute import TrustedExecute
from .metadata import RestoreCellMetadata
from .recovery import MARKER, MarkGradingFinished, MarkGradingStarted, recover_interrupted

__all__ = ["TrustedExecute", "RestoreCellMetadata", "MarkGradingStarted", "MarkGradingFinished",
           "recover_interrupted", "MARKER"]
