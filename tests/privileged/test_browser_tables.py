"""bpfnb's displays as a person sees them: JupyterLab in headless Chromium (issue 14).

One notebook runs once for the module: two programs, a stream and a live
plot, then ``%bpf ls``, ``%bpf doctor``, ``%bpf probes sched:*`` and
``%bpf helpers``. The tests read the rendered page: tables with their rows,
problems first, prose left-aligned, nothing wider than the output area, no
literal backticks, no stderr block; and Tab after ``prog["`` offers the
program's maps, in the page and through the kernel's ``complete_request``.
Screenshots go to ``tests/artifacts/issue14/after-*.png``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import start_new_kernel

from bpfnb.tools.kernelspec import KERNEL_NAME

from .test_browser import ARTIFACTS, notebook_page, playwright_api, run_cells

SHOTS = ARTIFACTS / "issue14"

SYSCALLS = """%%bpf syscalls
BPF_HASH(counts, u32, u64);
BPF_HISTOGRAM(latency);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}"""

EXECS = """%%bpf execs
struct event { u32 pid; u64 ts; char comm[16]; };
BPF_RINGBUF_OUTPUT(events, 64);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.ts = bpf_ktime_get_ns();
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}"""

RUNNING = """import subprocess, time
workload = subprocess.Popen(["bash", "-c", "for i in $(seq 200); do /bin/true; sleep 0.05; done"])
s = execs.stream("events", time_field="ts")
bars = syscalls["counts"].live(kind="bar", top=5)
deadline = time.monotonic() + 30
while not (bars.frames >= 2 and s.received) and time.monotonic() < deadline:
    time.sleep(0.2)
bars"""

#: Cell name -> source, in the notebook's order.
CELLS = {
    "first": SYSCALLS,
    "execs": EXECS,
    "running": RUNNING,
    "ls": "%bpf ls",
    "doctor": "%bpf doctor",
    "probes": "%bpf probes sched:*",
    "helpers": "%bpf helpers",
    "complete": "",  # Tab is pressed here
    "end": "bars.stop(); s.stop(); workload.terminate(); workload.wait()\n%bpf detach --all",
}
FINISHED = re.compile(r"\[\d+\]")

# Whether an element's content is wider than the element (something overflows or is cut).
OVERFLOWS = """el => {
    const box = el.getBoundingClientRect();
    const wider = [...el.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > box.right + 1);
    return {scroll: el.scrollWidth - el.clientWidth, wider: wider.map(e => e.tagName + ':' + e.textContent.slice(0, 40))};
}"""


def kernel_and_first_cells() -> tuple[str, list[str]]:
    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return "python3", ["%load_ext bpfnb"]
    return KERNEL_NAME, []


def quiet_lab_settings(root: Path) -> None:
    """No toast about Jupyter news over the outputs."""
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "doNotDisturbMode": True}))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The notebook, every cell run, in Chromium; yields the page and each named cell's locator."""
    root = tmp_path_factory.mktemp("lab")
    quiet_lab_settings(root)
    kernel, prelude = kernel_and_first_cells()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in [*prelude, *CELLS.values()]]
    nbformat.write(nb, root / "displays.ipynb")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with notebook_page(root, "displays.ipynb") as tab:
        try:
            all_cells = tab.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            cells = {name: all_cells.nth(len(prelude) + i) for i, name in enumerate(CELLS)}
            for index in range(len(prelude) + len(CELLS) - 2):  # the last two: Tab, then the clean-up
                run_cells(tab, all_cells, index, 1)
                prompt = all_cells.nth(index).locator(".jp-InputPrompt")
                playwright_api.expect(prompt).to_have_text(FINISHED, timeout=180_000)
            yield tab, cells
            run_cells(tab, all_cells, len(prelude) + len(CELLS) - 1, 1)
            playwright_api.expect(cells["end"].locator(".jp-InputPrompt")).to_have_text(FINISHED, timeout=60_000)
        finally:
            texts = tab.locator(".jp-NotebookPanel .jp-Cell").all_inner_texts()
            (SHOTS / "after-cells.txt").write_text("\n\n".join(f"--- cell {i}\n{t}" for i, t in enumerate(texts)))


def output_of(cell: Any) -> Any:
    output = cell.locator(".jp-OutputArea-output").last
    output.scroll_into_view_if_needed()
    return output


def assert_fits(output: Any, cell: Any, shot: str) -> None:
    """Nothing in ``output`` reaches past its right edge; the cell is kept as ``after-<shot>.png``."""
    cell.screenshot(path=str(SHOTS / f"after-{shot}.png"))
    found = output.evaluate(OVERFLOWS)
    assert found["scroll"] <= 1 and not found["wider"], found


def rows_of(table: Any) -> list[list[str]]:
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody > tr").all()]


def test_no_cell_shows_stderr_or_literal_backticks(page):
    tab, cells = page
    for name, cell in cells.items():
        cell.scroll_into_view_if_needed()  # JupyterLab may leave cells out of view unrendered
        assert cell.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0, name
    for name in ("first", "ls", "doctor", "probes"):
        assert "`" not in output_of(cells[name]).inner_text(), name


