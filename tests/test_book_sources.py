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
    "chapters/07_seq2seq_attention": "exercises/07_seq2seq/seq2seq.ipynb",
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


# --------------------------------------------------------------------------- statements a reader would learn wrongly
#: Sentences an expert review found wrong or unmeasured (book review of 2026-11-29, items C1-C25), each
#: with the page it was on. None may come back: a phrase here is a regression, not a style preference.
WRONG_STATEMENTS = {
    "different architecture rather than a different optimiser": "plain RNNs do learn long lags with "
        "identity initialisation (Le et al. 2015) or Hessian-free training (Martens & Sutskever 2011)",
    "cannot learn that something it saw a hundred steps ago": "true only with the usual initialisation "
        "and first-order training",
    "fused C++": "on a CPU nn.RNN runs a C++ loop; only nn.LSTM gets oneDNN's fused kernel",
    "six lines, one": "the backward loop is eight lines and computes more than the two derived equations",
    "meets the same large": "the clipped run never met the unclipped run's gradients",
    "2014 paper": "arXiv:1406.1078v1 resets after the product, the published v3 before: say which version",
    "libraries moved the gate": "PyTorch and cuDNN kept the first version's form; nothing was moved",
    "four seeds we tried": "an unmeasured claim on a page that promises measurements",
    "phrase forever": "greedy decoding was never shown on the page",
    "18 to 69 seconds": "torch.compile was never measured by the book",
    "the issue's": "readers do not know the project's issue tracker",
    "give or take": "numbers in prose come from glue, not from an estimate by hand",
    "looks directly at every earlier": "only causal self-attention is restricted to earlier positions",
    "twin below shows it does": "the tanh twin also differs in learning rate and initial weights: it cannot "
        "show what the activation does",
    "comes from the initialisation, not": "the IRNN changes the activation (ReLU) as well as the start",
    "c_L]`, each": "with return_sequences=True the first output is (N, L, H); only h_L and c_L are (N, H)",
}


def _reader_text(docname: str) -> str:
    path = _source(docname)
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("phrase", sorted(WRONG_STATEMENTS))
def test_no_page_repeats_a_corrected_statement(phrase):
    """Has every statement the review showed to be wrong or unmeasured stayed out of the book?"""
    found = [doc for doc in PAGES if phrase.lower() in " ".join(_reader_text(doc).lower().split())]
    assert not found, f"{found} say {phrase!r}, which is wrong: {WRONG_STATEMENTS[phrase]}"


def test_adding_problem_is_introduced_once_and_matches_the_data():
    """Is the adding problem defined on one page only, with the value range that adding_problem draws from?"""
    from course_lib.data import adding_problem

    defining = [doc for doc in PAGES if "(adding-problem)=" in _reader_text(doc)]
    assert defining == ["chapters/01_why_rnns_forget"], (
        f"the adding problem should be introduced once, in chapter 1 with the label (adding-problem)=; found {defining}")
    for doc in PAGES:
        if doc != defining[0]:
            text = " ".join(_reader_text(doc).split())
            for phrase in ("drawn uniformly", "sum of the two marked", "sum of two marked"):
                assert phrase not in text, (f"{doc} introduces the adding problem again ({phrase!r}): "
                                            "refer to {ref}`adding-problem` instead")
    text = " ".join(_reader_text(defining[0]).split())
    assert "$[0, 1)$" in text and "$[0, 1]$" not in text, "chapter 1 should give the value range as [0, 1)"
    x, _ = adding_problem(4096, 50, seed=0)
    values = x[..., 0]
    assert values.min() >= 0 and values.max() < 1, "adding_problem's values left [0, 1): update the book"
    assert "Le, Jaitly and Hinton (2015)" in text, "chapter 1 should credit the variant it uses"


def test_gru_history_names_the_paper_versions():
    """Does chapter 3 say which version of Cho et al. resets before and which after the product?"""
    text = " ".join(_reader_text("chapters/03_gru").split())
    assert "1406.1078v1" in text and "1406.1078v3" in text, "chapter 3 should name arXiv v1 (after) and v3 (before)"
    tied = text[text.index("tied to the forget gate"):][:800]
    assert "reset gate" in tied, "the comparison with a tied-gate LSTM must say that the GRU's reset gate has no LSTM counterpart"


