"""The doctor's table and its header-linking fix, on temporary trees (no root needed)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from bpfnb.tools import cli as _cli
from bpfnb.tools.doctor import Check, DoctorReport, FixReport, link_generic_headers

from ..kernel.test_environment import make_debian_headers

RELEASE = "6.18.44-fc-v509"


@pytest.fixture
def roots(tmp_path):
    src, modules = tmp_path / "src", tmp_path / "modules"
    src.mkdir()
    return {"release": RELEASE, "modules_root": str(modules), "src_root": str(src), "machine": "x86_64"}


def test_links_the_newest_debian_headers(roots):
    src = Path(roots["src_root"])
    make_debian_headers(src, "6.1.0-55", sublevel="190")
    newest = make_debian_headers(src, "6.1.0-56")
    make_debian_headers(src, "6.1.0-57", flavour="cloud-amd64")  # other flavours are never picked

    [row] = link_generic_headers(**roots)

    base = Path(roots["modules_root"], RELEASE)
    assert row.state == "done"
    assert os.readlink(base / "build") == str(newest)
    assert os.readlink(base / "source") == str(src / "linux-headers-6.1.0-56-common")
    assert (base / "build" / "include/generated/utsrelease.h").exists()


def test_linking_is_idempotent(roots):
    make_debian_headers(Path(roots["src_root"]), "6.1.0-56")
    assert link_generic_headers(**roots)[0].state == "done"
    again = link_generic_headers(**roots)
    assert [row.state for row in again] == ["ok"]
    assert "already exists" in again[0].detail


def test_existing_headers_are_never_replaced(roots):
    make_debian_headers(Path(roots["src_root"]), "6.1.0-56")
    own = Path(roots["modules_root"], RELEASE, "build")
    own.mkdir(parents=True)
    assert link_generic_headers(**roots)[0].state == "ok"
    assert not own.is_symlink()


def test_a_dangling_build_link_is_replaced(roots):
    arch = make_debian_headers(Path(roots["src_root"]), "6.1.0-56")
    base = Path(roots["modules_root"], RELEASE)
    base.mkdir(parents=True)
    (base / "build").symlink_to(Path(roots["src_root"], "linux-headers-5.10.0-9-amd64"))
    assert link_generic_headers(**roots)[0].state == "done"
    assert os.readlink(base / "build") == str(arch)


def test_links_ubuntu_generic_headers(roots):
    src = Path(roots["src_root"])
    common = src / "linux-headers-6.8.0-45"
    common.mkdir()
    generic = src / "linux-headers-6.8.0-45-generic"
    generic.mkdir()
    assert link_generic_headers(**roots)[0].state == "done"
    base = Path(roots["modules_root"], RELEASE)
    assert os.readlink(base / "build") == str(generic)
    assert os.readlink(base / "source") == str(common)


def test_no_generic_headers_is_a_failure_with_the_fix(roots):
    (Path(roots["src_root"]) / "linux-headers-6.1.0-56-common").mkdir()
    [row] = link_generic_headers(**roots)
    assert row.state == "fail"
    assert "make lab" in row.detail
    assert not Path(roots["modules_root"], RELEASE, "build").exists()


ROWS = [
    Check("privileges", "ok", "root: CAP_BPF, CAP_PERFMON"),
    Check("kernel headers", "warn", "6.1.0-56-amd64 for running " + RELEASE, "install linux-headers-" + RELEASE),
    Check("tracefs", "fail", "not mounted", "`sudo bpfnb doctor --fix`"),
    Check("kernel config", "skip", "/proc/config.gz missing"),
]


def test_report_text_puts_problems_first():
    report = DoctorReport(ROWS)
    text = repr(report)
    sections = text.split("\n\n")
    assert sections[0] == "bpfnb doctor: 1 ok, 1 warn, 1 fail, 1 skip"
    assert sections[1].splitlines()[0] == "Needs attention (2):"
    assert [line.split()[:2] for line in sections[1].splitlines()[3:] if line[:1] != " "] == [
        ["tracefs", "fail"],
        ["kernel", "headers"],
    ]
    assert "fix: `sudo bpfnb doctor --fix`" in sections[1]
    assert sections[2].splitlines()[0] == "Other checks: 1 ok, 1 skip"
    assert not report.ok
    assert report.failures == (ROWS[2],)
    assert report["kernel headers"].state == "warn"
    with pytest.raises(KeyError):
        report["nothing"]


def test_report_html_problems_first_then_groups():
    rows = [replace(row, group="Set-up") for row in ROWS] + [Check("attach: xdp", "ok", "loaded", group="Attach types")]
    page = BeautifulSoup(DoctorReport([*rows, Check("<odd>", "ok", "a & b", group="Set-up")])._repr_html_(), "html.parser")
    tables = page.select(".bpfnb-card table.bpfnb-t")
    first = [[td.get_text() for td in tr.find_all("td")] for tr in tables[0].select("tbody tr")]
    assert [row[:2] for row in first] == [["tracefs", "fail"], ["kernel headers", "warn"]]
    assert tables[0].select_one(".bpfnb-fix").get_text() == "fix: sudo bpfnb doctor --fix"
    assert tables[0].select_one(".bpfnb-fix code").get_text() == "sudo bpfnb doctor --fix"
    assert tables[0].find_previous(class_="bpfnb-h").get_text() == "Needs attention (2)"
    groups = page.find_all("details")
    assert [g.summary.get_text() for g in groups] == ["Set-up: 2 ok, 1 skip", "Attach types: 1 ok"]
    assert [tr.td.get_text() for tr in groups[0].select("tbody tr")] == ["privileges", "kernel config", "<odd>"]
    assert [th.get_text() for th in groups[1].select("th")] == ["check", "state", "detail"]
    assert page.find("b", class_="bpfnb-bad").get_text() == "fail" and page.find("b", class_="bpfnb-note")
    assert "`" not in page.get_text()


def test_report_with_nothing_to_fix_says_so():
    page = BeautifulSoup(DoctorReport([ROWS[0]])._repr_html_(), "html.parser")
    assert page.find(class_="bpfnb-ok").get_text() == "Nothing needs attention."


def test_report_dataframe():
    frame = DoctorReport(ROWS).df()
    assert list(frame.columns) == ["check", "state", "detail", "fix", "group"]
    assert frame["state"].tolist() == ["ok", "warn", "fail", "skip"]
    assert frame.loc[2, "fix"] == "`sudo bpfnb doctor --fix`"


def test_fix_report_lines():
    fixes = FixReport([Check("mount tracefs", "done", "mounted tracefs on /sys/kernel/tracing")])
    assert list(fixes) == ["mount tracefs: done: mounted tracefs on /sys/kernel/tracing"]
    assert repr(fixes).startswith("bpfnb doctor --fix: 1 done\n")


def test_cli_lists_doctor_and_rejects_unknown_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "doctor" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["frobnicate"])
    assert exit_info.value.code == 2


def test_bpftrace_is_optional(monkeypatch):
    from bpfnb.tools.doctor import _bpftrace

    monkeypatch.setenv("BPFTRACE", "/nonexistent/bpftrace")
    [row] = _bpftrace()
    assert (row.check, row.state) == ("bpftrace", "warn") and "apt-get install bpftrace" in row.fix
    monkeypatch.setenv("BPFTRACE", "/bin/echo")  # prints its arguments: a version line of sorts
    [row] = _bpftrace()
    assert row.state == "ok" and "(/bin/echo)" in row.detail
