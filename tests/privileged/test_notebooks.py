"""Every notebook in notebooks/ runs clean, headless, on the installed "eBPF (bpfnb)" kernel.

A notebook whose numbers matter gets a check in ``CHECKS``: it reads the outputs
of cells tagged in the notebook (cell metadata ``tags``), so the test sees what
a student would see. Notebooks 01-05 also run as user nobody, whose kernel
cannot load programs: they then run from the captures that ship with them
(notebooks/captures/, made by make_captures.py there), and the same checks hold.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from bpfnb.kernel.environment import find_kernel_headers
from bpfnb.tools.kernelspec import install_kernelspec

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def tagged_output(nb: nbformat.NotebookNode, tag: str) -> str:
    """The text/plain result of the one code cell tagged ``tag``."""
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    results = [o for o in cells[0].outputs if o.output_type == "execute_result"]
    assert results, f"the cell tagged {tag!r} has no result"
    return results[-1].data["text/plain"]


def check_first_probe(nb: nbformat.NotebookNode) -> None:
    # The kernel made 10,000 getppid() calls before reading the map.
    assert int(tagged_output(nb, "own-syscalls")) >= 10_000


def expecting(values: dict[str, str]) -> Callable[[nbformat.NotebookNode], None]:
    """A check that each tagged cell's result reads exactly as given."""

    def check(nb: nbformat.NotebookNode) -> None:
        for tag, text in values.items():
            assert tagged_output(nb, tag) == text, tag

    return check


def check_packets(nb: nbformat.NotebookNode) -> None:
    expecting(
        {
            "xdp-dns": "'XDP_DROP'",
            "xdp-others": "['XDP_PASS']",
            "tc-checksums": "{'IPv4 header': '0xffff', 'UDP + pseudo-header': '0xffff'}",
            "socket-filter": "['keep 28 bytes', 'drop']",
            # Both addresses rewritten at once, both checksums fixed from one bpf_csum_diff.
            "csum-diff-addresses": "['192.168.1.1', '192.168.1.2']",
            "csum-diff": "{'IPv4 header': '0xffff', 'UDP + pseudo-header': '0xffff'}",
        }
    )(nb)
    # Without bpf_l3/l4_csum_replace the rewritten packet's checksums are wrong.
    assert "0xffff" not in tagged_output(nb, "tc-broken")


def check_helper_tour(nb: nbformat.NotebookNode) -> None:
    expecting(
        {
            "tour-events": "100",
            "tour-calls": "100",
            "tour-time-random": "(True, 100)",
            "spin-lock": "(1000, 52000)",
            "strtol-dynptr": "(-42, 4, '0x1122334455667788')",
            "syncookie": "['XDP_TX', 'XDP_PASS', 'XDP_DROP']",
            # Armed once from XDP by a libbpf cell, the timer's callback ran once.
            "timer-fired": "(1, 1)",
            # Every helper family of the catalog but "other" has a helper that some notebook's program calls.
            "families-shown": "['other']",
        }
    )(nb)
    assert tagged_output(nb, "snprintf").startswith("'52 bytes seen on CPU ")


def check_btf_and_core(nb: nbformat.NotebookNode) -> None:
    # The BCC cell that reads task_struct fields is refused exactly when the headers place them elsewhere than
    # the kernel; loaded anyway (--trust-headers), it then reads wrong values. With matching headers it loads and
    # reads the right ones.
    (cell,) = [c for c in nb.cells if "bcc-refused" in c.metadata.get("tags", [])]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    trusted = tagged_output(nb, "bcc-trusted")
    if errors:
        (error,) = errors
        assert error.ename == "LayoutError", error.ename
        assert "struct task_struct.tgid at offset" in error.evalue, error.evalue
        assert "False" in trusted, trusted
    else:
        assert trusted == "{'tgid': True, 'ppid': True, 'comm': True}", trusted
    # Here BCC compiles against another kernel's headers (Debian's 6.1 under 6.18): the refusal must show.
    if not find_kernel_headers().matches:
        assert errors, "the BCC cell loaded although the headers are another kernel's"
    expecting(
        {
            # CO-RE reads equal os.getpid(), os.getppid() and the thread's name.
            "core-read": "{'tgid': True, 'ppid': True, 'comm': True}",
            # tp_btf on sched_process_fork: the notebook's child has the notebook as parent, with its name.
            "fork": "(True, True)",
            # TASK_RUNNING read from __state (not the pre-5.14 state); the relocated offset is BTF's.
            "core-facts": "(0, False, True, True)",
            # A self-rearming timer beat 10 times, never faster than its 10 ms period.
            "heartbeat": "(10, True)",
        }
    )(nb)


