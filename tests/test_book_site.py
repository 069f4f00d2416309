"""The built book in a real browser: headless Chromium driven by Playwright, fully offline.

A session fixture reuses ``book/_build/html`` when it is newer than every book source and
otherwise builds it with ``python3 dev.py book`` (the README's command). The site is served from
127.0.0.1 and every page of the table of contents is opened. For each page: no console errors,
no failed requests, no request to any other host, every formula typeset by the bundled MathJax,
every image loaded, and at least one figure when the page's code draws one. A screenshot of each
page goes to ``artifacts/screenshots/``. The built search page must find "forget gate", and no
built page may name another server in a <script src>, <link href> or <img src>.

Needs the system Chromium (``apt-get install -y chromium``); Playwright never downloads a browser here.
"""
from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HTML = BOOK / "_build" / "html"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
BUILD_TIMEOUT_S = 3600


def _toc_pages() -> list[str]:
    def walk(node) -> list[str]:
        out = []
        if isinstance(node, dict):
            out += [node[k] for k in ("root", "file") if k in node]
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    out += walk(child)
        return out
    return walk(yaml.safe_load((BOOK / "_toc.yml").read_text()))


PAGES = _toc_pages()

# A code line that draws a figure: a course_lib.plots function or a new matplotlib figure.
DRAWS_FIGURE = re.compile(r"(?<![\w.])(?:plots\.)?plot_\w+\(|\bplt\.(subplots|figure)\(")


def _draws_figures(docname: str) -> bool:
    source = BOOK / f"{docname}.md"
    return source.exists() and bool(DRAWS_FIGURE.search(source.read_text()))


def _newest_source_mtime() -> float:
    sources = [p for p in BOOK.rglob("*") if p.is_file() and "_build" not in p.relative_to(BOOK).parts]
    return max(p.stat().st_mtime for p in sources)


