"""What a person sees of bpfnb's plots in JupyterLab: units, time axes, the flame graph, live plots.

One JupyterLab (test_browser.py's set-up) and one headless Chromium serve the
whole module. Each test opens a notebook, runs it with Run > Run All Cells as
a person would, and reads the page: the texts of the figures (they show as
SVG with real ``<text>``), the widgets' DOM, and the kernel's CPU time from
``/proc``. Screenshots go to ``tests/artifacts/issue14/after-*.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.privileged.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, REPO, TOKEN, jupyterlab, playwright_api

SHOTS = ARTIFACTS / "issue14"
NOTEBOOKS = ("04-live-plots.ipynb", "05-latency-histograms-and-heatmaps.ipynb", "08-cpu-profiling-flame-graph.ipynb")
expect = playwright_api.expect

# The texts of the SVG in an <img> (a figure's display, or a heatmap widget's picture), by part:
# x and y ticks of the main axes, the colour bar's label, the legend, every text.
SVG_TEXTS = """img => {
  const src = img.getAttribute('src');
  const comma = src.indexOf(',');
  const head = src.slice(0, comma), body = src.slice(comma + 1);
  const svg = head.endsWith(';base64') ? atob(body) : decodeURIComponent(body);
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  const texts = sel => [...doc.querySelectorAll(sel)].map(t => t.textContent);
  return {
    x: texts('#axes_1 g[id^=xtick] text'),
    y: texts('#axes_1 g[id^=ytick] text'),
    legend: texts('#axes_1 g[id^=legend] text'),
    colour: texts('#axes_2 text'),
    all: texts('text'),
  };
}"""
# A number in a unit of time, as bpfnb writes it: 1 ms, 24.2 µs, 0.5 s.
DURATION = re.compile(r"^\d+(\.\d+)? (ns|µs|ms|s)$")
# What the old labels looked like: 1.05M, 24.2K, 8.59G.
SI_SUFFIX = re.compile(r"\d[KMG]\b")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, kernel_name: str) -> Iterator[tuple[str, Path]]:
    """JupyterLab on a root holding the notebooks under test; yields its URL and root."""
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / name, root / name)
    # No pop-up asking about news over the bottom of the page.
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    SHOTS.mkdir(parents=True, exist_ok=True)
    with jupyterlab(root) as base:
        yield base, root


@pytest.fixture(scope="module")
def browser(lab: tuple[str, Path]) -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab, request):
    """A page of its own; the notebook kernels it started are shut down after the test.

    What the page showed at the end is kept (``end-<test>.png`` and the cells' texts), for reading a failure.
    """
    opened = browser.new_page(viewport={"width": 1280, "height": 1000})
    yield opened
    if not opened.is_closed():
        opened.screenshot(path=str(SHOTS / f"end-{request.node.name}.png"))
        texts = opened.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").all_text_contents()
        (SHOTS / f"end-{request.node.name}.txt").write_text("\n\n".join(f"--- cell {i}\n{t}" for i, t in enumerate(texts)))
        opened.close()
    base, _ = lab
    for session in api(base, "sessions"):
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def api(base: str, path: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/{path}?token={TOKEN}", timeout=30) as response:
        return json.load(response)


STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .some(prompt => /\\[(\\*|\\d+)\\]/.test(prompt.textContent))"""


def run_all(page, base: str, name: str):
    """Open ``name`` and run it with Run > Run All Cells; return the cells' locator.

    JupyterLab shows a kernel idle while it still connects, and a Run All
    then runs nothing: when no cell has started after a while, it is asked again.
    """
    # ?reset: a fresh workspace, not the notebooks the last test left open (each with a kernel).
    page.goto(f"{base}/lab/tree/{name}?reset&token={TOKEN}")
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=90_000)
    for attempt in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(STARTED, timeout=20_000)
            break
        except playwright_api.TimeoutError:
            if attempt == 2:
                raise
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