def test_double_bias_is_explained_once():
    """Is PyTorch's second bias explained in one place (chapter 2's label two-biases) and referred to elsewhere?"""
    labelled = [doc for doc in PAGES if "(two-biases)=" in _reader_text(doc)]
    assert labelled == ["chapters/02_lstm"], f"the two biases should be explained once, in chapter 2; found {labelled}"
    for doc in PAGES:
        text = " ".join(_reader_text(doc).split())
        if doc == labelled[0]:
            continue
        for phrase in ("redundant numbers per layer", "one of them is redundant", "only their sum matters"):
            assert phrase not in text, f"{doc} explains the two biases again ({phrase!r}): refer to {{ref}}`two-biases`"


def test_attention_statements_are_complete():
    """Does chapter 8 state the zero-mean assumption of the sqrt(d_k) argument and the output projection W_O?"""
    text = " ".join(_reader_text("chapters/08_transformers").split())
    assert "mean zero and variance one" in text, "the variance-d_k argument needs zero-mean q and k (Vaswani et al., note 4)"
    assert "W_O" in text, "the multi-head description should include the output projection W_O"


# --------------------------------------------------------------------------- pedagogy: pictures, self-checks
SELF_CHECK_CHAPTERS = ["chapters/01_why_rnns_forget", "chapters/02_lstm", "chapters/03_gru",
                       "chapters/05_keras_pytorch", "chapters/06_toolbox", "chapters/08_transformers",
                       "chapters/04_language_models", "chapters/07_seq2seq_attention"]
ANSWER = re.compile(r"^:::\{admonition\} Answer\n:class: dropdown\n", re.M)


@pytest.mark.parametrize("docname", SELF_CHECK_CHAPTERS)
def test_chapter_has_self_checks_with_hidden_answers(docname):
    """Does the chapter end with 3-5 self-check questions, each answer behind a toggle (dropdown)?"""
    text = _reader_text(docname)
    assert "## Self-check" in text, f"{docname} has no '## Self-check' section"
    start = text.index("## Self-check")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else len(text)]
    questions = re.findall(r"^\*\*\d+\.\*\*", section, re.M)
    answers = ANSWER.findall(section)
    assert 3 <= len(questions) <= 5, f"{docname}: {len(questions)} self-check questions, expected 3 to 5"
    assert len(answers) == len(questions), f"{docname}: {len(questions)} questions but {len(answers)} hidden answers"


#: Each cell diagram and the first equation it must come before.
DIAGRAM_BEFORE = {
    "chapters/01_why_rnns_forget": ("diagrams.unrolled_rnn(", "$$"),
    "chapters/02_lstm": ('diagrams.lstm_cell("cell_state")', "$$"),
    "chapters/03_gru": ("diagrams.gru_cell()", "$$"),
    "chapters/08_transformers": ("diagrams.dependency_paths(", "The loop has $L$ iterations"),
}


@pytest.mark.parametrize("docname", sorted(DIAGRAM_BEFORE))
def test_diagram_comes_before_the_equations_it_illustrates(docname):
    """Does the chapter draw its cell (with course_lib.diagrams) before its first equation about it?"""
    text = _reader_text(docname)
    drawing, equation = DIAGRAM_BEFORE[docname]
    assert drawing in text, f"{docname} should draw {drawing!r}"
    assert text.index(drawing) < text.index(equation), f"{docname}: the picture comes after {equation!r}"


def test_lstm_is_drawn_gate_by_gate_in_order():
    """Does chapter 2 build the LSTM picture up in the four stages, in order, before the cell equations?"""
    from course_lib.diagrams import LSTM_STAGES

    text = _reader_text("chapters/02_lstm")
    positions = [text.index(f'diagrams.lstm_cell("{stage}")') for stage in LSTM_STAGES]
    assert positions == sorted(positions) and positions[-1] < text.index("(lstm-state)")


#: Each chapter's worked example (numbers computed on the page and glued into the prose) and the algebra
#: it must come before: the first display equation, or, in chapter 5, which has none, the section that
#: explains the layouts the example trips over.
WORKED_EXAMPLE_BEFORE = {
    "chapters/01_why_rnns_forget": "$$",
    "chapters/02_lstm": "$$",
    "chapters/03_gru": "$$",
    "chapters/05_keras_pytorch": "## Moving weights between the frameworks",
}


@pytest.mark.parametrize("docname", sorted(WORKED_EXAMPLE_BEFORE))
def test_worked_example_comes_before_the_algebra(docname):
    """Does the chapter compute a worked example and quote its numbers (glue) before its first equation?"""
    text = _reader_text(docname)
    algebra = text.index(WORKED_EXAMPLE_BEFORE[docname])
    computed, quoted = text.find("glue("), text.find("{glue:text}")
    assert 0 <= computed < algebra, f"{docname}: no glued computation before {WORKED_EXAMPLE_BEFORE[docname]!r}"
    assert 0 <= quoted < algebra, f"{docname}: the prose quotes no computed number before the algebra"


