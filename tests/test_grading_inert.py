"""The sanitising of course_lib.grading.inert, without a browser: does any active content survive?

(The real Formgrader page in Chromium is ``tests/test_grading_inert_e2e.py``.)
"""
from __future__ import annotations

from html.parser import HTMLParser

import nbformat
import pytest
from jinja2 import Environment

from course_lib.grading.inert import SanitizeStudentContent, clean_html, html_as_text, markdown2html

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PAYLOADS = [
    '<img src="x" onerror="alert(1)">', "<script>alert(1)</script>", '<svg onload="alert(1)"></svg>',
    "[x](javascript:alert(1))", "![x](javascript:alert(1))", "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "![b](http://127.0.0.1:9/beacon.png)", "<div style=\"background:url('http://127.0.0.1:9/c')\">s</div>",
    '<iframe src="http://127.0.0.1:9/"></iframe>', '<meta http-equiv="refresh" content="0;url=http://x">',
    '<a href="javascript:alert(1)">x</a>', "<form action=http://x><input></form>", "<base href=http://x/>",
    '<details open ontoggle="alert(1)">d</details>', "<style>*{background:url(http://x)}</style>",
    "<object data=x></object>", '<a href="http://ok.example" onclick="alert(1)">ok</a>',
]
ACTIVE_TAGS = {"script", "svg", "iframe", "meta", "form", "base", "style", "object", "embed", "details", "input",
               "link", "frame", "math"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def active_content(html: str) -> list:
    """Tags and attributes of the parsed HTML that would run, load or navigate by themselves."""
    parser = _Tags()
    parser.feed(html)
    bad = []
    for tag, attrs in parser.found:
        if tag in ACTIVE_TAGS:
            bad.append(tag)
        for name, value in attrs.items():
            value = (value or "").strip().lower()
            runs = name.startswith("on") or name == "style"
            navigates = name == "href" and value.startswith(("javascript:", "data:"))
            loads = name == "src" and not value.startswith("data:image/png")
            if runs or navigates or loads:
                bad.append(f"{tag} {name}={value[:40]}")
    return bad


def render(markdown: str, attachments: dict | None = None) -> str:
    env = Environment()
    env.filters["md"] = markdown2html
    return env.from_string("{{ source | md }}").render(source=markdown, cell={"attachments": attachments or {}},
                                                       resources={})


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_renders_without_active_content(payload):
    for source in (payload, html_as_text(payload)):
        html = render(source)
        assert active_content(html) == [], html


def test_ordinary_markdown_math_links_and_attachments_survive():
    html = render("# Title\n\n**bold** and $a < b$ and [docs](https://pytorch.org)\n\n![fig](attachment:f.png)",
                  {"f.png": {"image/png": PNG}})
    assert "<strong>bold</strong>" in html and '<a href="https://pytorch.org"' in html
    assert "$a &lt; b$" in html and 'src="data:image/png;base64,' in html


def test_the_preprocessor_leaves_only_inert_cells():
    essay = nbformat.v4.new_markdown_cell('Answer <img src="x" onerror="alert(1)"> ends')
    essay.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "essay", "points": 2,
                                  "comment": "<script>alert(1)</script>"}
    raw = nbformat.v4.new_raw_cell("<script>alert(1)</script>")
    raw.metadata["raw_mimetype"] = "text/html"
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": '<b onclick="alert(1)">hi</b>', "application/javascript": "alert(1)",
        "image/svg+xml": "<svg onload='alert(1)'/>", "text/plain": "hi"})]
    nb = nbformat.v4.new_notebook(cells=[essay, raw, code])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    nb, _ = SanitizeStudentContent().preprocess(nb, {})
    assert nb.cells[0].source == 'Answer &lt;img src="x" onerror="alert(1)"&gt; ends'      # shown as written
    assert nb.cells[0].metadata.nbgrader["comment"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert nb.cells[1].source == "&lt;script&gt;alert(1)&lt;/script&gt;" and "raw_mimetype" not in nb.cells[1].metadata
    assert nb.cells[2].outputs[0].data == {"text/html": "<b>hi</b>", "text/plain": "hi"}
    assert "widgets" not in nb.metadata
    assert clean_html(nb.cells[2].outputs[0].data["text/html"]) == "<b>hi</b>"                # idempotent
