"""Sanitize step: every cell's nbgrader metadata rebuilt from the gradebook, before nbgrader reads it."""
from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = ["RestoreCellMetadata"]


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
