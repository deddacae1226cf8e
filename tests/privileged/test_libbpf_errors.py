"""Errors of libbpf cells through ``bpfnb.Program(src, first_line=2)``: each says what is wrong at the cell's lines."""

from __future__ import annotations

import errno
import threading

import pytest

from bpfnb import AttachError, BpfnbError, CompileError, LoadError, Probe, Program

from ..libbpf_cells import HEADER, LICENSE, cell_line


def load(body: str, name: str = "errs", **options: object) -> Program:
    """The cell ``%%bpf name`` + HEADER + body, as the magic loads it."""
    return Program(HEADER + body, name=name, first_line=2, **options)  # type: ignore[arg-type]


def test_syntax_error_at_its_cell_line(no_leaks: None) -> None:
    body = 'SEC("xdp")\nint f(struct xdp_md *ctx) { return XDP_PASS }\n' + LICENSE
    with pytest.raises(CompileError) as caught:
        load(body)
    line = cell_line(body, "int f(struct xdp_md *ctx) { return XDP_PASS }")
    assert caught.value.line == line
    assert caught.value.message == f"the C code does not compile: expected ';' after return statement (line {line})"
    assert caught.value.details.startswith(f"line {line}:44: error: expected ';' after return statement")


VERIFIER_NULL = """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, u64); } counts SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int null_deref(void *ctx)
{
    u32 key = 0;
    u64 *value = bpf_map_lookup_elem(&counts, &key);
    *value += 1;
    return 0;
}
""" + LICENSE


def test_verifier_rejection_points_at_the_cell_line(no_leaks: None) -> None:
    with pytest.raises(LoadError) as caught:
        load(VERIFIER_NULL)
    error = caught.value
    line = cell_line(VERIFIER_NULL, "    *value += 1;")
    assert error.line == line
    assert error.message == (
        f"the verifier rejected program 'null_deref' at line {line}: R0 invalid mem access 'map_value_or_null'"
    )
    assert (error.errno, error.function) == (errno.EACCES, "null_deref")
    assert "against NULL" in error.hint
    assert f"line {line}: *value += 1;" in error.details
    assert f"@ __bpfnb_source__:{line}" in error.log


def test_unbounded_loop_names_the_verifier_complaint_not_its_state_dump(no_leaks: None) -> None:
    body = """
SEC("tracepoint/syscalls/sys_enter_getppid")
int spin(void *ctx)
{
    volatile int i = 0;
    while (1)
        i++;
    return 0;
}
""" + LICENSE
    with pytest.raises(LoadError) as caught:
        load(body)
    assert caught.value.message.startswith(f"the verifier rejected program 'spin' at line {cell_line(body, '        i++;')}: ")
    assert "infinite loop detected" in caught.value.message
    assert "bpf_loop()" in caught.value.hint


CORE_MISSING_FIELD = """
struct task_struct___x { int nonexistent; } __attribute__((preserve_access_index));
SEC("tracepoint/syscalls/sys_enter_getppid")
int core_field(void *ctx)
{
    struct task_struct___x *t = (void *)bpf_get_current_task();
    int v = BPF_CORE_READ(t, nonexistent);
    bpf_printk("%d", v);
    return 0;
}
""" + LICENSE


def test_core_relocation_failure_names_the_struct_and_field(no_leaks: None) -> None:
    with pytest.raises(LoadError) as caught:
        load(CORE_MISSING_FIELD)
    error = caught.value
    assert error.message.startswith("CO-RE relocation failed in program 'core_field' (near line ")
    assert error.message.endswith(": this kernel's struct task_struct has no field nonexistent")
    # The relocated instruction sits between the pointer's line and the read's.
    first = cell_line(CORE_MISSING_FIELD, "    struct task_struct___x *t = (void *)bpf_get_current_task();")
    assert error.line in (first, first + 1)
    assert (error.errno, error.function) == (errno.EINVAL, "core_field")
    assert "failed to resolve CO-RE relocation <byte_off> struct task_struct___x.nonexistent" in error.details
    assert "bpf_core_field_exists" in error.hint


def test_core_relocation_of_a_struct_the_kernel_lacks(no_leaks: None) -> None:
    with pytest.raises(LoadError) as caught:
        load(CORE_MISSING_FIELD.replace("task_struct___x", "bpfnb_no_such_struct"))
    assert caught.value.message.endswith(": this kernel has no struct bpfnb_no_such_struct")


def test_unknown_section_lists_the_valid_ones(no_leaks: None) -> None:
    with pytest.raises(AttachError) as caught:
        load('SEC("nope/x")\nint odd_section(void *ctx) { return 0; }\n' + LICENSE)
    error = caught.value
    assert error.message.startswith("SEC(\"nope/x\") of program 'odd_section' is not a section libbpf knows")
    for known in ("tracepoint[/...]", "tp_btf[/...]", "raw_tp[/...]", "xdp", "uprobe[/...]", "perf_event"):
        assert known in error.details


