"""Shared test set-up: one thread per process, Keras on PyTorch, deterministic hypothesis."""
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

torch.set_num_threads(1)
settings.register_profile("course", derandomize=True, deadline=None, max_examples=40)
settings.load_profile("course")

#: The browser tests' Chromium: Debian's package, driven by Playwright (tests/test_book_site.py,
#: tests/test_grading_inert_e2e.py).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium (never a downloaded one), one for the whole run: Playwright's sync API
    cannot start a second instance while one is open in the same thread."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (as root) to install it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