ALL_RAN = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .every(prompt => /\\[\\d+\\]/.test(prompt.textContent))"""


def wait_until_run(page, *, timeout: float = 180) -> None:
    """Wait until every code cell ran (its prompt shows a number); fail at once on an error shown."""
    deadline = time.monotonic() + timeout
    errors = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) [data-mime-type="application/vnd.jupyter.error"]')
    while not page.evaluate(ALL_RAN):
        if errors.count():
            pytest.fail("a cell failed:\n" + "\n".join(errors.all_inner_texts()))
        if time.monotonic() > deadline:
            prompts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt").all_text_contents()
            pytest.fail(f"the notebook did not finish running; prompts: {prompts}")
        time.sleep(0.5)
    if errors.count():
        pytest.fail("a cell failed:\n" + "\n".join(errors.all_inner_texts()))


def svg_texts(image) -> dict[str, list[str]]:
    image.scroll_into_view_if_needed()
    return image.evaluate(SVG_TEXTS)


def figure_of(cells, index: int):
    """The <img> of the figure a cell shows (SVG)."""
    image = cells.nth(index).locator('.jp-OutputArea-output[data-mime-type="image/svg+xml"] img')
    image.wait_for(timeout=60_000)
    return image


def cell(name: str, code: str) -> int:
    """The index of the first cell of notebook ``name`` whose code starts with ``code``: cells move as notebooks change."""
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    return next(i for i, c in enumerate(nb.cells) if c.source.startswith(code))


def frame_number(status) -> int:
    found = re.search(r"frame (\d+)", status.text_content())
    return int(found.group(1)) if found else 0


def test_a_nanosecond_histogram_and_its_heatmap_read_in_units(page, lab):
    base, _ = lab
    name = "05-latency-histograms-and-heatmaps.ipynb"
    cells = run_all(page, base, name)
    wait_until_run(page)
    mine, lin, heatmap = (cell(name, code) for code in ("bpfnb.plot.hist(mine", 'bpfnb.plot.hist(lat["lin"]', "bpfnb.plot.heatmap("))

    log2 = svg_texts(figure_of(cells, mine))
    assert log2["x"] and all(DURATION.match(t) for t in log2["x"]), log2["x"]
    assert {"1 ms", "10 ms"} <= set(log2["x"]), log2["x"]
    assert [t.split(" ≈ ")[0] for t in log2["legend"]] == ["p50", "p90", "p99"], log2["legend"]
    assert all(re.fullmatch(r"p\d+ ≈ [\d.]+ ms", t) for t in log2["legend"]), log2["legend"]
    assert not [t for t in log2["all"] if SI_SUFFIX.search(t)], log2["all"]
    cells.nth(mine).screenshot(path=str(SHOTS / "after-05-hist-log2.png"))

    linear = svg_texts(figure_of(cells, lin))
    assert all(t == "0" or t.endswith(" ms") for t in linear["x"]), linear["x"]

    heat = cells.nth(heatmap).locator(".bpfnb-heatmap img")
    heat.wait_for(timeout=60_000)
    texts = svg_texts(heat)
    assert texts["y"] and all(DURATION.match(t) for t in texts["y"]), texts["y"]
    assert len(set(texts["x"])) == len(texts["x"]) >= 2, texts["x"]
    assert len({len(t) for t in texts["x"]}) == 1, texts["x"]
    assert texts["colour"][-1] == "events per 250 ms", texts["colour"]

    # Click across the picture until a cell with calls in it is hit: its rows show under it.
    rows = cells.nth(heatmap).locator(".bpfnb-heatmap-rows")
    box = heat.bounding_box()
    for fx in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        for fy in (0.85, 0.75, 0.65, 0.55, 0.45):
            heat.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
            page.wait_for_timeout(150)
            if re.search(r"delta [1-9]", rows.inner_text()):
                break
        else:
            continue
        break
    caption = rows.locator("b").inner_text()
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}, [\d.]+ ms to [\d.]+ ms: delta [\d,]+ in \d+ rows", caption), caption
    assert rows.locator("tbody tr").count() >= 1
    expect(cells.nth(heatmap).locator(".bpfnb-heatmap-outline")).to_be_visible()
    cells.nth(heatmap).screenshot(path=str(SHOTS / "after-05-heatmap-clicked.png"))


def widest(graph, name: str):
    """The widest frame of function ``name`` (a function may sit in several stacks)."""
    frames = graph.locator(f'.bpfnb-frame[data-name="{name}"]')
    widths = frames.evaluate_all("all => all.map(e => e.getBoundingClientRect().width)")
    assert widths, f"no frame of {name}"
    return frames.nth(widths.index(max(widths)))


def test_the_flame_graph_hovers_zooms_searches_and_exports(page, lab, tmp_path):
    base, _ = lab
    cells = run_all(page, base, "08-cpu-profiling-flame-graph.ipynb")
    wait_until_run(page)
    flame = cells.nth(22).locator(".bpfnb-flame")
    flame.wait_for(timeout=60_000)
    flame.scroll_into_view_if_needed()
    graph = flame.locator(".bpfnb-flame-graph")
    status = flame.locator(".bpfnb-flame-status")
    hot = widest(graph, "hot")
    width = graph.bounding_box()["width"]
    assert hot.bounding_box()["width"] < width * 0.95

    hot.hover()
    expect(status).to_have_text(re.compile(r"^hot: [\d,]+ samples \(\d+\.\d%\)$"))

    hot.click()  # zoom: hot fills the width, what called it stays below, dimmed
    page.mouse.move(0, 0)
    expect(flame.locator(".bpfnb-flame-reset")).to_be_enabled()
    hot = widest(graph, "hot")
    assert hot.bounding_box()["width"] == pytest.approx(width, abs=2)
    work = widest(graph, "work")
    assert work.bounding_box()["width"] == pytest.approx(width, abs=2)
    assert work.evaluate("e => getComputedStyle(e).opacity") == "0.55"
    expect(status).to_have_text(re.compile(r"^zoomed to hot: "))
    flame.screenshot(path=str(SHOTS / "after-08-flame-zoomed.png"))
    flame.locator(".bpfnb-flame-reset").click()
    assert widest(graph, "hot").bounding_box()["width"] < width * 0.95

    flame.locator(".bpfnb-flame-search").fill("^warm$")
    expect(status).to_have_text(re.compile(r"^matched: [\d,]+ samples \(\d+\.\d%\)$"))
    assert widest(graph, "warm").evaluate("e => e.style.background") == "rgb(224, 64, 251)"
    flame.screenshot(path=str(SHOTS / "after-08-flame-search.png"))

    with page.expect_download() as download:
        flame.locator(".bpfnb-flame-export").click()
    saved = tmp_path / "profile.json"
    download.value.save_as(saved)
    content = json.loads(saved.read_text())
    assert content["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    names = [frame["name"] for frame in content["shared"]["frames"]]
    assert {"main", "work", "hot", "warm"} <= set(names)


def test_notebook_04_keeps_its_plots_moving_under_run_all(page, lab):
    base, _ = lab
    name = "04-live-plots.ipynb"
    cells = run_all(page, base, name)
    bar, hist, line, static_hist, static_line, printed_at = (
        cell(name, code)
        for code in ("bars = ", "latency = ", "s = execs.stream", "import time", "bpfnb.plot.line(s.df()", "print(bars")
    )
    bars = cells.nth(bar)
    status = bars.locator(".widget-html-content").last
    image = bars.locator("img.widget-image")
    image.wait_for(timeout=90_000)
    bars.scroll_into_view_if_needed()
    page.wait_for_function("el => /frame ([3-9]|\\d\\d)/.test(el.textContent)", arg=status.element_handle(),
                           timeout=60_000)
    page.screenshot(path=str(SHOTS / "after-04-run-all.png"))
    # The notebook is still running (its last cell waits for the workload): the plots keep moving.
    for plot in (bar, line):
        cells.nth(plot).scroll_into_view_if_needed()
        shown = cells.nth(plot).locator(".widget-html-content").last
        picture = cells.nth(plot).locator("img.widget-image")
        first, src = frame_number(shown), picture.get_attribute("src")
        page.wait_for_function(
            "([el, n]) => +(/frame (\\d+)/.exec(el.textContent) || [0, 0])[1] >= n",
            arg=[shown.element_handle(), first + 2], timeout=30_000,
        )
        page.wait_for_function("([el, src]) => el.getAttribute('src') !== src",
                               arg=[picture.element_handle(), src], timeout=30_000)
        assert "live, every 1 s" in shown.text_content()
        page.screenshot(path=str(SHOTS / f"after-04-moving-{plot}.png"))
    # A live histogram's status line gives its percentiles in units.
    hist = cells.nth(hist).locator(".widget-html-content").last.text_content()
    assert re.search(r"p50 ≈ [\d.]+ (ns|µs|ms) · p90 ≈ [\d.]+ (ns|µs|ms|s) · p99", hist), hist
    wait_until_run(page, timeout=120)
    printed = cells.nth(printed_at).locator(".jp-OutputArea-output").text_content()
    frames = [int(n) for n in re.findall(r"(\d+) frames>", printed)]
    assert len(frames) == 4 and min(frames) >= 6, printed  # not 3 or 4: they moved until the workload ended

    static = svg_texts(figure_of(cells, static_hist))  # the nanosecond histogram after the capture
    assert static["x"] and all(DURATION.match(t) for t in static["x"]), static["x"]
    assert all(re.fullmatch(r"p\d+ ≈ [\d.]+ (ns|µs|ms|s)", t) for t in static["legend"]), static["legend"]
    rates = svg_texts(figure_of(cells, static_line))
    assert len(set(rates["x"])) == len(rates["x"]) >= 2 and len({len(t) for t in rates["x"]}) == 1, rates["x"]
    cells.nth(static_hist).screenshot(path=str(SHOTS / "after-04-static-hist.png"))
    cells.nth(static_line).screenshot(path=str(SHOTS / "after-04-static-line.png"))


COST_CELLS = [
    '%%bpf cost\nBPF_HASH(calls, u32, u64);\nTRACEPOINT_PROBE(raw_syscalls, sys_enter) {\n'
    "    u32 pid = bpf_get_current_pid_tgid() >> 32;\n    calls.increment(pid);\n    return 0;\n}",
    'bars = cost["calls"].live(kind="bar", interval=0.5)\nbars',
    'trend = cost["calls"].live(kind="line", interval=0.5, top=3)\ntrend',
]


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] < page.viewport_size["height"] and box["y"] + box["height"] > 0


def kernel_pid(base: str, name: str) -> int:
    """The pid of the kernel process running notebook ``name``."""
    (session,) = [s for s in api(base, "sessions") if s["path"] == name]
    connection = f"kernel-{session['kernel']['id']}.json".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if connection in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no kernel process for {name}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core process ``pid`` used over the next ``seconds``."""
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start)


