"""What one bad-input case is: the input, the moment of an interrupt, and what must happen.

A case is run by ``run_case.py`` in a fresh process with a real IPython
``InteractiveShell`` that has ``%load_ext bpfnb``:

1. ``setup`` (a cell: Python, or ``%%bpf``) runs and must succeed;
2. ``action`` runs as one cell in the shell, as a user would run it: a
   ``%%bpf`` cell, a ``%bpf`` line, or Python using only the public API
   (``bpfnb``, ``pd``, ``np``, ``os``, ``time``, ``signal`` and the helpers of
   ``sources.py`` are in the namespace). A callable action is called in the
   case's process and returns the cell's text;
3. ``check`` (plain Python, ``assert`` statements) runs in the same namespace;
   ``error`` is the exception the action raised (or None), ``seconds`` how long
   it took, ``shown`` what the shell displayed;
4. ``teardown`` (a cell) runs; by default the runner calls ``%bpf detach --all``
   and ``.detach()`` of every ``bpfnb.Program`` in the namespace.

What is asserted (see ``test_bad_input.py``): the error class by name (and that
it is a ``bpfnb.BpfnbError`` subclass, IPython's ``UsageError``, or a
``KeyboardInterrupt`` for an interrupt), the cell line it names, ``says`` found
in its message, the process still alive with exit code 0, no Python traceback
in what the user saw, and BPF fds, threads and the kernel's programs and maps
back where they were: after a failed action as after ``setup``, and after
``teardown`` as before ``setup``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

#: Classes a case may expect besides bpfnb's own errors.
NON_BPFNB = ("UsageError", "KeyboardInterrupt")


@dataclass(frozen=True)
class Interrupt:
    """When to send SIGINT to the case's process during its action.

    ``after``: seconds after the action starts. ``on``: when the process has
    ``skip + 1`` more fds of this kind than at the action's start (``"map"``,
    ``"prog"``, ``"perf_event"``, ``"link"``), then ``after`` seconds more.
    ``before``: a kind of fd that must not have appeared yet when SIGINT is
    sent, which proves the phase (no new map fd: still compiling).
    """

    after: float = 0.0
    on: str | None = None
    skip: int = 0
    before: str | None = None


@dataclass(frozen=True)
class Case:
    #: Short unique name, used on the command line and in reports.
    id: str
    #: One line for reports: what is fed to bpfnb.
    feeds: str
    #: The cell the user runs (``%%bpf``/``%bpf``/Python), or a builder of it.
    action: Union[str, Callable[[], str]]
    #: The exception class name the action must raise; None: it must succeed.
    expect: str | None
    #: The cell line the error must name (cell line 1 is the ``%%bpf`` line;
    #: in ``bpfnb.Program(src)`` line 1 is the source's first line).
    line: int | None = None
    #: A regular expression (case-insensitive) the error message must match.
    says: str | None = None
    #: A regular expression what the shell displayed must match (for successes that must speak).
    shows: str | None = None
    setup: str = ""
    check: str = ""
    teardown: str | None = None
    interrupt: Interrupt | None = None
    #: Seconds after which the harness kills the process.
    timeout: float = 40.0
    #: Where the issue (or this corpus) found the problem; for reports.
    source: str = ""

    def __post_init__(self) -> None:
        if not self.id.replace("_", "").isalnum():
            raise ValueError(f"case id {self.id!r}: letters, digits and underscores only")