def test_gru_worked_example_shows_the_update_gate_mixing():
    """Does chapter 3's worked example quote the mixed state for a keeping and a replacing update gate?"""
    text = _reader_text("chapters/03_gru")
    example = text[:text.index("$$")]
    for key in ("gru_ex_h_9", "gru_ex_h_1", "gru_ex_n", "gru_ex_n_reset"):
        assert f"{{glue:text}}`{key}" in example, f"chapter 3's opening example should quote {key}"


def test_parameter_counting_is_explained_once():
    """Are parameters counted (formula and check against torch.nn) in chapter 2 only, and referred to elsewhere?"""
    display_math = re.compile(r"\$\$(.*?)\$\$", re.S)
    for doc in PAGES:
        text = _reader_text(doc)
        if doc == "chapters/02_lstm":
            assert "## Counting parameters" in text, "chapter 2 is where parameters are counted"
            continue
        assert not re.search(r"^#+ Counting parameters", text, re.M), f"{doc} counts parameters again"
        formulas = [m for m in display_math.findall(text) if "H_{in}" in m and "2H" in m]
        assert not formulas, f"{doc} derives the parameter count again: {formulas}; refer to {{ref}}`two-biases`"
    for doc in ("chapters/03_gru", "chapters/05_keras_pytorch"):
        assert "{ref}`two-biases`" in _reader_text(doc), f"{doc} should refer to chapter 2's count"


def test_chapter_1_says_what_rnns_are_for_before_building_one():
    """Does chapter 1 name the wirings (many to one, many to many, one to many) before its first equation?"""
    text = _reader_text("chapters/01_why_rnns_forget")
    first_equation = text.index("$$")
    for wiring in ("**many to one**", "**many to many", "**one to many**"):
        assert 0 <= text.find(wiring) < first_equation, f"chapter 1 should present {wiring} before the algebra"


def test_chapter_1_runs_an_identity_initialised_rnn():
    """Does chapter 1 train an identity-initialised ReLU RNN and report its result from the run (glue)?"""
    text = _reader_text("chapters/01_why_rnns_forget")
    code = "\n".join(body for _, body in CODE_CELL.findall(text))
    assert 'nonlinearity="relu"' in code and "torch.eye(" in code, "chapter 1 should build the IRNN of Le et al."
    assert "{glue:text}`irnn_verdict`" in text and "{glue:text}`irnn_mse" in text, (
        "the IRNN's result should be quoted from the run, not written by hand")


def test_forecaster_verdict_against_its_baseline_comes_from_the_run():
    """Does chapter 5 say whether the trained GRU beats the seasonal-naive forecast from the computed errors?"""
    text = _reader_text("chapters/05_keras_pytorch")
    for key in ("forecast_verdict", "forecast_gru_mse", "forecast_naive_mse"):
        assert f"{{glue:text}}`{key}" in text, f"chapter 5 should quote {key} from the run"


#: Pages whose visible code is kept to the width of the content column (about 77 monospace characters
#: at the browser test's default 1280 px): longer lines do not scroll (course.css wraps them) but break
#: mid-expression, which is hard to read.
NARROW_CODE_PAGES = ["chapters/01_why_rnns_forget", "chapters/02_lstm", "chapters/03_gru",
                     "chapters/05_keras_pytorch", "appendix/benchmarks", "chapters/04_language_models",
                     "chapters/06_toolbox", "chapters/07_seq2seq_attention", "chapters/08_transformers"]
CODE_COLUMN = 76


@pytest.mark.parametrize("docname", NARROW_CODE_PAGES)
def test_visible_code_fits_the_column(docname):
    """Does every line of the code a reader sees without opening a toggle fit the content column?"""
    long_lines = []
    for _, body in CODE_CELL.findall(_reader_text(docname)):
        tags = re.search(r"^:tags:\s*\[(.*)\]", body, re.M)
        if tags and re.search(r"remove-input|remove-cell|hide-input|hide-cell", tags.group(1)):
            continue
        long_lines += [line for line in body.splitlines() if len(line) > CODE_COLUMN]
    assert not long_lines, f"{docname}: code lines wider than {CODE_COLUMN} characters: {long_lines[:5]}"