def check_live_plots(nb: nbformat.NotebookNode) -> None:
    # Run headless, a live widget leaves a PNG of its last frame in the saved outputs.
    (cell,) = [c for c in nb.cells if "live-bar" in c.metadata.get("tags", [])]
    assert any("image/png" in output.get("data", {}) for output in cell.outputs)


def check_sockets(nb: nbformat.NotebookNode) -> None:
    expecting(
        {
            # One connect() from bash in the notebook's cgroup, to the old port, reached the new one.
            "connect4": "1",
            # Three clients sent 5 x 10, 20 and 30 kB: socket storage counted each socket's kB (headers below 1 kB).
            "sk-storage": "([50, 100, 150], [50, 100, 150])",
            # The sockmap's verdict program redirected 18 bytes from the front socket and 8 from the back one.
            "splice": "[18, 8]",
            "sk-lookup-tcp": "['XDP_PASS', 'XDP_DROP']",
            "sk-lookup": "([7000, 7042, 7099], 'refused', 3)",
            "task-cgroup-storage": "([100, 200], 300)",
            "iterator": "[100, 200]",
        }
    )(nb)
    # The live plot of socket storage kept its last frame.
    (cell,) = [c for c in nb.cells if "live-sk-storage" in c.metadata.get("tags", [])]
    assert any("image/png" in output.get("data", {}) for output in cell.outputs)
    # This kernel refuses BPF trampolines (NOTES.md), so LSM and fentry programs are refused with EPERM: the
    # notebook shows that refusal. A kernel that allows them loads both.
    outcomes = ast.literal_eval(tagged_output(nb, "trampolines"))
    assert set(outcomes.values()) <= {"loaded", "refused (EPERM)"}, outcomes


CHECKS: dict[str, Callable[[nbformat.NotebookNode], None]] = {
    "01-first-probe.ipynb": check_first_probe,
    "02-maps-and-dataframes.ipynb": expecting(
        {
            "dd-writes": "(100, 409600)",
            "enoent": "True",
            "per-cpu": "[[100, 0], [0, 50]]",
            "array-len": "8",
            "history-total": "12000",
        }
    ),
    "03-events-and-streams.ipynb": expecting(
        {
            "ring-events": "(20, ['true'])",
            "perf-cpus": "[(0, 5), (1, 5)]",
            "flood-total": "1000",
            "retention": "(5, True)",
            "parquet-ours": "10",
        }
    ),
    # 200 sleeps of 1.5 ms: the median falls in the log2 bucket [2^20, 2^21) ns.
    "04-live-plots.ipynb": check_live_plots,
    "05-latency-histograms-and-heatmaps.ipynb": expecting(
        {"samples": "220", "p50-bucket": "(1048576, 2097151)", "p99-slow": "True"}
    ),
    "06-packets-xdp-tc.ipynb": check_packets,
    "07-helper-tour.ipynb": check_helper_tour,
    "08-cpu-profiling-flame-graph.ipynb": expecting({"spin-leaves": "['hot', 'warm']", "dd-in-kernel": "True"}),
    "09-btf-and-co-re.ipynb": check_btf_and_core,
    # bpftrace and %%bpf count the same system calls and the same read-size buckets; dd's 1,000 reads of 4 KiB,
    # the median of 100 sleeps of 1.2 ms, three execs of a named /bin/true, dd's kernel stacks reading zeros.
    "10-bpftrace-one-liners.ipynb": expecting(
        {
            "counts-agree": "True",
            "same-buckets": "True",
            "dd-4k": "1000",
            "sleep-p50": "(1024, 2047)",
            "execs": "3",
            "dd-zero": "True",
        }
    ),
    "11-sockets-cgroups-local-storage.ipynb": check_sockets,
}


