"""Student content made inert wherever nbgrader shows it: Formgrader's pages, the feedback HTML.

A submitted notebook is the student's file: its Markdown (the hand-graded essay), raw cells, outputs,
attachments and metadata can carry HTML that runs in the browser of whoever opens it, and Formgrader
runs in the instructor's logged-in Jupyter session. Two pieces, both configured in ``nbgrader_config.py``:

- :func:`markdown2html`, the Markdown filter of nbgrader's HTML exporters (``HTMLExporter.filters``):
  nbconvert's own renderer (math, code, attachments), then an allow-list of tags, attributes and URL
  schemes (:func:`clean_html`): no script, no event handler, no ``javascript:``/``data:`` link, no
  frame, form or style, and images only from the notebook's own attachments (nothing is fetched);
  what is not allowed is shown as text, so the instructor sees what the student wrote;
- :class:`SanitizeStudentContent`, a preprocessor run in the autograde pipeline (so that the
  autograded notebook Formgrader displays is clean) and by every HTML export
  (``HTMLExporter.preprocessors``): the HTML of Markdown answer cells becomes text in the file itself
  (:func:`html_as_text`: the answer stays readable, Markdown and all), raw cells become text, outputs
  keep only plain text, PNG/JPEG/GIF and cleaned HTML, attachments only PNG/JPEG/GIF, the notebook's
  widget state is dropped (it would load scripts), and the comments shown in the feedback are escaped.
"""
from __future__ import annotations

import html
import re
from typing import Any

import bleach
from jinja2 import pass_context
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor

__all__ = ["clean_html", "html_as_text", "markdown2html", "SanitizeStudentContent"]

TAGS = frozenset({"a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5",
                  "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup",
                  "table", "tbody", "td", "th", "thead", "tr", "ul"})
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*$")


def _allowed(tag: str, name: str, value: str) -> bool:
    if name in ("title", "alt"):
        return True
    if tag == "a":
        return name == "href" and (value.startswith("#") or re.match(r"^(https?|mailto):", value) is not None) \
            or name == "class"
    if tag == "img":
        return name == "src" and _DATA_IMAGE.match(value) is not None      # an attachment: nothing is fetched
    if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return name == "id"
    if tag in ("code", "pre", "span", "div"):
        return name == "class"
    if tag in ("td", "th"):
        return name in ("align", "colspan", "rowspan")
    return False


def clean_html(text: str) -> str:
    """``text`` with only the tags of :data:`TAGS` and safe attributes; anything else is escaped (shown as text)."""
    return bleach.clean(text, tags=TAGS, attributes=_allowed, protocols={"http", "https", "mailto", "data"},
                        strip=False, strip_comments=True)


def html_as_text(markdown: str) -> str:
    """Every HTML tag of a Markdown text escaped, so that it shows as written; the Markdown itself is kept."""
    text = bleach.clean(markdown, tags=set(), attributes={}, strip=False, strip_comments=False)
    return text.replace("<!--", "&lt;!--")


@pass_context
def markdown2html(context: Any, source: str) -> str:
    """nbconvert's Markdown rendering (math, attachments as data URLs), then :func:`clean_html`."""
    cell = context.get("cell", {}) or {}
    path = context.get("resources", {}).get("metadata", {}).get("path", "")
    renderer = IPythonRenderer(escape=False, attachments=cell.get("attachments", {}), embed_images=False, path=path,
                               anchor_link_text="¶", exclude_anchor_links=False)
    return clean_html(MarkdownWithMath(renderer=renderer).render(source))


class SanitizeStudentContent(Preprocessor):
    """Raw cells as text, outputs and attachments reduced to inert types, no widget state, clean comments."""

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and isinstance(meta, dict) and meta.get("solution"):
            cell.source = html_as_text(cell.source)  # the answer itself, so that even a raw view of the file is inert
        if cell.cell_type == "raw":
            cell.source = html.escape(cell.source)
            cell.metadata.pop("raw_mimetype", None)
            cell.metadata.pop("format", None)
        if "attachments" in cell:
            cell.attachments = {name: {k: v for k, v in files.items() if k in IMAGE_TYPES}
                                for name, files in cell.attachments.items()}
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") in ("display_data", "execute_result"):
                    data = output.get("data", {})
                    for key in list(data):
                        if key == "text/html":
                            data[key] = clean_html(data[key] if isinstance(data[key], str) else "".join(data[key]))
                        elif key not in ("text/plain", *IMAGE_TYPES):
                            del data[key]
        if isinstance(meta, dict) and isinstance(meta.get("comment"), str):
            meta["comment"] = html.escape(meta["comment"], quote=False)
        return cell, resources
