"""Parsing the %%bpftrace line, without IPython or a kernel."""

from __future__ import annotations

import pytest

from bpfnb.notebook.options import CellOptions, OptionsError, bpftrace_help, parse_bpftrace_options


def test_a_bare_name_runs_bpftrace_with_its_defaults() -> None:
    assert parse_bpftrace_options("sys") == CellOptions(name="sys", engine="bpftrace")
    assert parse_bpftrace_options("sys").interval_ms == 1000


def test_interval_and_settings() -> None:
    options = parse_bpftrace_options("sys --interval 250 --env BPFTRACE_MAP_KEYS_MAX=100000 --env BPFTRACE_STRLEN=64")
    assert options.interval_ms == 250
    assert options.env == (("BPFTRACE_MAP_KEYS_MAX", "100000"), ("BPFTRACE_STRLEN", "64"))


def test_on_hosts_of_a_cluster() -> None:
    options = parse_bpftrace_options("sys --on web1,db1 --strict --interval 200")
    assert (options.on, options.strict, options.interval_ms) == ("web1,db1", True, 200)
    assert parse_bpftrace_options("sys").on is None


@pytest.mark.parametrize(
    "line, message",
    [
        ("", "required: name"),
        ("1x", "cannot name a notebook variable"),
        ("print", "would hide Python's or IPython's own print"),
        ("sys --interval -5", "give milliseconds"),
        ("sys --interval soon", "invalid int value"),
        ("sys --env NOVALUE", "--env takes NAME=VALUE"),
        ("sys --cflags -DX", "unrecognized arguments"),
        ("sys --strict", "--strict goes with --on"),
    ],
)
def test_mistakes_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        parse_bpftrace_options(line)


def test_help_names_the_options() -> None:
    assert "--interval MS" in bpftrace_help() and "NAME=VALUE" in bpftrace_help() and "--on HOSTS" in bpftrace_help()