def test_every_notebook_has_a_check():
    assert {p.name for p in NOTEBOOKS} == set(CHECKS)


def test_there_are_notebooks():
    assert any(p.name == "01-first-probe.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells with outputs (clear them before committing): {dirty}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path, kernel_name, no_leaks):
    nb = nbformat.read(path, as_version=4)
    # Raises CellExecutionError, with the cell and its traceback, on any error.
    NotebookClient(
        nb, kernel_name=kernel_name, timeout=120, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    # Nothing a notebook does shows as a (pink) stderr block: notices are part of the displays.
    stderr = [i for i, c in enumerate(nb.cells) if any(o.get("name") == "stderr" for o in c.get("outputs", []))]
    assert not stderr, f"cells writing to stderr: {stderr}"
    check = CHECKS.get(path.name)
    if check is not None:
        check(nb)


# -- without root: notebooks 01-05 from the captures that ship with them ------------------------

#: The notebooks that fall back on a capture (notebooks/captures/<name>.zip) where programs cannot be loaded.
REPLAYED = [p for p in NOTEBOOKS if (NOTEBOOK_DIR / "captures" / f"{p.stem}.zip").exists()]

RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    NotebookClient(nb, kernel_name="bpfnb", timeout=120, resources={"metadata": {"path": sys.argv[2]}}).execute()
finally:
    nbformat.write(nb, sys.argv[3])
"""


@pytest.fixture(scope="module")
def ordinary_user() -> Iterator[tuple[Path, dict[str, str]]]:
    """A directory user nobody can write, holding a Jupyter set-up of its own: a kernel that runs as its user."""
    directory = Path(tempfile.mkdtemp(prefix="bpfnb-nobody-"))
    directory.chmod(0o777)
    install_kernelspec(directory, python=sys.executable)  # no user: the spec runs Python directly, without sudo
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(directory),
        "PYTHONPATH": str(NOTEBOOK_DIR.parent),
        "JUPYTER_PATH": str(directory / "share" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(directory / "runtime"),
        "IPYTHONDIR": str(directory / "ipython"),
        "MPLCONFIGDIR": str(directory / "matplotlib"),
        "BPFNB_CACHE_DIR": str(directory / "cache"),
    }
    yield directory, env
    shutil.rmtree(directory)


def test_notebooks_01_to_05_have_their_capture():
    assert [p.name[:2] for p in REPLAYED] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", REPLAYED, ids=lambda p: p.name)
def test_notebook_runs_from_its_capture_as_an_ordinary_user(path, ordinary_user, checkout_reachable_by_others):
    directory, env = ordinary_user
    out = directory / path.name
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", sys.executable]
    done = subprocess.run(
        [*command, "-c", RUN_NOTEBOOK, str(path), str(path.parent), str(out)],
        env=env, cwd="/tmp", capture_output=True, text=True, timeout=600,
    )
    nb = nbformat.read(out, as_version=4)
    errors = [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert done.returncode == 0 and not errors, errors or done.stderr[-3000:]
    (replay,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%bpf replay")]
    said = replay.outputs[0]["data"]["text/plain"]
    assert said.startswith(f"Replaying captures/{path.stem}.zip: this process is not root"), said
    # The same numbers as a live run: the capture's, as the recording notebook saw them.
    CHECKS[path.name](nb)
