"""End to end, in a browser: opening a hand-graded answer in Formgrader: can the student's HTML act in the
instructor's browser?

A temporary copy of the course goes through ``nbgrader generate_assignment`` and ``autograde`` for
``05_attention``, whose essay cell is graded by hand, with one submission whose essay (and an extra
raw cell) carries active HTML: an ``<img onerror>`` that sets every manual score of the submission to
its maximum through Formgrader's own API (what a student did in issue 15), a ``<script>``, an
``<svg onload>``, a ``javascript:`` link, a remote image and a CSS background that would call home.
Then the real Formgrader (``jupyter server`` with nbgrader's extension, started from the course
directory, as the README says) serves the hand-grading page to Debian's Chromium.

Does nothing of it run: no grade changes, no request leaves the page (nothing but GETs to the
server, nothing to the listening "attacker" port), and does the instructor still see what was written?
And does the feedback HTML carry none of it?
"""
from __future__ import annotations

import http.server
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COURSE_ID = "rnn-to-lstm"
ASSIGNMENT, NOTEBOOK, ESSAY = "05_attention", "attention", "lstm_or_attention"

# Formgrader's page loads MathJax from a CDN (its own template, not the student's content); offline, a
# stand-in answers for it, so that the page's own script starts as it would on a connected machine.
MATHJAX_CDN = re.compile(r"^https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/")
MATHJAX_STUB = "window.MathJax = {Hub: {Startup: {signal: {Interest: function () {}}}, Config: function () {}, " \
               "Queue: function () {}, Typeset: function () {}}};"

# Runs as soon as the grades are loaded: every grade of the page to its maximum, through Formgrader's models.
STEAL = ("var t=setInterval(function(){if(window.formgrader&&formgrader.grades&&formgrader.grades.length){"
         "clearInterval(t);formgrader.grades.each(function(g){g.save({manual_score:g.get('max_score')})});"
         "window.__pwned=true;document.title='PWNED'}},20)")


def essay(port: int) -> str:
    home = f"http://127.0.0.1:{port}"
    return "\n\n".join([
        "Attention reads every position at once, so nothing has to survive a long chain of gates.",
        f'<img src="x" onerror="{STEAL}">',
        "<script>window.__pwned=true;document.title='PWNED'</script>",
        '<svg onload="window.__pwned=true"><circle r="4"/></svg>',
        "[read more](javascript:window.__pwned=true)",
        f"![chart]({home}/image.png)",
        f"<div style=\"background:url('{home}/css.png')\">styled</div>",
        f'<iframe src="{home}/frame"></iframe>',
        f'<meta http-equiv="refresh" content="60;url={home}/refresh">',
    ])


def nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
               MPLBACKEND="Agg")
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stderr[-6000:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def attacker():
    """A server on 127.0.0.1 that records every request the student's HTML manages to make."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def course(tmp_path_factory, attacker) -> Path:
    course = tmp_path_factory.mktemp("formgrader_course")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nb = nbformat.read(course / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == ESSAY:
            cell.source = essay(attacker.server_address[1])
    raw = nbformat.v4.new_raw_cell("<script>window.__pwned=true</script><b>raw</b>")
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.append(raw)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}
    out = course / "submitted" / "mallory" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    out.parent.mkdir(parents=True)
    nbformat.write(nb, out)
    nbgrader(course, "autograde", ASSIGNMENT)
    return course


def grades(course: Path) -> dict[str, tuple]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        nb = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "mallory")
        return {g.name: (g.auto_score, g.manual_score) for g in nb.grades}


def submission_id(course: Path) -> str:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        return gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, "mallory").id


@pytest.fixture(scope="module")
def formgrader(course: Path):
    """The real Formgrader (jupyter server + nbgrader's extension), started from the course directory."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", KERAS_BACKEND="torch",
               JUPYTER_CONFIG_DIR=str(course / ".jupyter"), JUPYTER_RUNTIME_DIR=str(course / ".runtime"))
    log = open(course / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "jupyter"), "server", "--no-browser", "--allow-root", f"--port={port}",
                             "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={course}"],
                            cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"jupyter server did not start:\n{(course / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()



def test_opening_a_script_carrying_answer_changes_no_grade_and_sends_nothing(course, formgrader, browser, attacker):
    base, token = formgrader
    before = grades(course)
    assert before[ESSAY] == (None, None), "the essay waits for a hand grade"
    page = browser.new_page(extra_http_headers={"Authorization": f"token {token}"})
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.route(MATHJAX_CDN, lambda route: route.fulfill(status=200, content_type="application/javascript",
                                                        body=MATHJAX_STUB))
    page.goto(f"{base}/formgrader/submissions/{submission_id(course)}/")
    # Formgrader's own script has loaded the grades: a payload waiting for them would run now.
    page.wait_for_function("window.formgrader && formgrader.loaded && formgrader.grades "
                           "&& formgrader.grades.length > 0")
    page.wait_for_load_state("networkidle")
    page.get_by_text("onerror=", exact=False).first.wait_for()       # the instructor sees what was written

    assert page.evaluate("window.__pwned") is None
    assert page.title() != "PWNED"
    assert grades(course) == before
    server = re.compile(rf"^{re.escape(base)}/")
    assert [(m, u) for m, u in requests if m != "GET" or not (server.match(u) or MATHJAX_CDN.match(u))] == []
    assert attacker.RequestHandlerClass.hits == []
    assert page.locator("#notebook a[href^='javascript:']").count() == 0
    assert page.locator("#notebook iframe, #notebook svg, #notebook meta[http-equiv]").count() == 0
    page.close()


def test_the_feedback_html_carries_no_active_content(course, attacker):
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    (html_file,) = (course / "feedback" / "mallory" / ASSIGNMENT).glob("*.html")
    text = html_file.read_text()
    body = text[text.index("<body"):]
    assert "onerror=" in body and "&lt;img" in body                   # shown, as text
    for active in ("<img src=\"x\"", "<script>window.__pwned", "<svg onload", "javascript:window", "<iframe",
                   "<meta http-equiv", f"127.0.0.1:{attacker.server_address[1]}/image.png\""):
        assert active not in body, active
