"""A live plot in a real browser: JupyterLab on 127.0.0.1 driven by headless Chromium.

The test copies ``notebooks/04-live-plots.ipynb`` into a temporary root, starts
JupyterLab on a free loopback port with a fixed token, opens the notebook in
Debian's ``chromium`` through Playwright (no browser download), runs the cells
up to the live bar plot while the notebook's workload runs, and checks that
the widget rendered and that its image changed between two moments. The
screenshot is kept in ``tests/artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from bpfnb.tools.kernelspec import KERNEL_NAME

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "04-live-plots.ipynb"
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOKEN = "bpfnb-browser-test"

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_notebook(root: Path) -> tuple[str, int, int]:
    """Copy the notebook for the kernel there is; return its name, the live cell's and the last code cell's index."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells.insert(0, nbformat.v4.new_code_cell("%load_ext bpfnb"))
    (index,) = [i for i, c in enumerate(nb.cells) if "live-bar" in c.metadata.get("tags", [])]
    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nbformat.write(nb, root / NOTEBOOK.name)
    return NOTEBOOK.name, index, last


@contextlib.contextmanager
def jupyterlab(root: Path) -> Iterator[str]:
    """JupyterLab serving ``root`` on a free loopback port; yields its base URL."""
    port = free_port()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(root / ".runtime"), JUPYTER_CONFIG_DIR=str(root / ".config"))
    log = open(root / "jupyterlab.log", "wb")  # noqa: SIM115 - closed with the server below
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={root / '.workspaces'}", f"--LabApp.user_settings_dir={root / '.settings'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, (root / "jupyterlab.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "JupyterLab did not start within 60 s"
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()  # the server shuts its kernels down, which detach their programs
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextlib.contextmanager
def notebook_page(root: Path, name: str) -> Iterator:
    """The notebook ``root/name`` open in headless Chromium with its kernel idle; yields the page."""
    with jupyterlab(root) as base, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        try:
            page.goto(f"{base}/lab/tree/{name}?token={TOKEN}")
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=90_000)
            yield page
        finally:
            browser.close()


STARTED = re.compile(r"\[(\*|\d+)\]")


def run_cells(page, cells, first: int, count: int) -> None:
    """Run ``count`` cells from ``first`` with Shift+Enter, each one seen to start.

    JupyterLab can show the kernel idle a moment before a keystroke reaches
    it; a code cell whose prompt does not change is selected and run again.
    """
    for index in range(first, first + count):
        cell = cells.nth(index)
        for attempt in range(3):
            cell.locator(".jp-InputPrompt").click()
            page.keyboard.press("Escape")
            page.keyboard.press("Shift+Enter")
            if "jp-CodeCell" not in (cell.get_attribute("class") or ""):
                break
            try:
                playwright_api.expect(cell.locator(".jp-InputPrompt")).to_have_text(STARTED, timeout=10_000)
                break
            except AssertionError:
                if attempt == 2:
                    raise


def test_live_plot_renders_and_updates_in_chromium(tmp_path):
    name, live_cell, last_cell = prepare_notebook(tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    with notebook_page(tmp_path, name) as page:
        try:
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            run_cells(page, cells, 0, live_cell + 1)

            output = cells.nth(live_cell).locator(".jp-OutputArea-output")
            image = output.locator("img.widget-image")
            stderr = page.locator('.jp-Cell [data-mime-type="application/vnd.jupyter.stderr"]')
            errors = stderr.filter(has_text=re.compile(r"\w+Error\b|Traceback"))
            image.or_(errors).first.wait_for(state="visible", timeout=90_000)
            if not image.count():
                pytest.fail("a cell failed before the live plot showed:\n" + "\n".join(errors.all_text_contents()))
            image.scroll_into_view_if_needed()
            status = output.locator(".widget-html-content").last
            page.wait_for_function(
                "el => /frame [2-9]|frame [1-9][0-9]/.test(el.textContent)", arg=status.element_handle(),
                timeout=30_000,
            )
            # Pixels first: if a frame lands in between, the new src is the one to wait past.
            before_pixels = image.screenshot()
            before_src = image.get_attribute("src")
            page.wait_for_function(
                "([el, src]) => el.getAttribute('src') !== src", arg=[image.element_handle(), before_src],
                timeout=30_000,
            )
            time.sleep(0.5)  # let the browser paint the new frame
            after_pixels = image.screenshot()
            page.screenshot(path=str(ARTIFACTS / "live-plot.png"), full_page=False)
            assert after_pixels != before_pixels, "the live plot's image did not change on screen"
            assert "live, every 1 s" in status.text_content()

            # Running another code cell refreshes the saved PNG of the bar plot's
            # display; the page must still show exactly one view of the widget.
            run_cells(page, cells, live_cell + 1, 2)
            cells.nth(live_cell + 2).locator("img.widget-image").wait_for(state="visible", timeout=60_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
            assert cells.nth(live_cell).locator("img.widget-image").count() == 1
            assert cells.nth(live_cell).locator(".jp-OutputArea-output").count() == 1

            # Run the rest: it stops the workload and detaches the programs.
            run_cells(page, cells, live_cell + 3, last_cell - live_cell - 2)
            last = cells.nth(last_cell).locator(".jp-OutputArea-output")
            last.first.wait_for(timeout=60_000)
            printed = last.text_content()
            assert printed.count("<bpfnb.Live") == 4 and "running" not in printed, printed
        finally:
            page.screenshot(path=str(ARTIFACTS / "live-plot-end.png"))
            # What each cell showed, for reading a failure without the page.
            texts = page.locator(".jp-NotebookPanel .jp-Cell").all_inner_texts()
            (ARTIFACTS / "live-plot-cells.txt").write_text("\n\n".join(f"--- cell {i}\n{t}" for i, t in enumerate(texts)))
