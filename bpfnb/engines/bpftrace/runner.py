"""bpftrace as a child process that cannot outlive the Python process.

``bpftrace -f json -B line -`` reads the script on stdin and writes one JSON
object a line on stdout; a thread folds that into an
:class:`~.output.OutputState`, another keeps stderr.

The child dies with its parent. It is started through a few lines of Python
(:data:`_LIFELINE`) that set ``PR_SET_PDEATHSIG`` to SIGKILL, check that the
parent is still the process that started them (the parent may have died
before the prctl), and exec bpftrace; the death signal survives the exec.
The kernel sends it when the *thread* that forked the child exits, so every
child is forked by one daemon thread that lives as long as the process
(:class:`_Forker`), never by whichever thread starts a program. When the
process dies, bpftrace's fds close and the kernel detaches and frees its
programs.

The child has a session of its own: a terminal's Ctrl-C, or a Jupyter
interrupt sent to the kernel's process group, reaches Python only; stopping
bpftrace is :meth:`Bpftrace.stop`'s job.

:meth:`Bpftrace.start` returns once bpftrace has attached everything.
bpftrace 0.17 writes ``attached_probes`` *before* attaching (a kprobe that
then fails to attach still prints it), so that record alone proves nothing;
bpftrace enters its event loop (``epoll_wait``) only after its last probe is
attached, so start() waits for the record and then for the child's main
thread to sleep in ``epoll_wait`` (``/proc/PID/wchan``, or the syscall number
in ``/proc/PID/syscall`` where wchan is not symbolised).
"""

from __future__ import annotations

import concurrent.futures
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from ...errors import BpfnbError, Interrupted, SetupError
from .diagnostics import failure
from .output import OutputState
from .prepared import PreparedScript

__all__ = ["Bpftrace", "find_bpftrace", "in_event_loop"]

# Run as `python -c _LIFELINE PARENT_PID PROGRAM ARGS...`. ctypes is loaded in
# this fresh process, never between fork and exec of a threaded parent (what
# subprocess's preexec_fn would do, which Python documents as unsafe).
_LIFELINE = """\
import ctypes, os, sys
PR_SET_PDEATHSIG = 1
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_PDEATHSIG) failed: " + os.strerror(ctypes.get_errno()))
if os.getppid() != int(sys.argv[1]):
    os._exit(1)  # the parent died before the prctl: nobody is left to read us
os.execvp(sys.argv[2], sys.argv[2:])
"""

# epoll_wait, epoll_pwait, epoll_pwait2 by architecture, for /proc/PID/syscall.
_EPOLL_SYSCALLS = {"x86_64": {232, 281, 441}, "aarch64": {22, 441}}
# Bytes of stderr kept: a chatty script cannot fill memory.
_STDERR_KEEP = 1 << 20
#: Seconds bpftrace may take to attach (hundreds of wildcard probes take long).
START_TIMEOUT = 120.0
#: Seconds bpftrace may spend after SIGINT without using any CPU time before it is killed: printing a
#: map of a million keys takes it seconds of work, a bpftrace that hangs does none.
STOP_QUIET = 2.0
#: Seconds after SIGINT after which bpftrace is killed, busy or not.
STOP_LIMIT = 60.0


class _Forker:
    """One daemon thread that forks every child (see the module's documentation)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[subprocess.Popen[bytes]], dict[str, Any]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, **arguments: Any) -> concurrent.futures.Future[subprocess.Popen[bytes]]:
        """``subprocess.Popen(**arguments)``, run by the forking thread."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bpfnb-bpftrace-forker", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._jobs.put((future, arguments))
        return future

    def _run(self) -> None:
        while True:
            future, arguments = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(subprocess.Popen(**arguments))
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)


_FORKER = _Forker()


def find_bpftrace() -> str:
    """The bpftrace executable: ``$BPFTRACE``, or ``bpftrace`` on PATH; a :class:`SetupError` if there is none."""
    found = os.environ.get("BPFTRACE") or shutil.which("bpftrace")
    if not found:
        raise SetupError(
            "bpftrace is not installed, so %%bpftrace cells cannot run.",
            hint="Install it (Debian and Ubuntu: `apt-get install bpftrace`; `make lab` does) or set $BPFTRACE.",
        )
    return found


def _cpu_ticks(pid: int) -> int | None:
    """CPU time ``pid`` has used, all its threads together, in clock ticks (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime and stime, the stat file's fields 14 and 15


def in_event_loop(pid: int) -> bool:
    """Whether ``pid``'s main thread sleeps in epoll_wait (bpftrace's event loop)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        if "epoll" in wchan:
            return True
        if wchan not in ("", "0"):
            return False  # symbolised, and somewhere else
        with open(f"/proc/{pid}/syscall") as f:
            number = f.read().split(maxsplit=1)[0]
    except (OSError, IndexError):
        return False
    return number.isdigit() and int(number) in _EPOLL_SYSCALLS.get(platform.machine(), ())


