"""Run one bad-input case in this process; print its outcome as one JSON line.

    .venv/bin/python tests/privileged/bad_input/run_case.py CASE_ID

The last line of stdout is ``BADINPUT-RESULT {json}``. A process that dies
(segfault, abort, ``exit()``) prints no result: the harness reports its exit
code and the end of its stderr, where this script marks each phase it enters.

Only bpfnb's public API and its magics are used: ``import bpfnb`` and a real
``IPython.core.interactiveshell.InteractiveShell`` with ``%load_ext bpfnb``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# The checkout's root, to import this directory as tests.privileged.bad_input.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

# An IPython profile of its own: no history database, nothing left in ~/.ipython.
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="bpfnb-badinput-ipython-"))

RESULT_MARK = "BADINPUT-RESULT "
SETTLE_SECONDS = 1.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LINE = re.compile(r"\bline (\d+)\b")

_FD_KINDS = {
    "anon_inode:bpf-prog": "prog",
    "anon_inode:bpf-map": "map",
    "anon_inode:bpf_link": "link",
    "anon_inode:[perf_event]": "perf_event",
}


def phase(name: str) -> None:
    """Say on stderr which phase runs: the last one named is where a dead process died."""
    sys.stderr.write(f"[run_case] phase: {name}\n")
    sys.stderr.flush()


# -- measuring -----------------------------------------------------------------


def own_fds() -> dict[str, int]:
    """This process's BPF program, map, link and perf event fds, by kind."""
    counts = dict.fromkeys(_FD_KINDS.values(), 0)
    for fd in os.listdir("/proc/self/fd"):
        try:
            kind = _FD_KINDS.get(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if kind:
            counts[kind] += 1
    return counts


def _held_ids(pid: str) -> tuple[set[int], set[int]]:
    """Program and map ids process ``pid`` holds through fds."""
    progs: set[int] = set()
    maps: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return progs, maps
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("prog_id:"):
                        progs.add(int(line.split()[1]))
                    elif line.startswith("map_id:"):
                        maps.add(int(line.split()[1]))
        except (OSError, ValueError):
            continue
    return progs, maps


def _bpftool(kind: str) -> list[dict[str, Any]]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out = subprocess.run([bpftool, "-j", kind, "show"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


class Kernel:
    """The kernel's programs and maps that no other process holds.

    Ids held by other processes come and go (other tests, other users) and are
    left out, as in ``kernel_prog_ids()`` of ``tests/privileged/conftest.py``.
    A map counts as held by another process when one of its fds or one of its
    programs holds it. New ids that no process holds count against this case
    only if this process held them at some moment it was sampled: a leak is
    something this process made and let go of without freeing.
    """

    def __init__(self) -> None:
        self.ours_seen: dict[str, set[int]] = {"progs": set(), "maps": set()}

    def note_own(self) -> None:
        """Remember the programs and maps this process holds now (cheap: own fdinfo only)."""
        progs, maps = _held_ids(str(os.getpid()))
        self.ours_seen["progs"] |= progs
        self.ours_seen["maps"] |= maps

    def sample(self) -> dict[str, set[int]]:
        progs = _bpftool("prog")
        maps = _bpftool("map")
        me = str(os.getpid())
        other_progs: set[int] = set()
        other_maps: set[int] = set()
        for pid in os.listdir("/proc"):
            if pid.isdigit() and pid != me:
                p, m = _held_ids(pid)
                other_progs |= p
                other_maps |= m
        for prog in progs:
            if prog["id"] in other_progs:
                other_maps.update(prog.get("map_ids", []))
        mine_p, mine_m = _held_ids(me)
        for prog in progs:
            if prog["id"] in mine_p:
                mine_m.update(prog.get("map_ids", []))
        self.ours_seen["progs"] |= mine_p
        self.ours_seen["maps"] |= mine_m
        return {
            "progs": {p["id"] for p in progs} - other_progs,
            "maps": {m["id"] for m in maps} - other_maps,
        }


#: Threads of this script (the watcher, the interrupter), left out of every count.
OWN_THREADS = "badinput-"


def threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith(OWN_THREADS))


def tasks() -> int:
    own = sum(1 for t in threading.enumerate() if t.name.startswith(OWN_THREADS))
    return len(os.listdir("/proc/self/task")) - own


def snapshot(kernel: Kernel) -> dict[str, Any]:
    gc.collect()
    return {"fds": own_fds(), "threads": threads(), "tasks": tasks(), **kernel.sample()}


def difference(kernel: Kernel, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What ``after`` holds that ``before`` did not (empty dict: nothing)."""
    diff: dict[str, Any] = {}
    fds = {k: after["fds"][k] - before["fds"][k] for k in after["fds"] if after["fds"][k] != before["fds"][k]}
    if fds:
        diff["fds"] = fds
    if after["threads"] != before["threads"]:
        gone = list(before["threads"])
        new = []
        for name in after["threads"]:
            if name in gone:
                gone.remove(name)
            else:
                new.append(name)
        diff["threads"] = {"new": new, "gone": gone}
    if after["tasks"] != before["tasks"]:
        diff["tasks"] = after["tasks"] - before["tasks"]
    for kind in ("progs", "maps"):
        new_ids = after[kind] - before[kind]
        ours = sorted(new_ids & kernel.ours_seen[kind])
        if ours:
            diff[f"kernel_{kind}"] = ours
    return diff


def settle(kernel: Kernel, reference: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snapshot until nothing differs from ``reference`` or SETTLE_SECONDS pass.

    The kernel frees a closed program after an RCU grace period and threads
    take a moment to end, so a difference must last to count.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        now = snapshot(kernel)
        diff = difference(kernel, reference, now)
        if not diff or time.monotonic() > deadline:
            return now, diff
        time.sleep(0.1)


class Watcher:
    """Notes every 20 ms which programs and maps this process holds, while setup and action run.

    An object this process made and lost without freeing (a program left
    attached through an orphaned perf event, say) is no longer held at the
    next snapshot; having been seen here is what ties it to this case.
    """

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="badinput-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._kernel.note_own()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._kernel.note_own()


# -- interrupting ----------------------------------------------------------------


class Interrupter:
    """Sends SIGINT to this process at the moment a case's :class:`Interrupt` names."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.fired_at: float | None = None
        self.fds_at_fire: dict[str, int] | None = None
        self._cancel = threading.Event()
        self._start = time.monotonic()
        self._base = own_fds()
        self._thread = threading.Thread(target=self._run, name="badinput-interrupter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        spec = self.spec
        if spec.on:
            while not self._cancel.is_set():
                if own_fds()[spec.on] > self._base[spec.on] + spec.skip:
                    break
                time.sleep(0.001)
            else:
                return
        if self._cancel.wait(spec.after):
            return
        self.fds_at_fire = own_fds()
        self.fired_at = time.monotonic() - self._start
        os.kill(os.getpid(), signal.SIGINT)

    def finish(self) -> dict[str, Any]:
        self._cancel.set()
        self._thread.join()
        late = False
        # A SIGINT sent as the action ended is raised at the next bytecodes: absorb it here.
        for _ in range(5):
            try:
                time.sleep(0.01)
            except KeyboardInterrupt:
                late = True
        return {
            "fired": self.fired_at is not None,
            "at": self.fired_at,
            "fds_at_start": self._base,
            "fds_at_fire": self.fds_at_fire,
            "late": late,
        }


# -- running -----------------------------------------------------------------------


def default_teardown(shell: Any) -> None:
    """``%bpf detach --all``, then ``.detach()`` of every Program in the namespace.

    Called directly rather than run as a cell: a case may have shadowed
    ``get_ipython``, which the ``%bpf`` line of a cell calls.
    """
    import bpfnb

    with displayed():
        shell.run_line_magic("bpf", "detach --all")
    for value in list(shell.user_ns.values()):
        if isinstance(value, bpfnb.Program):
            value.detach()


def make_shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "bpfnb")
    return shell


@contextlib.contextmanager
def displayed() -> Any:
    """What the shell prints (tracebacks, usage errors, output) while the block runs."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def run_cell(shell: Any, text: str) -> tuple[BaseException | None, str, bool]:
    """Run ``text`` as one cell; return its error, what was displayed, and whether an interrupt escaped the shell."""
    escaped = False
    with displayed() as buffer:
        try:
            result = shell.run_cell(text, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except KeyboardInterrupt as exc:  # raised in IPython's own code, not the cell's
            error, escaped = exc, True
    return error, _ANSI.sub("", buffer.getvalue()), escaped


def describe_error(error: BaseException | None) -> dict[str, Any] | None:
    if error is None:
        return None
    import bpfnb

    message = getattr(error, "message", None) or str(error)
    details = getattr(error, "details", "") or ""
    line = getattr(error, "line", None)
    line_from = "attribute" if isinstance(line, int) else None
    if line_from is None:
        for where, text in (("message", message), ("details", details)):
            found = _LINE.search(text)
            if found:
                line, line_from = int(found[1]), where
                break
    rendered = None
    render = getattr(error, "_render_traceback_", None)
    if render is not None:
        try:
            rendered = _ANSI.sub("", "\n".join(render()))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            rendered = f"<_render_traceback_ raised {type(exc).__name__}: {exc}>"
    return {
        "class": type(error).__name__,
        "module": type(error).__module__,
        "mro": [c.__name__ for c in type(error).__mro__],
        "bpfnb_error": isinstance(error, bpfnb.BpfnbError),
        "message": message,
        "str": str(error),
        "details": details,
        "hint": getattr(error, "hint", ""),
        "line": line,
        "line_from": line_from,
        "rendered": rendered,
    }


def main(case_id: str) -> int:
    real_stdout = os.dup(1)
    phase("import")
    from tests.privileged.bad_input import sources
    from tests.privileged.bad_input.cases import CASES_BY_ID

    case = CASES_BY_ID[case_id]
    out: dict[str, Any] = {"id": case.id, "pid": os.getpid()}

    import numpy as np
    import pandas as pd

    import bpfnb

    phase("shell")
    shell = make_shell()
    shell.user_ns.update({name: getattr(sources, name) for name in dir(sources) if not name.startswith("_")})
    shell.user_ns.update(
        bpfnb=bpfnb, pd=pd, np=np, os=os, time=time, signal=signal, threading=threading, sources=sources
    )
    kernel = Kernel()

    phase("warm-up")
    error, shown, _ = run_cell(shell, sources.cell("_warmup", sources.COUNTER) + "\n")
    if error is not None:
        out["warmup_error"] = f"{type(error).__name__}: {error}\n{shown}"
    run_cell(shell, "%bpf detach _warmup\ndel _warmup")

    s0 = snapshot(kernel)
    watcher = Watcher(kernel)
    if case.setup:
        phase("setup")
        error, shown, _ = run_cell(shell, case.setup)
        if error is not None:
            out["setup_error"] = f"{type(error).__name__}: {error}\n{shown}"
    s1 = snapshot(kernel)

    text = case.action() if callable(case.action) else case.action
    phase("action")
    interrupter = Interrupter(case.interrupt) if case.interrupt else None
    started = time.monotonic()
    error, shown, escaped = run_cell(shell, text)
    seconds = time.monotonic() - started
    if interrupter is not None:
        out["interrupt"] = interrupter.finish()
    watcher.stop()
    out["seconds"] = round(seconds, 3)
    out["shown"] = shown
    out["escaped_shell"] = escaped
    out["error"] = describe_error(error)
    phase("after action")
    try:  # for reports: which programs the session holds now, and in what state
        with displayed():
            out["session"] = [[row.name, row.state] for row in shell.run_line_magic("bpf", "ls").rows]
    except Exception as exc:  # noqa: BLE001 - a shadowed name or a broken session
        out["session"] = f"%bpf ls failed: {type(exc).__name__}: {exc}"

    if case.check:
        phase("check")
        shell.user_ns.update(error=error, seconds=seconds, shown=shown)
        try:
            with displayed():
                exec(compile(case.check, f"<check of {case.id}>", "exec"), shell.user_ns)
        except Exception as exc:  # noqa: BLE001 - the harness reports it
            out["check_error"] = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc)[-3:])

    if case.expect is not None:  # a failed action leaves what setup made, and nothing more
        _, out["left_by_action"] = settle(kernel, s1)

    phase("teardown")
    shell.user_ns.pop("error", None)
    if case.teardown is None:
        try:
            default_teardown(shell)
        except Exception as exc:  # noqa: BLE001 - the harness reports it
            out["teardown_error"] = f"{type(exc).__name__}: {exc}"
    else:
        error, shown, _ = run_cell(shell, case.teardown)
        if error is not None:
            out["teardown_error"] = f"{type(error).__name__}: {error}\n{shown}"
    _, out["left_after_teardown"] = settle(kernel, s0)

    phase("report")
    os.write(real_stdout, (RESULT_MARK + json.dumps(out, default=str) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
