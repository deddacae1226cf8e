"""The helper catalog read from the uapi header, checked against the header parsed independently."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bpfnb.tools.helper_examples import helper_examples
from bpfnb.tools.helpers import CATEGORIES, categorize, find_header, helpers, parse_header


@pytest.fixture(scope="module")
def header() -> str:
    with open(find_header()) as f:
        return f.read()


def enum_ids(header: str) -> dict[str, int]:
    """BPF_FUNC_* numbers as the C compiler would assign them: the mapper list in order."""
    body = header[header.index("#define __BPF_FUNC_MAPPER") : header.index("__BPF_ENUM_FN(x)")]
    names = re.findall(r"FN\((\w+)", body)
    explicit = re.findall(r"FN\((\w+),\s*(\d+)", body)
    return {name: int(n) for name, n in explicit} if explicit else {name: i for i, name in enumerate(names)}


def test_catalog_has_every_helper_of_the_header_with_its_id(header: str) -> None:
    expected = {f"bpf_{name}": number for name, number in enum_ids(header).items() if number}
    catalog = {doc.name: doc.id for doc in parse_header(header)}
    assert catalog == expected
    assert len(catalog) >= 209  # 6.1's header ends at bpf_user_ringbuf_drain = 209


@pytest.mark.parametrize(
    ("name", "number"),
    [("bpf_map_lookup_elem", 1), ("bpf_ktime_get_ns", 5), ("bpf_get_current_pid_tgid", 14),
     ("bpf_ringbuf_output", 130), ("bpf_snprintf", 165), ("bpf_user_ringbuf_drain", 209)],
)
def test_known_ids(header: str, name: str, number: int) -> None:
    assert {doc.name: doc.id for doc in parse_header(header)}[name] == number


def test_every_helper_has_the_headers_documentation(header: str) -> None:
    docs = parse_header(header)
    assert all(doc.signature and doc.description and doc.returns for doc in docs)
    ringbuf = next(doc for doc in docs if doc.name == "bpf_ringbuf_output")
    assert ringbuf.signature == "long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags)"
    assert ringbuf.description.startswith("Copy *size* bytes from *data* into a ring buffer *ringbuf*.")
    assert ringbuf.returns == "0 on success, or a negative error in case of failure."
    # Each signature is the doc comment's own line for that helper.
    for doc in docs:
        assert f" * {doc.signature}\n" in header


def test_numbered_mapper_of_newer_headers() -> None:
    text = """