def test_a_closed_tab_stops_live_plots_costing_cpu(page, lab, kernel_name):
    base, root = lab
    name = "live-cost.ipynb"
    spec = {"name": kernel_name, "display_name": "eBPF (bpfnb)", "language": "python"}
    cells = [nbformat.v4.new_code_cell(source) for source in COST_CELLS]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": spec}), root / name)
    shown = run_all(page, base, name)
    wait_until_run(page)
    bars, trend = (shown.nth(i).locator(".widget-html-content").last for i in (1, 2))
    # The second plot is below the fold: it draws nothing until it is scrolled into view.
    shown.nth(1).scroll_into_view_if_needed()
    page.wait_for_function("el => /frame ([4-9]|\\d\\d)/.test(el.textContent)", arg=bars.element_handle(),
                           timeout=60_000)
    assert not in_view(page, shown.nth(2).locator(".bpfnb-live"))
    hidden_frames = frame_number(trend)
    time.sleep(3)
    assert frame_number(trend) == hidden_frames, "a plot out of view kept drawing"
    shown.nth(2).scroll_into_view_if_needed()
    page.wait_for_function("([el, n]) => +(/frame (\\d+)/.exec(el.textContent) || [0, 0])[1] > n",
                           arg=[trend.element_handle(), hidden_frames + 2], timeout=30_000)
    page.set_viewport_size({"width": 1280, "height": 2000})  # both in view
    kernel = kernel_pid(base, name)
    seen = cpu_share(kernel, 4)
    page.screenshot(path=str(SHOTS / "after-live-cost-open.png"))
    page.close()  # the browser tab: no view says goodbye, they just fall silent
    time.sleep(4.5)  # bpfnb.live.visibility.SILENCE, and a frame that was being drawn
    unseen = cpu_share(kernel, 5)
    (SHOTS / "after-live-cost.txt").write_text(
        f"kernel CPU with two live plots every 0.5 s: {seen:.1%} while seen, {unseen:.1%} after the tab closed\n"
    )
    assert unseen < 0.05, f"the kernel still used {unseen:.1%} of a core (it used {seen:.1%} while seen)"
    assert unseen < seen / 3, (seen, unseen)
