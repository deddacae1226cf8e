"""The prebuilt labextension in bpfnb/labextension/ highlights %%bpf cells as C, %%bpftrace cells as bpftrace, in a real JupyterLab.

JupyterLab finds the extension through ``JUPYTER_PATH`` pointing at a temporary
data directory that links to it, so the shared venv is left as it is. The
browser and server set-up is test_browser.py's.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from tests.privileged.test_browser import CHROMIUM, CHROMIUM_FLAGS, REPO, TOKEN, jupyterlab, playwright_api

EXTENSION = REPO / "bpfnb" / "labextension"


def wait_for_languages(page, expected: list[str]) -> None:
    """Wait until the cells' editors have exactly these languages (each loads asynchronously)."""
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('.jp-Notebook .jp-Cell .cm-content')]"
        ".map(e => e.dataset.language ?? null)) === JSON.stringify(expected)",
        arg=expected,
        timeout=30_000,
    )


def test_bpf_cells_are_highlighted_as_c_and_bpftrace_cells_as_bpftrace(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data" / "labextensions"
    data.mkdir(parents=True)
    (data / "bpfnb-highlight").symlink_to(EXTENSION)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    cells = [
        nbformat.v4.new_code_cell("%%bpf hello --no-attach\nstruct data_t { u32 pid; };\nint f(void *ctx) { return 0; }"),
        nbformat.v4.new_code_cell("import os\nprint(os.getpid())"),
        nbformat.v4.new_code_cell("%%bpftrace t\ntracepoint:sched:sched_switch { @[comm] = count(); }"),
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel}), tmp_path / "t.ipynb")
    with jupyterlab(tmp_path) as base, playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{base}/lab/tree/t.ipynb?token={TOKEN}")
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=90_000)
            # CodeMirror names the language of each editor; C mime types load the "cpp" language,
            # and the extension registers one for bpftrace.
            wait_for_languages(page, ["cpp", "python", "bpftrace"])

            # A new cell becomes C when its first line becomes %%bpf, and Python again when it stops being it.
            page.locator(".jp-Cell").nth(1).click()
            page.keyboard.press("Escape")
            page.keyboard.press("b")
            page.keyboard.press("Enter")
            page.keyboard.type("%%bpf x\nstruct s { int a; };")
            wait_for_languages(page, ["cpp", "python", "cpp", "bpftrace"])
            page.keyboard.press("Control+Home")
            page.keyboard.press("Delete")
            wait_for_languages(page, ["cpp", "python", "python", "bpftrace"])
            # And a cell that comes to start with %%bpftrace becomes bpftrace.
            page.keyboard.type("%%bpftrace y\n")
            wait_for_languages(page, ["cpp", "python", "bpftrace", "bpftrace"])
        finally:
            browser.close()
