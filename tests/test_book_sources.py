"""Fast static checks of the book's sources (no build, no kernel).

The book is a set of MyST markdown notebooks listed in ``book/_toc.yml``. These tests read the
files as text and check the conventions the build and the course rely on: every listed page
exists and is a jupytext MyST notebook, code lives in ``course_lib`` (pages import it and define
no functions), every chapter links its exercise notebook, and the configuration stays offline.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

#: The exercise notebook each chapter links to, relative to the repository root.
EXERCISES = {
    "chapters/01_why_rnns_forget": "exercises/01_rnn/rnn.ipynb",
    "chapters/02_lstm": "exercises/02_lstm/lstm.ipynb",
    "chapters/03_gru": "exercises/03_gru/gru.ipynb",
    "chapters/04_language_models": "exercises/06_language_model/language_model.ipynb",
    "chapters/05_keras_pytorch": "exercises/04_keras_pytorch/keras_pytorch.ipynb",
    "chapters/08_transformers": "exercises/05_attention/attention.ipynb",
}

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
CODE_CELL = re.compile(r"^(`{3,})\{code-cell\}[^\n]*\n(.*?)^\1\s*$", re.S | re.M)
DOWNLOAD = re.compile(r"\{download\}`[^`]*?<([^>]+)>`|\{download\}`([^`<]+)`")


def _toc_entries(node) -> list[str]:
    """Every ``file:`` (and the root) of a jupyter-book ``_toc.yml``, in reading order."""
    out = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                out.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []):
                out.extend(_toc_entries(child))
    return out


def _toc() -> dict:
    return yaml.safe_load((BOOK / "_toc.yml").read_text())


def _source(docname: str) -> Path:
    for suffix in (".md", ".ipynb"):
        path = BOOK / f"{docname}{suffix}"
        if path.exists():
            return path
    return BOOK / f"{docname}.md"


PAGES = _toc_entries(_toc())


def test_toc_has_captioned_parts():
    """Is the table of contents a jb-book with parts, each with a caption?"""
    toc = _toc()
    assert toc.get("format") == "jb-book", "book/_toc.yml should say `format: jb-book`"
    parts = toc.get("parts")
    assert parts, "book/_toc.yml should group the chapters into `parts:`"
    for part in parts:
        assert part.get("caption"), f"every part needs a caption, this one has none: {part}"
    assert len(PAGES) == len(set(PAGES)), f"a page is listed twice in book/_toc.yml: {PAGES}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_exists_with_jupytext_header(docname):
    """Is every page of the toc a MyST markdown notebook with the jupytext header and a Python 3 kernel?"""
    path = _source(docname)
    assert path.exists(), f"book/_toc.yml lists {docname!r} but {path.relative_to(ROOT)} does not exist"
    text = path.read_text()
    match = FRONT_MATTER.match(text)
    assert match, f"{path.relative_to(ROOT)} should start with a '---' jupytext front matter block"
    meta = yaml.safe_load(match.group(1))
    rep = (meta.get("jupytext") or {}).get("text_representation") or {}
    assert rep.get("format_name") == "myst" and rep.get("extension") == ".md", (
        f"{path.relative_to(ROOT)}: jupytext.text_representation should say format_name: myst, extension: .md")
    kernel = meta.get("kernelspec") or {}
    assert kernel.get("name") == "python3" and kernel.get("language") == "python", (
        f"{path.relative_to(ROOT)}: kernelspec should be name: python3, language: python, got {kernel}")


@pytest.mark.parametrize("docname", PAGES)
def test_page_code_uses_course_lib_and_defines_no_functions(docname):
    """Do the page's code cells import course_lib, and leave every function definition to it?"""
    path = _source(docname)
    if not path.exists():
        pytest.skip(f"{docname} is missing (reported by test_page_exists_with_jupytext_header)")
    cells = [body for _, body in CODE_CELL.findall(path.read_text())]
    if not cells:
        return  # a page of prose only
    code = "\n".join(cells)
    assert re.search(r"^\s*(from|import)\s+course_lib\b", code, re.M), (
        f"{path.relative_to(ROOT)} runs code but never imports course_lib: the book's code lives there")
    defs = re.findall(r"^\s*(?:async\s+)?def\s+(\w+)", code, re.M)
    assert not defs, (
        f"{path.relative_to(ROOT)} defines {defs}: move them into course_lib and show them "
        "with a literalinclude or inspect.getsource")


@pytest.mark.parametrize("docname", sorted(EXERCISES))
def test_chapter_links_its_exercise_notebook(docname):
    """Does each chapter offer its assignment's notebook for download, and does that file exist?"""
    path = _source(docname)
    if not path.exists():
        pytest.skip(f"{docname} is missing (reported by test_page_exists_with_jupytext_header)")
    targets = [a or b for a, b in DOWNLOAD.findall(path.read_text())]
    wanted = EXERCISES[docname]
    linked = [t for t in targets if (path.parent / t).resolve() == (ROOT / wanted).resolve()]
    assert linked, (f"{path.relative_to(ROOT)} should link its exercise with "
                    f"{{download}}`the exercise notebook <{Path('../..') / wanted}>`; found {targets}")
    assert (ROOT / wanted).exists(), f"{path.relative_to(ROOT)} links {wanted}, which does not exist"


def test_config_builds_offline_from_cache():
    """Does _config.yml execute with a cache, bundle MathJax, and leave out everything that fetches from outside?"""
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    execute = config.get("execute", {})
    assert execute.get("execute_notebooks") == "cache", "execute.execute_notebooks should be 'cache'"
    assert execute.get("timeout", 0) >= 60, "execute.timeout should leave a page's slow cells time to run"
    assert config.get("only_build_toc_files") is True, "only_build_toc_files should be true"
    assert "_build" in config.get("exclude_patterns", []), "exclude_patterns should contain _build"
    sphinx = config.get("sphinx") or {}
    # sphinx.config.extensions replaces Jupyter Book's list; extra_extensions adds to it.
    from jupyter_book.config import get_default_sphinx_config

    extensions = ((sphinx.get("config") or {}).get("extensions")
                  or get_default_sphinx_config()["extensions"] + (sphinx.get("extra_extensions") or []))
    assert "sphinx-mathjax-offline" in extensions, "MathJax must come from sphinx-mathjax-offline, not a CDN"
    assert "sphinx_thebe" not in extensions, "sphinx_thebe loads code from a CDN and breaks every page's JavaScript"
    launch = config.get("launch_buttons", {})
    for key in ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url"):
        assert not launch.get(key), f"launch_buttons.{key} would send readers to an outside service"
    assert not launch.get("thebe"), "launch_buttons.thebe loads code from a CDN"
    html = config.get("html", {})
    analytics = html.get("analytics", {})
    assert not analytics.get("google_analytics_id") and not analytics.get("plausible_analytics_domain"), (
        "the book must not load analytics")
    for key in ("use_repository_button", "use_edit_page_button", "use_issues_button"):
        assert not html.get(key), f"html.{key} links to an outside repository"