class Bpftrace:
    """One run of bpftrace on a prepared script.

    Parameters
    ----------
    prepared
        The script to run.
    env
        bpftrace's settings by environment variable, e.g.
        ``{"BPFTRACE_MAP_KEYS_MAX": "1048576"}``.
    max_lines
        Printed lines kept in memory (the oldest are dropped first).
    """

    def __init__(
        self, prepared: PreparedScript, *, env: Mapping[str, str] | None = None, max_lines: int = 1_000_000
    ) -> None:
        self.prepared = prepared
        self.executable = find_bpftrace()
        self.env = dict(env or {})
        self.output = OutputState(prepared.marker, prepared.printed, max_lines=max_lines)
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr = bytearray()
        self._readers: list[threading.Thread] = []
        self._stopping = threading.Lock()

    @property
    def pid(self) -> int | None:
        """bpftrace's process id, once started."""
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """bpftrace's exit status, None while it runs."""
        return self.process.poll() if self.process else None

    @property
    def stderr(self) -> str:
        """What bpftrace wrote on stderr so far (its first MiB)."""
        return self._stderr.decode(errors="replace")

    # -- starting ----------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start bpftrace and wait until every probe is attached.

        Raises
        ------
        CompileError, AttachError, PrivilegeError
            bpftrace refused the script (see :func:`~.diagnostics.failure`).
        BpfnbError
            Still attaching after ``timeout`` seconds.
        KeyboardInterrupt
            Passed on once bpftrace is gone. Any failure leaves no bpftrace behind.
        """
        argv = [
            sys.executable, "-I", "-S", "-c", _LIFELINE, str(os.getpid()),
            self.executable, "-f", "json", "-B", "line", "-",
        ]  # fmt: skip
        spawned = _FORKER.popen(
            args=argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **self.env},
            start_new_session=True,
            close_fds=True,
        )
        try:
            self.process = spawned.result()
            self._start_readers()
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(self.prepared.text.encode())
                self.process.stdin.close()
            except BrokenPipeError:
                pass  # it exited already; its stderr says why
            self._wait_attached(timeout)
        except BaseException:
            if self.process is None and not spawned.cancel():
                self.process = spawned.result()  # interrupted while it forked: kill it too
            self._kill()
            raise

    def _start_readers(self) -> None:
        assert self.process is not None and self.process.stdout and self.process.stderr
        for target, stream in ((self._read_stdout, self.process.stdout), (self._read_stderr, self.process.stderr)):
            thread = threading.Thread(target=target, args=(stream,), name=f"bpfnb-bpftrace-{self.pid}", daemon=True)
            thread.start()
            self._readers.append(thread)

    def _read_stdout(self, stream: IO[bytes]) -> None:
        feed = self.output.feed
        for raw in stream:
            feed(raw.decode(errors="replace"))
        stream.close()
        assert self.process is not None
        self.output.finish(clean_exit=self.process.wait() == 0)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            if len(self._stderr) < _STDERR_KEEP:
                self._stderr += raw
        stream.close()

    def _wait_attached(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        added = 1 if self.prepared.interval_ms else 0
        while True:
            if self.process.poll() is not None:
                self._join_readers()
                if self.process.returncode != 0 or self.output.attached is None:
                    raise failure(self.stderr, self.prepared, self.process.returncode)
                return  # the script ran to its end (exit() in BEGIN, say)
            attached = self.output.attached
            if attached is not None and attached <= added:
                # Alone, bpftrace would stop with "No probes to attach"; the
                # printing probe would keep it running, tracing nothing.
                raise failure("No probes to attach\n", self.prepared, None)
            if attached is not None and in_event_loop(self.process.pid):
                return
            if time.monotonic() > deadline:
                raise BpfnbError(
                    f"bpftrace was still attaching its probes after {timeout:g} s; it was stopped.",
                    hint="Wildcards that match thousands of probes take long: name fewer probes.",
                    details=self.stderr,
                )
            # Short waits: attaching ends in a state of /proc that nothing notifies.
            self.output.wait_change(0.02)

    def _join_readers(self, timeout: float = 5.0) -> None:
        for thread in self._readers:
            thread.join(timeout)

    # -- stopping ------------------------------------------------------------------

    def stop(self, quiet: float = STOP_QUIET, limit: float = STOP_LIMIT) -> None:
        """Stop bpftrace: SIGINT (it prints its maps and detaches), then SIGKILL if it must.

        bpftrace is killed once it has used no CPU time for ``quiet`` seconds,
        or ``limit`` seconds after SIGINT: a map of a million keys takes it
        seconds to print, and those values are the ones it had at the end.
        Idempotent. Returns when the process is gone and its output read: the
        kernel has then released every program and map it held.

        Raises
        ------
        Interrupted
            Ctrl-C while it prints: it is killed at once (its last periodic
            prints stand for its maps).
        """
        with self._stopping:
            if self.process is None:
                return
            if self.process.poll() is None:
                self._signal(signal.SIGINT)
                try:
                    self._wait_while_busy(quiet, limit)
                except KeyboardInterrupt:
                    self._kill()
                    raise Interrupted("waiting for bpftrace to print its maps at exit") from None
            self._join_readers()

    def _wait_while_busy(self, quiet: float, limit: float) -> None:
        assert self.process is not None
        started = last_change = time.monotonic()
        used = _cpu_ticks(self.process.pid)
        while True:
            try:
                self.process.wait(0.1)
                return
            except subprocess.TimeoutExpired:
                pass
            now, using = time.monotonic(), _cpu_ticks(self.process.pid)
            if using != used:
                used, last_change = using, now
            if now - last_change > quiet or now - started > limit:
                self._kill()
                return

    def _kill(self) -> None:
        """SIGKILL, without waiting for final maps (a failed or interrupted start)."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait()
        self._join_readers()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            return  # reaped: its pid may be someone else's by now
        try:
            if sig == signal.SIGKILL:
                # bpftrace leads its own process group: take along any child it
                # started (system() under --unsafe).
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        except ProcessLookupError:
            pass
