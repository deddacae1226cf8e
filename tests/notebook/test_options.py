"""Parsing the %%bpf and %bpf lines, without IPython or a kernel."""

from __future__ import annotations

import pytest

from bpfnb import Probe
from bpfnb.notebook.options import CellOptions, OptionsError, cell_help, parse_cell_options, parse_command


def test_a_bare_name():
    assert parse_cell_options("syscalls") == CellOptions(name="syscalls")


def test_every_option():
    options = parse_cell_options(
        "fw --cflags '-DPORT=53 -Wall' --debug bpf --no-attach --xdp veth0=drop,mode=skb "
        "--uprobe c:malloc=on_malloc,pid=42 --perf-event software:cpu-clock=sample,freq=49 "
        "--tracepoint sched:sched_switch --raw-tracepoint sys_enter=enter --socket-filter lo=filter "
        "--kprobe do_nanosleep=kp --kretprobe do_nanosleep=krp --uretprobe /bin/bash:readline=rl"
    )
    assert options.name == "fw"
    assert options.cflags == ("-DPORT=53", "-Wall")
    assert options.debug == 2
    assert options.attach is False
    kinds = {p.kind: p for p in options.probes}
    assert kinds["xdp"] == Probe("xdp", "veth0", "drop", (("mode", "skb"),))
    assert kinds["uprobe"] == Probe("uprobe", "c:malloc", "on_malloc", (("pid", "42"),))
    assert kinds["perf_event"].option("freq") == "49"
    assert kinds["tracepoint"] == Probe("tracepoint", "sched:sched_switch", None)
    assert kinds["uretprobe"].target == "/bin/bash:readline"
    assert len(options.probes) == 9


def test_engine_and_trusted_headers():
    options = parse_cell_options("p --engine libbpf --trust-headers")
    assert (options.engine, options.trust_headers) == ("libbpf", True)
    assert (parse_cell_options("p").engine, parse_cell_options("p").trust_headers) == (None, False)


@pytest.mark.parametrize("line", ["p --cflags -DX=1", "p --cflags=-DX=1", 'p --cflags "-DX=1"'])
def test_cflags_may_start_with_a_dash(line):
    assert parse_cell_options(line).cflags == ("-DX=1",)


def test_repeatable_probes_keep_their_order():
    options = parse_cell_options("p --tracepoint a:b=f --tracepoint c:d=g")
    assert [p.target for p in options.probes] == ["a:b", "c:d"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "the following arguments are required: name"),
        ("2fast", "cannot name a notebook variable"),
        ("p --xdp lo,mode=turbo", "XDP mode 'turbo'"),
        ("p --uprobe malloc", "write BINARY:SYMBOL"),
        ("p --tracepoint sched_switch", "write CATEGORY:EVENT"),
        ("p --perf-event software:cpu-clock,freq=9,period=9", "freq= or period=, not both"),
        ("p --perf-event software:warp-speed", "software events are cpu-clock"),
        ("p --uprobe c:malloc,cpu=1", "'cpu=1' is not an option here (pid=...)"),
        ("p --uprobe c:malloc,pid=me", "pid='me' must be a whole number"),
        ("p --debug loud", "unknown debug flag 'loud'"),
        ("p --cflags '-DX", "cannot split"),
        ("p --nope", "unrecognized arguments: --nope"),
        ("class", "cannot name a notebook variable"),
        ("print", "would hide Python's or IPython's own print"),
        ("get_ipython", "would hide Python's or IPython's own get_ipython"),
        ("_", "would hide"),
        ("_i3", "would hide"),
        ("p --engine clang", "invalid choice: 'clang'"),
    ],
)
def test_bad_lines_say_what_is_wrong(line, message):
    with pytest.raises(OptionsError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_cell_options(line)


def test_help_mentions_bccs_naming_convention():
    text = cell_help()
    assert "tracepoint__CAT__EVENT" in text and "--socket-filter" in text


def test_commands():
    assert parse_command("ls").command == "ls"
    assert parse_command("detach --all").all
    assert parse_command("detach syscalls").name == "syscalls"
    assert parse_command("stats on").switch == "on"
    assert parse_command("helpers ringbuf --type xdp").prog_type == "xdp"
    assert parse_command("probes sched:*").pattern == "sched:*"
    assert parse_command("doctor --fix").fix
    record = parse_command("record incident-42 --max-size 1.5G --every 0.5")
    assert (record.name, record.max_size, record.every) == ("incident-42", 3 * 2**29, 0.5)
    assert parse_command("record stop").name == "stop" and parse_command("record").name is None
    assert parse_command("record x --max-size 500M").max_size == 500 * 2**20
    assert parse_command("record x --max-size 4096").max_size == 4096
    replay = parse_command("replay captures/01.zip --fallback")
    assert (replay.path, replay.fallback) == ("captures/01.zip", True)


@pytest.mark.parametrize(
    "line", ["", "detach", "detach a --all", "stats maybe", "frobnicate", "record x --max-size lots", "replay"]
)
def test_bad_commands(line):
    with pytest.raises(OptionsError):
        parse_command(line)


def test_on_hosts_and_strict():
    options = parse_cell_options("lat --on web1,db1 --strict")
    assert (options.on, options.strict) == ("web1,db1", True)
    assert parse_cell_options("lat").on is None
    with pytest.raises(OptionsError, match="--strict goes with --on"):
        parse_cell_options("lat --strict")


def test_cluster_commands():
    args = parse_command("cluster start --hosts a,b -n 2 --user alice")
    assert (args.action, args.hosts, args.engines, args.user) == ("start", "a,b", 2, "alice")
    assert parse_command("cluster connect --url-file /x/c.json").url_file == "/x/c.json"
    with pytest.raises(OptionsError, match="not both"):
        parse_command("cluster connect --profile p --url-file f")
    with pytest.raises(OptionsError, match="invalid choice"):
        parse_command("cluster restart")