#define ___BPF_FUNC_MAPPER(FN, ctx...)			\\
	FN(unspec, 0, ##ctx)				\\
	FN(map_lookup_elem, 1, ##ctx)			\\
	FN(cgrp_storage_get, 210, ##ctx)		\\
	/* */
"""
    assert [(d.name, d.id) for d in parse_header(text)] == [("bpf_map_lookup_elem", 1), ("bpf_cgrp_storage_get", 210)]


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("bpf_map_lookup_elem", "maps"),
        ("bpf_skb_load_bytes", "packets (skb/xdp)"),
        ("bpf_xdp_adjust_head", "packets (skb/xdp)"),
        ("bpf_ktime_get_ns", "time and random numbers"),
        ("bpf_get_prandom_u32", "time and random numbers"),
        ("bpf_perf_event_output", "event output and tracing"),
        ("bpf_get_current_pid_tgid", "process and task context"),
        ("bpf_sk_lookup_tcp", "sockets"),
        ("bpf_task_storage_get", "local storage"),
        ("bpf_spin_lock", "spin locks"),
        ("bpf_ringbuf_reserve", "dynptr and ring buffers"),
        ("bpf_dynptr_from_mem", "dynptr and ring buffers"),
        ("bpf_l4_csum_replace", "checksums"),
        ("bpf_tcp_raw_gen_syncookie_ipv4", "security (syncookies, IMA, LSM)"),
        ("bpf_ima_inode_hash", "security (syncookies, IMA, LSM)"),
        ("bpf_timer_start", "timers"),
        ("bpf_strtol", "strings and formatting"),
        ("bpf_snprintf", "strings and formatting"),
        ("bpf_sysctl_get_name", "other"),
    ],
)
def test_categories(name: str, category: str) -> None:
    assert categorize(name) == category


def test_every_category_is_used(header: str) -> None:
    assert {categorize(doc.name) for doc in parse_header(header)} == set(CATEGORIES)


def test_dataframe_without_the_kernel() -> None:
    df = helpers(probe=False)
    assert list(df.columns) == [
        "id", "name", "signature", "description", "returns", "category", "supported", "conditions", "example"
    ]
    assert df["id"].is_unique
    assert df.attrs["header"] == find_header()
    assert sorted(helpers(pattern="ringbuf", probe=False)["name"]) == [
        "bpf_ringbuf_discard", "bpf_ringbuf_discard_dynptr", "bpf_ringbuf_output", "bpf_ringbuf_query",
        "bpf_ringbuf_reserve", "bpf_ringbuf_reserve_dynptr", "bpf_ringbuf_submit", "bpf_ringbuf_submit_dynptr",
        "bpf_user_ringbuf_drain",
    ]
    assert list(helpers(pattern="bpf_ktime_*", probe=False)["id"]) == [5, 125, 160, 208]


@pytest.mark.parametrize(
    ("name", "example"),
    [
        # Called by name, in a libbpf or BCC cell.
        ("bpf_sk_storage_get", "11-sockets-cgroups-local-storage.ipynb § 2. Bytes per socket: cgroup_skb and socket storage"),
        ("bpf_sk_assign", "11-sockets-cgroups-local-storage.ipynb § 4. One listener for a port range: sk_lookup"),
        ("bpf_csum_diff", "06-packets-xdp-tc.ipynb § Many bytes at once: bpf_csum_diff"),
        ("bpf_timer_start", "07-helper-tour.ipynb § 6. Timers"),
        # Called through a BCC method or a libbpf macro.
        ("bpf_map_update_elem", "01-first-probe.ipynb § The program"),
        ("bpf_ringbuf_output", "03-events-and-streams.ipynb § 1. A program that sends events"),
        ("bpf_seq_printf", "11-sockets-cgroups-local-storage.ipynb § 5. Task and cgroup storage, and a BPF iterator"),
        # Shown nowhere.
        ("bpf_override_return", ""),
    ],
)
def test_each_helper_names_the_notebook_that_shows_it(name: str, example: str) -> None:
    df = helpers(probe=False).set_index("name")
    assert df.loc[name, "example"] == example


def write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> None:
    nb = {"cells": [{"cell_type": kind, "source": text, "metadata": {"tags": tags}} for kind, text, tags in cells]}
    path.write_text(json.dumps(nb))


def test_examples_come_from_working_bpf_cells_under_their_heading(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / "01-a.ipynb",
        [
            ("code", "%%bpf early\nint f(void *ctx) { return bpf_get_smp_processor_id(); }", []),
            ("markdown", "Some prose.\n\n## 1. Counting\n\n### With `BPF_HASH`\n", []),
            ("code", "%%bpf counts\nBPF_HASH(c, u32);\nint g(void *ctx) { u32 k = 0; c.increment(k); return 0; }", []),
            ("code", "%%bpf broken\nint h(void *ctx) { return bpf_get_prandom_u32(); }", ["raises-exception"]),
            ("code", "x = 'bpf_ktime_get_ns()'  # Python, not a program", []),
            ("code", "%%bpf said\n/* bpf_jiffies64() */\nint i(void *ctx) { return 0; } // bpf_ktime_get_ns()", []),
        ],
    )
    write_notebook(tmp_path / "02-b.ipynb", [("markdown", "# B", []), ("code", "%%bpf again\nbpf_get_smp_processor_id();", [])])
    (tmp_path / "03-half-saved.ipynb").write_text('{"cells": [')
    assert helper_examples(tmp_path) == {
        "bpf_get_smp_processor_id": "01-a.ipynb § 01-a",  # before any heading: the notebook's name
        "bpf_map_lookup_elem": "01-a.ipynb § With BPF_HASH",
        "bpf_map_update_elem": "01-a.ipynb § With BPF_HASH",
    }


def test_without_notebooks_there_are_no_examples(tmp_path: Path) -> None:
    assert helper_examples(tmp_path / "no-such-folder") == {}
    assert helper_examples(tmp_path) == {}