@pytest.mark.parametrize(
    ("program", "message", "hint"),
    [
        (
            'SEC("fentry/do_nanosleep")\nint BPF_PROG(refused) { return 0; }\n',
            "the kernel refused to load fentry program 'refused' (EPERM): this kernel does not "
            "allow BPF trampoline programs (fentry/fexit/fmod_ret), even for root",
            "tp_btf/",
        ),
        # LSM programs run from trampolines too: refused here the same way, and said so.
        (
            'SEC("lsm/socket_connect")\nint BPF_PROG(refused, struct socket *sock) { return 0; }\n',
            "the kernel refused to load LSM program 'refused' (EPERM): LSM programs run from a BPF "
            "trampoline on their hook, and this kernel does not allow BPF trampoline programs, even for root",
            "lsm=",
        ),
    ],
    ids=["fentry", "lsm"],
)
def test_trampoline_programs_are_refused_with_eperm_explained(
    program: str, message: str, hint: str, no_leaks: None
) -> None:
    # This kernel refuses BPF trampolines even to root (NOTES.md): that refusal,
    # explained, is the behaviour under test.
    with pytest.raises(LoadError) as caught:
        load(program + LICENSE)
    error = caught.value
    assert (error.errno, error.function) == (errno.EPERM, "refused")
    assert error.message == message
    assert hint in error.hint
    assert "ulimit" not in error.details  # libbpf's stale advice is dropped


def test_kprobe_on_a_kernel_without_kprobes_says_so(no_leaks: None) -> None:
    with pytest.raises(AttachError) as caught:
        load('SEC("kprobe/do_nanosleep")\nint BPF_KPROBE(on_sleep) { return 0; }\n' + LICENSE)
    assert caught.value.message == 'SEC("kprobe/do_nanosleep"): this kernel has no kprobes (it was built without CONFIG_KPROBES)'


def test_missing_tracepoint_is_an_attach_error(no_leaks: None) -> None:
    with pytest.raises(AttachError) as caught:
        load('SEC("tracepoint/nope/nope")\nint on_nope(void *ctx) { return 0; }\n' + LICENSE)
    error = caught.value
    assert error.message == 'SEC("tracepoint/nope/nope"): the tracepoint nope/nope does not exist on this kernel'
    assert "failed to determine tracepoint 'nope/nope' perf event ID: No such file or directory" in error.details


def test_missing_raw_and_btf_tracepoints_are_attach_errors(no_leaks: None) -> None:
    with pytest.raises(AttachError) as caught:
        load('SEC("raw_tp/nope_nope")\nint on_raw(void *ctx) { return 0; }\n' + LICENSE)
    assert caught.value.message == 'SEC("raw_tp/nope_nope"): the raw tracepoint nope_nope does not exist on this kernel'
    with pytest.raises(AttachError) as caught:
        load('SEC("tp_btf/nope_nope")\nint on_btf(void *ctx) { return 0; }\n' + LICENSE)
    assert caught.value.message == (
        "SEC(\"tp_btf/nope_nope\") of program 'on_btf': the kernel has no function or BTF tracepoint named 'nope_nope'"
    )


def test_explicit_probe_to_a_missing_tracepoint_or_program(no_leaks: None) -> None:
    body = 'SEC("tracepoint")\nint on_any(void *ctx) { return 0; }\n' + LICENSE
    with pytest.raises(AttachError, match="there is no tracepoint nope:nope on this kernel"):
        load(body, probes=[Probe("tracepoint", "nope:nope", "on_any")])
    with pytest.raises(AttachError, match="the cell has no program 'on_other'") as caught:
        load(body, probes=[Probe("tracepoint", "syscalls:sys_enter_getppid", "on_other")])
    assert "on_any" in caught.value.hint


def test_map_the_kernel_refuses_is_named(no_leaks: None) -> None:
    body = """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 0);
         __type(key, u32); __type(value, u32); } empty SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int use_empty(void *ctx) { u32 k = 0; bpf_map_lookup_elem(&empty, &k); return 0; }
""" + LICENSE
    with pytest.raises(LoadError) as caught:
        load(body)
    assert caught.value.message == "the kernel refused to create map 'empty': Invalid argument(-22)"


def test_missing_license_says_how_to_declare_one(no_leaks: None) -> None:
    body = """
SEC("tracepoint/syscalls/sys_enter_getppid")
int no_license(void *ctx) { char buf[16]; bpf_probe_read_kernel_str(buf, sizeof(buf), ctx); return 0; }
"""
    with pytest.raises(LoadError) as caught:
        load(body)
    assert "GPL-restricted" in caught.value.message
    assert 'SEC("license")' in caught.value.hint


def test_concurrent_loads_keep_their_own_messages(no_leaks: None) -> None:
    errors: dict[str, BpfnbError] = {}

    def attempt(tag: str) -> None:
        try:
            load(VERIFIER_NULL.replace("null_deref", f"null_{tag}"), name=tag)
        except BpfnbError as error:
            errors[tag] = error

    threads = [threading.Thread(target=attempt, args=(tag,)) for tag in ("t1", "t2", "t3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(errors) == ["t1", "t2", "t3"]
    for tag, error in errors.items():
        assert isinstance(error, LoadError)
        assert error.function == f"null_{tag}" and f"null_{tag}" in error.message


def test_wrong_program_type_for_a_test_run(no_leaks: None) -> None:
    body = 'SEC("tracepoint/syscalls/sys_enter_getppid")\nint on_tp(void *ctx) { return 0; }\n' + LICENSE
    with load(body) as prog, pytest.raises(ValueError, match=r"on_tp is a tracepoint program") as caught:
        prog.test_run("on_tp", bytes(64), prog_type="xdp")
    assert 'SEC("tracepoint/syscalls/sys_enter_getppid")' in caught.value.args[0]