def test_first_program_card_shows_the_stats_hint_once_with_a_link(page):
    tab, cells = page
    card = output_of(cells["first"])
    hint = card.locator(".bpfnb-note")
    assert hint.inner_text().startswith("Run counts and run times are off: %bpf stats on turns them on")
    assert hint.locator("a").get_attribute("href").startswith("https://")
    assert rows_of(card.locator("table").nth(1))[0][0] == "counts"
    assert cells["execs"].locator(".bpfnb-note").count() == 0  # the second card keeps quiet
    assert_fits(card, cells["first"], "first")


def test_ls_is_a_table_with_a_row_per_program_stream_and_plot(page):
    tab, cells = page
    output = output_of(cells["ls"])
    table = output.locator("table.bpfnb-t")
    assert table.locator("thead th").all_inner_texts() == ["name", "kind", "state", "rows", "rate", "lost", "cost", "details"]
    rows = rows_of(table)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("syscalls", "program (bcc)", "attached"),
        ('syscalls["counts"]', "live bar", "running"),
        ("execs", "program (bcc)", "attached"),
        ('execs["events"]', "stream (ring buffer)", "running"),
    ]
    assert int(rows[1][3].replace(",", "")) >= 1 and "of a core" in rows[1][6]
    assert rows[3][4].endswith("/s") and rows[3][5] == "0"
    assert "<bpfnb." not in output.inner_text()
    name_cell = table.locator("tbody td").first
    assert name_cell.evaluate("el => getComputedStyle(el).textAlign") == "left"
    assert_fits(output, cells["ls"], "ls")


def test_doctor_shows_problems_first_left_aligned_then_groups(page):
    tab, cells = page
    output = output_of(cells["doctor"])
    first = output.locator("table.bpfnb-t").first
    states = [row[1] for row in rows_of(first)]
    title = output.locator(".bpfnb-card > b").first.inner_text()
    if " warn" in title or " fail" in title:
        assert output.locator(".bpfnb-h").first.inner_text().startswith("Needs attention")
        assert set(states) <= {"fail", "warn"} and states == sorted(states, key=("fail", "warn").index)
    detail = first.locator("tbody td").nth(2)
    assert detail.evaluate("el => getComputedStyle(el).textAlign") == "left"
    groups = output.locator("details")
    assert groups.locator("summary").all_inner_texts()[0].startswith("Set-up:")
    assert_fits(output, cells["doctor"], "doctor")
    for summary in groups.locator("summary").all():
        summary.click()
    assert groups.locator("table.bpfnb-t").first.is_visible()
    assert_fits(output, cells["doctor"], "doctor-open")


def test_probes_wrap_inside_the_output(page):
    tab, cells = page
    output = output_of(cells["probes"])
    (row,) = rows_of(output.locator("table.bpfnb-t"))
    assert row[0] == "sched"
    names = output.locator(".bpfnb-list code")
    assert "sched_switch" in names.all_inner_texts()
    # Every name is whole and inside the output; they wrap onto several lines.
    tops = {round(box["y"]) for box in (names.nth(i).bounding_box() for i in range(names.count()))}
    assert len(tops) > 1
    assert_fits(output, cells["probes"], "probes")


def test_helper_browser_reflows_documentation_and_cuts_no_label(page):
    tab, cells = page
    output = output_of(cells["helpers"])
    labels = output.locator(".widget-label")
    labels.first.wait_for()
    for label in labels.all():
        assert label.evaluate("el => el.scrollWidth <= el.clientWidth"), label.inner_text()
    assert "program type" in labels.all_inner_texts()
    doc = output.locator(".widget-html .bpfnb-card")
    returns = doc.locator("p").all_inner_texts()
    assert "Map value associated to key, or NULL if no entry was found." in returns
    listing, docs = output.locator(".widget-select"), output.locator(".widget-html").last
    assert abs(listing.bounding_box()["height"] - docs.bounding_box()["height"]) <= 2
    assert_fits(output, cells["helpers"], "helpers")


def test_tab_after_prog_bracket_offers_map_names_in_the_page(page):
    tab, cells = page
    editor = cells["complete"].locator(".cm-content")
    editor.click()
    tab.keyboard.type('syscalls["')
    tab.keyboard.press("Tab")
    items = tab.locator(".jp-Completer-item .jp-Completer-match")
    items.first.wait_for(timeout=30_000)
    assert sorted(items.all_inner_texts()) == ["counts", "latency"]
    tab.screenshot(path=str(SHOTS / "after-complete.png"))  # the completer floats outside the cell
    tab.keyboard.press("Escape")


def test_complete_request_after_prog_bracket_returns_map_names():
    kernel, prelude = kernel_and_first_cells()
    manager, client = start_new_kernel(kernel_name=kernel)
    try:
        for source in [*prelude, SYSCALLS]:
            reply = client.execute_interactive(source, timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
        for code, expected in (('syscalls["', ["counts", "latency"]), ('syscalls["l', ["latency"])):
            reply = client.complete(code, reply=True, timeout=30)["content"]
            assert reply["status"] == "ok" and reply["matches"] == expected, reply
            assert code[reply["cursor_start"] : reply["cursor_end"]] == code.partition('["')[2]
        reply = client.execute_interactive('syscalls["cnts"]', timeout=30)["content"]
        assert reply["ename"] == "NoSuchMapError" and "did you mean 'counts'?" in reply["evalue"]
    finally:
        client.execute_interactive("%bpf detach --all", timeout=30)
        client.stop_channels()
        manager.shutdown_kernel(now=False)