def _site_is_fresh() -> bool:
    """Is the last build newer than every source, and did no page fail to execute in it?

    Sphinx rewrites searchindex.js at the end of every build: its age is the build's age.
    MyST-NB writes reports/<page>.err.log when a page's code fails; one written since the last
    edit means the current build is a failed one, so it is built again (and the failure shown).
    """
    index = HTML / "searchindex.js"
    if not index.exists() or not all((HTML / f"{page}.html").exists() for page in PAGES):
        return False
    newest_source = _newest_source_mtime()
    failures = [log for log in (HTML / "reports").rglob("*.err.log") if log.stat().st_mtime > newest_source]
    return not failures and index.stat().st_mtime > newest_source


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """book/_build/html, built first unless it is newer than every file under book/."""
    if not _site_is_fresh():
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "book"], cwd=ROOT,
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        if result.returncode != 0:
            pytest.fail(f"`python3 dev.py book` failed (exit {result.returncode}) after "
                        f"{time.perf_counter() - start:.0f} s:\n{(result.stdout + result.stderr)[-4000:]}")
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def base_url(site_dir: Path):
    """The built site served by http.server on 127.0.0.1 and a free port, in a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()



class PageVisit:
    """A browser page that records console errors, failed requests and requests to other hosts."""

    def __init__(self, browser, base_url: str) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.outside: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("requestfailed", lambda req: self.failed.append(f"{req.url} ({req.failure})"))
        self.page.on("response", lambda resp: resp.status >= 400 and self.failed.append(f"{resp.url} ({resp.status})"))

    def _route(self, route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname != "127.0.0.1":
            self.outside.append(url)
            route.abort()
        else:
            route.continue_()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, base_url):
    visits = []

    def open_page(path: str) -> PageVisit:
        v = PageVisit(browser, base_url)
        visits.append(v)
        v.page.goto(f"{base_url}/{path}", wait_until="load")
        return v

    yield open_page
    for v in visits:
        v.close()


# Counts math nodes and checks that MathJax typeset every one of them. Sphinx wraps each formula in
# span.math / div.math; MathJax 3 puts an <mjx-container> inside. <mjx-merror> marks a TeX error.
MATH_REPORT = """async () => {
  const nodes = [...document.querySelectorAll('span.math, div.math')];
  if (nodes.length && window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const untypeset = nodes.filter(n => !n.querySelector('mjx-container')).map(n => n.textContent.slice(0, 60));
  const errors = [...document.querySelectorAll('mjx-merror')].map(n => n.textContent.slice(0, 60));
  const clone = (document.querySelector('main') || document.body).cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .cell_output').forEach(n => n.remove());
  const text = clone.textContent;
  const raw = text.match(/\\$\\$[^$]+\\$\\$|\\$[^$\\s][^$\\n]*?\\$|\\\\\\(|\\\\\\[/g) || [];
  return {count: nodes.length, containers: document.querySelectorAll('mjx-container').length,
          untypeset, errors, raw: raw.slice(0, 5)};
}"""

IMAGE_REPORT = """async () => {
  const imgs = [...document.images];
  imgs.forEach(img => { img.loading = 'eager'; });
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(resolve => { img.onload = img.onerror = resolve; })));
  return imgs.map(img => ({src: img.currentSrc.slice(0, 80), width: img.naturalWidth}));
}"""


# An element that makes the browser fetch its URL as the page loads.
FETCHED_URL = re.compile(r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=[\"']https?://"
                         r"|<link\b[^>]*\bhref=[\"']https?://", re.I)


def test_built_pages_name_no_outside_urls(site_dir):
    """Does no built page point a <script src>, <link href> or <img src> at another server?"""
    offenders = {}
    for page in sorted(site_dir.rglob("*.html")):
        hits = [m.group(0) for m in FETCHED_URL.finditer(page.read_text(errors="replace"))]
        if hits:
            offenders[str(page.relative_to(site_dir))] = hits[:3]
    assert not offenders, f"pages that would fetch from outside: {offenders}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders_offline(visit, docname):
    """Does the page load cleanly from 127.0.0.1 alone, with its maths typeset and its images drawn?"""
    v = visit(f"{docname}.html")
    math = v.page.evaluate(MATH_REPORT)
    images = v.page.evaluate(IMAGE_REPORT)
    v.page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '__')}.png"), full_page=True)

    assert not v.outside, f"{docname}: requests left 127.0.0.1 (the book must work offline): {v.outside}"
    assert not v.failed, f"{docname}: requests failed: {v.failed}"
    assert not v.errors, f"{docname}: the browser console reported errors: {v.errors}"
    assert not math["untypeset"], f"{docname}: MathJax left formulas untypeset: {math['untypeset']}"
    assert not math["errors"], f"{docname}: MathJax could not parse: {math['errors']}"
    assert not math["raw"], f"{docname}: raw TeX delimiters left in the text: {math['raw']}"
    if math["count"]:
        assert math["containers"] >= math["count"], f"{docname}: {math}"
    broken = [img["src"] for img in images if img["width"] == 0]
    assert not broken, f"{docname}: images that did not load: {broken}"
    figures = v.page.locator(".cell_output img").count()
    if _draws_figures(docname):
        assert figures, (f"{docname}: its code draws figures but no figure appears in the page "
                         "(does the kernel use a non-inline backend, e.g. MPLBACKEND=Agg?)")


def test_mathjax_is_served_locally(visit):
    """Is MathJax loaded from the book's own _static folder and actually running?"""
    v = visit(f"{PAGES[0]}.html")
    sources = v.page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    mathjax = [s for s in sources if "mathjax" in s.lower()]
    assert mathjax, "no MathJax <script> on the first page"
    assert all(urlsplit(s).hostname == "127.0.0.1" and "/_static/" in s for s in mathjax), mathjax
    assert v.page.evaluate("async () => { await MathJax.startup.promise; return typeof MathJax.typesetPromise; }") \
        == "function"


# The search is finished when its summary says how many pages it found, the LSTM chapter is listed,
# and the words searched for appear in the results (Sphinx fetches each result's snippet separately,
# after the list itself, so a summary alone does not mean the snippets are there).
SEARCH_DONE = """() => {
  const box = document.querySelector('#search-results');
  if (!box) return false;
  const summary = box.querySelector('.search-summary, p');
  const links = [...box.querySelectorAll('li a')].map(a => a.getAttribute('href') || '');
  return !!summary && /found/i.test(summary.textContent) && links.some(h => h.includes('02_lstm'))
      && box.innerText.toLowerCase().includes('forget gate');
}"""


def test_search_finds_forget_gate(visit):
    """Does the built-in search, run in the browser, find the pages about the forget gate?"""
    v = visit("search.html?q=forget+gate")
    try:   # wait for what is asserted below, however slowly a loaded machine runs the search
        v.page.wait_for_function(SEARCH_DONE, timeout=180_000)
    except Exception:   # report what the page shows rather than a bare timeout
        pass
    hrefs = v.page.eval_on_selector_all("#search-results li a", "els => els.map(e => e.getAttribute('href'))")
    text = v.page.inner_text("#search-results").lower()
    assert hrefs, f"searching 'forget gate' found nothing: {text[:300]}"
    assert any("02_lstm" in h for h in hrefs), f"the LSTM chapter is not among the results: {hrefs}"
    assert "forget gate" in text, f"no result shows the words 'forget gate': {text[:300]}"
    assert not v.errors and not v.failed and not v.outside, (v.errors, v.failed, v.outside)


# --------------------------------------------------------------------------------- accessibility
#: axe-core rule impacts that fail the test; "moderate" and "minor" findings are printed only.
BLOCKING_IMPACTS = {"serious", "critical"}


def _axe_violations(page) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe   # bundles axe.min.js: nothing is fetched

    page.evaluate(MATH_REPORT)                               # let MathJax finish rewriting the page
    results = Axe().run(page)
    return results.response["violations"]


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("docname", PAGES)
def test_page_has_no_serious_accessibility_violation(visit, docname, theme):
    """Does axe-core find no serious or critical accessibility problem on the page, in either theme?"""
    v = visit(f"{docname}.html")
    # The theme's colours change through CSS transitions: switched off first, so that axe reads the colours
    # the reader settles on, not a frame in between (which failed contrast checks now and then).
    v.page.add_style_tag(content="*, *::before, *::after { transition: none !important; "
                                 "animation: none !important; }")
    v.page.evaluate("theme => { document.documentElement.dataset.theme = theme;"
                    " document.documentElement.dataset.mode = theme; }", theme)
    v.page.wait_for_function("theme => document.documentElement.dataset.theme === theme"
                             " && getComputedStyle(document.body).color !== ''", arg=theme)
    v.page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    violations = _axe_violations(v.page)
    blocking = [(x["id"], x["impact"], x["help"], [n["target"] for n in x["nodes"][:3]])
                for x in violations if x["impact"] in BLOCKING_IMPACTS]
    others = [(x["id"], x["impact"]) for x in violations if x["impact"] not in BLOCKING_IMPACTS]
    if others:
        print(f"{docname} ({theme}): axe reports {others}")
    assert not blocking, f"{docname} ({theme} theme): axe-core found {blocking}"
    assert not v.outside, f"{docname}: axe made a request off 127.0.0.1: {v.outside}"


#: Pages whose code must fit the content column at the default width (the whole book but the claims
#: chapter, whose code is maintained separately).
NO_SCROLL_PAGES = [p for p in PAGES if p != "chapters/09_claims"]


@pytest.mark.parametrize("docname", NO_SCROLL_PAGES)
def test_code_needs_no_horizontal_scrolling(visit, docname):
    """At the default width (1280 px), does every code block fit its column without a sideways scroll?"""
    v = visit(f"{docname}.html")
    wide = v.page.evaluate("""() => [...document.querySelectorAll('main div.highlight pre')]
        .filter(pre => pre.offsetParent !== null && pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => [...pre.textContent.split('\\n')].sort((a, b) => b.length - a.length)[0].slice(0, 100))""")
    assert not wide, f"{docname}: code blocks scroll sideways; their longest lines: {wide}"


# For every cell diagram: its accessible name, its stroke/text colour, the colour actually behind it
# (the first ancestor with an opaque background) and the WCAG contrast ratio between the two.
DIAGRAM_REPORT = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const behind = el => { for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c; } return [255, 255, 255]; };
  return [...document.querySelectorAll('figure.course-diagram svg')].map(svg => {
    const fg = rgb(getComputedStyle(svg).color), bg = behind(svg.parentElement);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    return {label: svg.getAttribute('aria-label') || '', color: fg.join(','), background: bg.join(','),
            contrast: (hi + 0.05) / (lo + 0.05)};
  });
}"""


def test_diagrams_have_alt_text_and_follow_the_theme(visit):
    """Is every cell diagram an inline SVG with an accessible name, drawn in a colour that stands out
    from what is actually behind it, in the light and in the dark theme?"""
    for docname in ("chapters/01_why_rnns_forget", "chapters/02_lstm", "chapters/03_gru",
                    "chapters/08_transformers"):
        v = visit(f"{docname}.html")
        v.page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
        colors = {}
        for theme in ("light", "dark"):
            v.page.evaluate("theme => { document.documentElement.dataset.theme = theme; }", theme)
            v.page.wait_for_function("theme => document.documentElement.dataset.theme === theme", arg=theme)
            found = v.page.evaluate(DIAGRAM_REPORT)
            assert found, f"{docname}: no diagram"
            for d in found:
                assert len(d["label"].split()) >= 20, f"{docname}: a diagram without a real alt text: {d}"
                # WCAG 1.4.11 asks 3:1 for graphics; the labels are text, so 4.5:1.
                assert d["contrast"] >= 4.5, f"{docname} ({theme} theme): a diagram hard to see: {d}"
            colors[theme] = {d["color"] for d in found}
        assert colors["light"].isdisjoint(colors["dark"]), (
            f"{docname}: the diagrams do not follow the dark theme: {colors}")
