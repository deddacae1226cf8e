"""The bad-input corpus of issue 11: no input kills, hangs or empties a notebook.

Each case of ``bad_input/cases.py`` runs in a process of its own
(``bad_input/run_case.py CASE_ID``) against the real kernel; this module runs
them two at a time (``BADINPUT_WORKERS``) and asserts, per case:

- the process survived: exit code 0 and a result printed (a segfault or an
  abort shows as a negative exit code) within the case's timeout;
- the exact error class by name, a ``bpfnb.BpfnbError`` subclass (or IPython's
  ``UsageError`` for a bad magic argument, or ``KeyboardInterrupt`` for
  Ctrl-C), the cell line it names, and ``says`` in its message;
- no Python traceback in what the user saw (the shell's display, ``str()`` and
  ``_render_traceback_()`` of the error);
- BPF fds, threads and the kernel's programs and maps back where they were.

Run just the corpus:  .venv/bin/pytest tests/privileged/test_bad_input.py
One case by hand:     .venv/bin/python tests/privileged/bad_input/run_case.py CASE_ID
Every result as JSON: BADINPUT_RESULTS=/tmp/results.json .venv/bin/pytest tests/privileged/test_bad_input.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from .bad_input.case import NON_BPFNB, Case
from .bad_input.cases import CASES

HERE = Path(__file__).parent / "bad_input"

RUNNER = HERE / "run_case.py"
RESULT_MARK = "BADINPUT-RESULT "
WORKERS = int(os.environ.get("BADINPUT_WORKERS", "2"))
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|bpfnb/_\w+\.py|site-packages")


def run_case(case: Case) -> dict[str, Any]:
    """Run ``case`` in a new Python process; its result, or why there is none."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(RUNNER), case.id],
            capture_output=True,
            text=True,
            timeout=case.timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return {"process": f"killed after {case.timeout:g} s (hung)", "stderr": err[-3000:]}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        return {
            "process": f"exit code {done.returncode}" + (" (no result printed)" if not lines else ""),
            "returncode": done.returncode,
            "stderr": done.stderr[-3000:],
            "stdout": done.stdout[-2000:],
        }
    result = json.loads(lines[-1][len(RESULT_MARK) :])
    result["returncode"] = done.returncode
    result["wall_seconds"] = round(time.monotonic() - started, 2)
    return result


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[str, Future[dict[str, Any]]]:
    """Start every selected case at once on a pool of WORKERS threads, each driving one process."""
    selected = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is request.module and callspec is not None:
            selected.append(callspec.params["case"])
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    futures = {case.id: pool.submit(run_case, case) for case in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    dump = os.environ.get("BADINPUT_RESULTS")
    if dump:  # every result as JSON, for a report on the corpus
        done = {cid: f.result() for cid, f in futures.items() if f.done() and not f.cancelled()}
        Path(dump).write_text(json.dumps(done, indent=1, default=str))


def failures(case: Case, result: dict[str, Any]) -> list[str]:
    """Everything about ``result`` that ``case`` does not allow, as sentences."""
    if "process" in result:
        return [f"the process did not survive: {result['process']}\n--- its stderr ends with ---\n{result.get('stderr', '')}"]
    problems = []
    for key in ("warmup_error", "setup_error"):
        if key in result:
            problems.append(f"{key.replace('_', ' ')} (the case itself is broken): {result[key]}")
    error = result.get("error")
    interrupt = result.get("interrupt")
    if case.interrupt is not None:
        if not interrupt or not interrupt["fired"]:
            problems.append(f"the action ended ({result['seconds']} s) before SIGINT was sent: the case is broken")
        elif case.interrupt.before and interrupt["fds_at_fire"][case.interrupt.before] > interrupt["fds_at_start"][case.interrupt.before]:
            problems.append(f"SIGINT came too late (a {case.interrupt.before} fd was open already): {interrupt}")
    if result.get("escaped_shell"):
        problems.append("KeyboardInterrupt escaped the shell's run_cell (raised outside the cell's code)")
    if case.expect is None:
        if error is not None:
            problems.append(f"expected success, got {error['class']}: {error['str']}")
    elif error is None:
        problems.append(f"expected {case.expect}, but the action succeeded; it showed: {result['shown']!r}")
    else:
        if error["class"] != case.expect and not (case.expect == "KeyboardInterrupt" and case.expect in error["mro"]):
            problems.append(f"expected {case.expect}, got {error['class']}: {error['str']}")
        elif case.expect not in NON_BPFNB and not error["bpfnb_error"]:
            problems.append(f"{error['class']} is not a bpfnb.BpfnbError")
        if case.line is not None and error["line"] != case.line:
            problems.append(f"expected the error at line {case.line}, it names line {error['line']}: {error['message']!r}")
        if case.says and not re.search(case.says, error["str"], re.IGNORECASE):
            problems.append(f"the message does not match /{case.says}/: {error['str']!r}")
        texts = {"displayed": result["shown"]}
        if case.expect not in NON_BPFNB:
            texts.update({"str(error)": error["str"], "_render_traceback_()": error["rendered"] or ""})
            if error["rendered"] is None:
                problems.append("the error has no _render_traceback_: IPython shows a full traceback")
        for where, text in texts.items():
            found = _TRACEBACK.search(text)
            if found:
                problems.append(f"a Python traceback in what the user sees ({where}): ...{text[max(0, found.start() - 200): found.end() + 300]}")
        if case.expect == "KeyboardInterrupt" and len(result["shown"].strip().splitlines()) > 3:
            problems.append(f"an interrupt must show one line, it showed: {result['shown'][:1500]!r}")
    if case.shows and not re.search(case.shows, result["shown"], re.IGNORECASE):
        problems.append(f"the display does not match /{case.shows}/: {result['shown']!r}")
    if "check_error" in result:
        problems.append(f"check failed: {result['check_error']}")
    if result.get("left_by_action"):
        problems.append(f"the failed action left behind (compared with after setup): {result['left_by_action']}")
    if result.get("left_after_teardown"):
        problems.append(f"left behind after teardown (compared with before setup): {result['left_after_teardown']}")
    if "teardown_error" in result:
        problems.append(f"teardown failed: {result['teardown_error']}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, results: dict[str, Future[dict[str, Any]]]) -> None:
    result = results[case.id].result()
    problems = failures(case, result)
    assert not problems, f"{case.id} ({case.feeds}):\n- " + "\n- ".join(problems)


def test_the_corpus_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 60
    prefixes = {c.id.split("_")[0] for c in CASES}
    assert {"c", "v", "r", "opt", "line", "api", "rerun", "int"} <= prefixes
    assert {c.expect for c in CASES} >= {
        "CompileError", "LoadError", "AttachError", "ArgumentError", "NoSuchMapError", "UsageError", "KeyboardInterrupt"
    }
