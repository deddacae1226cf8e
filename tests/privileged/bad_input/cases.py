"""The bad-input corpus: what a user may type, and what bpfnb must do with it.

Expectations are the behaviour issue 11 asks for, not necessarily today's.
To add a case, append a ``Case`` to the list of its group below: an ``id``,
one line saying what it ``feeds``, the ``action`` (a ``%%bpf`` cell, a
``%bpf`` line, or Python using the public API), the ``expect``ed error class
(None: must succeed) and the cell ``line`` the error must name. See
``case.py`` for every field. Line numbers: in a cell, line 1 is the ``%%bpf``
line; in ``bpfnb.Program(src)``, line 1 is the source's first line.

The names of ``sources.py`` (``COUNTER``, ``cell()``, ``call_getppid()``...)
are in every case's namespace.
"""

from __future__ import annotations

from .case import Case, Interrupt
from .sources import (
    COUNTER,
    COUNTER_TYPO,
    cell,
    huge_loop_source,
    many_maps_source,
    many_tracepoints_source,
    slow_compile_source,
)


#: A tracepoint function with room for one bad statement on cell line 5.
def _tp(statement: str, *, decls: str = "BPF_HASH(counts, u32, u64);", name: str = "p", options: str = "") -> str:
    return (
        f"%%bpf {name} {options}".rstrip() + "\n"
        f"{decls}\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    u32 pid = bpf_get_current_pid_tgid() >> 32;\n"
        f"    {statement}\n"
        "    return 0;\n"
        "}\n"
    )


# -- C that clang (or BCC's rewriter) must reject ----------------------------------------

C_ERRORS = [
    Case("c_missing_semicolon", "a declaration without its ';'",
         _tp("u64 x = pid"), "CompileError", line=5, says="expected ';'"),
    Case("c_undeclared_identifier", "a use of an undeclared variable",
         _tp("counts.increment(nosuch);"), "CompileError", line=5, says="undeclared identifier 'nosuch'"),
    Case("c_unknown_type", "a declaration of an unknown type",
         _tp("foo_t x = 0;"), "CompileError", line=5, says="foo_t"),
    Case("c_struct_to_int", "a struct assigned to an integer",
         _tp("struct { int a; } s = {}; u64 x = s;"), "CompileError", line=5, says="incompatible|initializ"),
    Case("c_no_such_member", "a tracepoint field that does not exist (args->prev_pidd)",
         "%%bpf p\nTRACEPOINT_PROBE(sched, sched_switch) {\n    u32 x = args->prev_pidd;\n    return 0;\n}\n",
         "CompileError", line=3, says="prev_pidd"),
    Case("c_error_on_tracepoint_line", "an error on the same line as TRACEPOINT_PROBE(...) {",
         "%%bpf p\nBPF_HASH(counts, u32, u64);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return nosuch; }\n",
         "CompileError", line=3, says="nosuch", source="corpus: numbered 6 lines too far today"),
    Case("c_missing_include", "#include of a header that does not exist",
         "%%bpf p\n#include <linux/no_such_header.h>\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=2, says="no_such_header.h"),
    Case("c_unterminated_comment", "a comment never closed",
         "%%bpf p\nint f(void *ctx) {\n    /* never closed\n    return 0;\n}\n",
         "CompileError", line=3, says="unterminated"),
    Case("c_missing_brace", "a function without its closing brace",
         "%%bpf p\nBPF_HASH(counts, u32, u64);\nint f(void *ctx) {\n    return 0;\n",
         "CompileError", line=4, says="expected '}'|end of file"),
    Case("c_helper_wrong_arity", "bpf_get_current_comm() without its arguments",
         _tp("bpf_get_current_comm();"), "CompileError", line=5, says="too few arguments"),
    Case("c_map_method_typo", "a map method that does not exist (counts.incrementt)",
         _tp("counts.incrementt(pid);"), "CompileError", line=5, says="incrementt"),
    Case("c_map_key_not_pointer", "a lookup given a value where a pointer is needed",
         _tp("u64 *v = counts.lookup(pid); if (v) *v = 1;"), "LoadError", line=5, says="R2"),
    Case("c_duplicate_map", "the same map declared twice",
         "%%bpf p\nBPF_HASH(counts, u32, u64);\nBPF_HASH(counts, u32, u64);\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=3, says="redefinition"),
    Case("c_map_macro_typo", "BPF_HASH(c u32, u64): a missing comma inside a map macro (segfaults BCC)",
         "%%bpf p\nBPF_HASH(c u32, u64);\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=2, source="issue 11: segfault in BCC"),
    Case("c_map_macro_typo_value", "BPF_ARRAY(a, u64 1): a missing comma in another map macro",
         "%%bpf p\nBPF_ARRAY(a, u64 1);\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=2, source="corpus: a sibling of the issue's segfault"),
    Case("c_map_macro_empty", "BPF_HASH() with no arguments",
         "%%bpf p\nBPF_HASH();\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=2, source="corpus: a sibling of the issue's segfault"),
    Case("c_map_unknown_table_type", "BPF_TABLE with a table type BCC does not know",
         '%%bpf p\nBPF_TABLE("nosuch", u32, u64, t, 16);\nint f(void *ctx) { return 0; }\n',
         "CompileError", line=2, says="nosuch"),
    Case("c_fetch_add_u32_result", "the result of __sync_fetch_and_add on a u32 used (aborts LLVM)",
         "%%bpf p\nBPF_ARRAY(a, u32, 1);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    int k = 0; u32 *v = a.lookup(&k);\n"
         "    if (v) { u32 old = __sync_fetch_and_add(v, 1); bpf_trace_printk(\"%d\\n\", old); }\n"
         "    return 0;\n}\n",
         "CompileError", line=5, source="issue 11: LLVM abort"),
    Case("c_stack_over_512", "a 1024-byte array on the BPF stack",
         "%%bpf p\nBPF_PERF_OUTPUT(events);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    char buf[1024] = {};\n"
         "    bpf_get_current_comm(buf, sizeof(buf));\n"
         "    events.perf_submit(args, buf, sizeof(buf));\n"
         "    return 0;\n}\n",
         "CompileError", line=4, says="stack", source="NOTES 6: can exit the process"),
    Case("c_implicit_helper", "a call of a helper that does not exist (implicit declaration)",
         _tp("bpf_no_such_helper(pid);"), "CompileError", line=5, says="bpf_no_such_helper",
         source="issue 11: blamed on 'last insn is not an exit or jmp'"),
    Case("c_helper_typo", "a misspelled helper (bpf_ktime_get_nss)",
         _tp("u64 t = bpf_ktime_get_nss();"), "CompileError", line=5, says="did you mean bpf_ktime_get_ns\\?"),
    Case("c_empty_cell", "a %%bpf cell with no C code at all",
         "%%bpf p\n\n", "ArgumentError", says="no (C )?code|empty|no functions"),
    Case("c_cflags_unknown_flag", "--cflags with a flag clang does not know",
         "%%bpf p --cflags=-fno-such-flag\nint f(void *ctx) { return 0; }\n",
         "CompileError", says="-fno-such-flag"),
    Case("c_cflags_define_error", "--cflags -DX= used where X must be a number",
         "%%bpf p --cflags=-DN=\nBPF_ARRAY(a, u64, N);\nint f(void *ctx) { return 0; }\n",
         "CompileError", line=2),
]


# -- C that crashes BCC or LLVM inside the compiling process today ---------------------------
# LLVM's backend reports these with exit(1) or abort(): the notebook's kernel dies.

C_CRASHES = [
    Case("c_printk_four_args", "bpf_trace_printk with four arguments (the helper takes three)",
         _tp('bpf_trace_printk("%d %d %d %d\\n", pid, 2, 3, 4);'), "CompileError", line=5, says="args",
         source="corpus: LLVM 'too many args', exit(1)"),
    Case("c_float_arithmetic", "floating-point arithmetic",
         _tp("u64 r = (u64)((double)bpf_ktime_get_ns() * 1.5); counts.update(&pid, &r);"), "CompileError",
         line=5, says="__floatundidf|float", source="corpus: LLVM 'built-in function not supported', exit(1)"),
    Case("c_signed_division", "a signed 64-bit division",
         _tp("s64 a = bpf_ktime_get_ns(); s64 b = pid; u64 r = a / b; counts.update(&pid, &r);"), "CompileError",
         line=5, says="signed division", source="corpus: LLVM 'Cannot select: sdiv', abort()"),
    Case("c_variable_length_array", "an array whose length is a variable",
         _tp("char buf[pid & 15]; buf[0] = 1; u64 r = buf[pid & 7]; counts.update(&pid, &r);"), "CompileError",
         says="dynamic stack allocation", source="corpus: LLVM 'Unsupported dynamic stack allocation', abort()"),
    Case("c_int128_multiply", "a multiplication of unsigned __int128",
         _tp("unsigned __int128 a = bpf_ktime_get_ns(); a = a * a; u64 r = (u64)(a >> 64); counts.update(&pid, &r);"),
         "CompileError", line=5, says="__multi3", source="corpus: LLVM 'built-in function not supported', exit(1)"),
    Case("c_builtin_trap", "__builtin_trap()",
         _tp("if (pid == 1) __builtin_trap();"), "CompileError", line=5, says="abort|trap",
         source="corpus: LLVM 'built-in function abort not supported', exit(1)"),
    Case("c_cas_u32_result", "__sync_val_compare_and_swap on a u32, its result used",
         "%%bpf p\nBPF_ARRAY(a, u32, 1);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    int k = 0; u32 *v = a.lookup(&k);\n    if (v) return __sync_val_compare_and_swap(v, 0, 1);\n"
         "    return 0;\n}\n",
         "CompileError", line=5, says="atomic", source="corpus: LLVM 'Unsupported atomic operations', exit(1)"),
    Case("c_fetch_add_u8", "__sync_fetch_and_add on a u8",
         "%%bpf p\nBPF_ARRAY(a, u8, 1);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    int k = 0; u8 *v = a.lookup(&k);\n    if (v) __sync_fetch_and_add(v, 1);\n    return 0;\n}\n",
         "CompileError", line=5, says="atomic", source="corpus: LLVM 'Unsupported atomic operations', exit(1)"),
    Case("c_inline_asm_garbage", "inline assembly that is not BPF assembly",
         '%%bpf p\nint f(void *ctx) {\n    asm volatile("this is not bpf asm");\n    return 0;\n}\n',
         "CompileError", says="invalid register|inline asm", source="corpus: LLVM asm parser error, exit(1)"),
    Case("c_unreachable_body", "a function whose body is __builtin_unreachable()",
         "%%bpf p\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n    __builtin_unreachable();\n}\n",
         "LoadError", says="empty|no instructions|0 instructions",
         source="corpus: shown as BCC's 'Program too large (0 insns), at most 4096 insns'"),
]


# -- C that compiles but the verifier (or the kernel) refuses --------------------------

VERIFIER = [
    Case("v_null_deref_after_lookup", "a map value dereferenced without checking for NULL",
         _tp("u64 *v = counts.lookup(&pid); *v += 1;"), "LoadError", line=5, says="verifier"),
    Case("v_map_value_out_of_bounds", "a map value indexed past its end",
         "%%bpf p\nBPF_ARRAY(a, u64, 4);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    int k = 0; u64 *v = a.lookup(&k);\n    if (v) v[10] = 1;\n    return 0;\n}\n",
         "LoadError", line=5, says="verifier"),
    Case("v_packet_out_of_bounds", "an XDP program reading packet bytes without a bounds check",
         "%%bpf p --xdp lo --no-attach\nint on_packet(struct xdp_md *ctx) {\n"
         "    unsigned char *data = (void *)(long)ctx->data;\n"
         "    return data[100] == 7 ? XDP_DROP : XDP_PASS;\n}\n",
         "LoadError", line=4, says="verifier"),
    Case("v_uninitialized_register", "a register read before it is written (inline asm)",
         '%%bpf p\nRAW_TRACEPOINT_PROBE(sys_enter) {\n    u64 x;\n    asm volatile("%0 = r5" : "=r"(x));\n'
         "    return x;\n}\n",
         "LoadError", line=4, says="R5"),
    Case("v_uninitialized_stack_key", "an uninitialized struct used as a map key",
         "%%bpf p\nstruct key { u32 a; u64 b; };\nBPF_HASH(h, struct key, u64);\n"
         "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
         "    struct key k; k.a = 1;\n    h.increment(k);\n    return 0;\n}\n",
         None, source="corpus: root may read uninitialized stack (allow_uninit_stack); loading is right"),
    Case("v_invalid_helper_for_type", "a tracepoint calling bpf_redirect (a helper for XDP and tc only)",
         "%%bpf p\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n    return bpf_redirect(1, 0);\n}\n",
         "LoadError", line=3, says="bpf_redirect"),
    Case("v_write_tracepoint_ctx", "a write into a tracepoint's read-only context",
         "%%bpf p\nTRACEPOINT_PROBE(sched, sched_switch) {\n    args->prev_pid = 0;\n    return 0;\n}\n",
         "LoadError", line=3),
    Case("v_unbounded_loop", "a loop that never ends",
         _tp("while (pid) { counts.increment(pid); pid |= 1; }"), "LoadError", line=5, says="loop",
         source="issue 11: blamed on 'Program too large (21 insns)'"),
    Case("v_probe_write_user", "bpf_probe_write_user (forbidden by kernel lockdown here)",
         _tp("bpf_probe_write_user((void *)0x1000, &pid, sizeof(pid));"), "LoadError", line=5, says="lockdown",
         source="corpus: the verifier's 'program of this type cannot use helper' hides the lockdown"),
]


# -- resource limits -----------------------------------------------------------------

LIMITS = [
    Case("r_huge_map", "a hash with max_entries 1<<30",
         "%%bpf p\nBPF_HASH(big, u32, u64, 1 << 30);\nint f(void *ctx) { return 0; }\n",
         "LoadError", line=2, says="big", source="issue 11: blamed on 'BCC could not compile the program'"),
    Case("r_zero_entries_map", "an array with max_entries 0",
         "%%bpf p\nBPF_ARRAY(a, u64, 0);\nint f(void *ctx) { return 0; }\n",
         "LoadError", line=2, says="max_entries|entries|\\ba\\b"),
    Case("r_ringbuf_not_power_of_two", "a ring buffer of 3 pages (must be a power of two)",
         "%%bpf p\nBPF_RINGBUF_OUTPUT(events, 3);\nint f(void *ctx) { return 0; }\n",
         "LoadError", line=2, says="power of (two|2)"),
    Case("r_too_many_maps", "one function using 70 maps (the kernel allows 64)",
         lambda: cell("p", many_maps_source(70)), "LoadError", says="64 maps|limit of 64|too many maps",
         source="corpus: shown as BCC's 'Program too large (634 insns), at most 4096 insns'"),
    Case("r_program_too_large", "a loop the verifier walks past a million instructions",
         lambda: cell("p", huge_loop_source()), "LoadError", says="1000001|1000000|too complex",
         timeout=120, source="corpus: shown as BCC's 'Program too large (22514 insns), at most 4096 insns'"),
]


# -- the %%bpf line and the %bpf commands -----------------------------------------------

_FN = "int f(void *ctx) { return 0; }\n"
_UPROBE_FN = "#include <uapi/linux/ptrace.h>\nint on_malloc(struct pt_regs *ctx) { return 0; }\n"
_PERF_FN = "#include <uapi/linux/bpf_perf_event.h>\nint on_sample(struct bpf_perf_event_data *ctx) { return 0; }\n"

OPTIONS = [
    Case("opt_name_print", "%%bpf print: a NAME that shadows a builtin",
         "%%bpf print\n" + _FN, "UsageError", says="print",
         check="assert 'print' not in get_ipython().user_ns, 'print was bound'"),
    Case("opt_name_get_ipython", "%%bpf get_ipython: a NAME that shadows IPython's own function",
         "%%bpf get_ipython\n" + _FN, "UsageError", says="get_ipython",
         check="assert not isinstance(get_ipython().user_ns.get('get_ipython'), bpfnb.Program)"),
    Case("opt_name_keyword", "%%bpf for: a Python keyword as NAME",
         "%%bpf for\n" + _FN, "UsageError", says="for",
         check="assert 'for' not in get_ipython().user_ns, 'a keyword was bound'"),
    Case("opt_name_digit", "%%bpf 1abc: a NAME that is no identifier",
         "%%bpf 1abc\n" + _FN, "UsageError", says="1abc"),
    Case("opt_no_name", "%%bpf with no NAME at all",
         "%%bpf\n" + _FN, "UsageError", says="name"),
    Case("opt_unknown_flag", "%%bpf p --nope",
         "%%bpf p --nope\n" + _FN, "UsageError", says="--nope"),
    Case("opt_unbalanced_quote", "%%bpf p --cflags \"-DX (a quote never closed)",
         '%%bpf p --cflags "-DX\n' + _FN, "UsageError", says="quotation|quote"),
    Case("opt_debug_unknown", "%%bpf p --debug nope",
         "%%bpf p --debug nope\n" + _FN, "UsageError", says="nope"),
    Case("opt_tracepoint_nope", "--tracepoint nope:nope",
         "%%bpf p --tracepoint nope:nope\n" + _FN, "AttachError", says="nope:nope"),
    Case("opt_tracepoint_typo", "--tracepoint sched:sched_swtich (misspelled)",
         "%%bpf p --tracepoint sched:sched_swtich\n" + _FN, "AttachError", says="did you mean sched:sched_switch\\?"),
    Case("opt_tracepoint_no_colon", "--tracepoint without CATEGORY:",
         "%%bpf p --tracepoint sched_switch\n" + _FN, "UsageError", says="CATEGORY:EVENT"),
    Case("opt_probe_function_missing", "--tracepoint ...=nofn naming a function the cell lacks",
         "%%bpf p --tracepoint syscalls:sys_enter_getppid=nofn\n" + _FN, "AttachError", says="nofn"),
    Case("opt_perf_period_zero", "--perf-event software:cpu-clock,period=0",
         "%%bpf p --perf-event software:cpu-clock,period=0\n" + _PERF_FN, "UsageError", says="period",
         source="issue 11: silently accepted"),
    Case("opt_perf_freq_negative", "--perf-event software:cpu-clock,freq=-5",
         "%%bpf p --perf-event software:cpu-clock,freq=-5\n" + _PERF_FN, "UsageError", says="freq"),
    Case("opt_perf_unknown_event", "--perf-event software:nope",
         "%%bpf p --perf-event software:nope\n" + _PERF_FN, "UsageError", says="nope"),
    Case("opt_perf_cpu_missing", "--perf-event ...,cpu=999 (no such CPU)",
         "%%bpf p --perf-event software:cpu-clock,cpu=999\n" + _PERF_FN, "AttachError", says="999"),
    Case("opt_uprobe_pid_missing", "--uprobe c:malloc,pid=999999999 (no such process)",
         "%%bpf p --uprobe c:malloc,pid=999999999\n" + _UPROBE_FN, "AttachError",
         says="999999999|no such process|pid", source="issue 11: blamed on \"no symbol 'malloc' in 'c'\""),
    Case("opt_uprobe_no_binary", "--uprobe /no/such:malloc",
         "%%bpf p --uprobe /no/such:malloc\n" + _UPROBE_FN, "AttachError",
         says="/no/such.*(no such file|not found|does not exist)|no (program or library|binary|file)",
         source="corpus: blamed on \"no symbol 'malloc' in '/no/such'\""),
    Case("opt_uprobe_no_symbol", "--uprobe c:no_such_symbol_xyz",
         "%%bpf p --uprobe c:no_such_symbol_xyz\n" + _UPROBE_FN, "AttachError", says="no_such_symbol_xyz"),
    Case("opt_xdp_no_device", "--xdp nosuchdev0",
         "%%bpf p --xdp nosuchdev0\nint on_packet(struct xdp_md *ctx) { return XDP_PASS; }\n",
         "AttachError", says="nosuchdev0"),
    Case("opt_tracepoint_probe_nope", "TRACEPOINT_PROBE(nope, nope): a tracepoint that does not exist, in C",
         "%%bpf p\nTRACEPOINT_PROBE(nope, nope) {\n    return 0;\n}\n",
         "AttachError", line=2, says="nope:nope"),
    Case("opt_tracepoint_probe_typo", "TRACEPOINT_PROBE(sched, sched_swtich): a misspelled tracepoint, in C",
         "%%bpf p\nTRACEPOINT_PROBE(sched, sched_swtich) {\n    return 0;\n}\n",
         "AttachError", line=2, says="did you mean sched:sched_switch\\?"),
    Case("opt_attaches_nothing", "a cell whose function attaches to nothing must say so",
         "%%bpf p\nint f(void *ctx) { return 0; }\n", None,
         shows="attaches to nothing|nothing to attach|no hook|--tracepoint|TRACEPOINT_PROBE", source="issue 11: loads as 'loaded, not attached' with no word on why"),
    Case("line_helpers_type_nope", "%bpf helpers --type nope",
         "%bpf helpers --type nope", "UsageError", says="nope", source="issue 11: silently accepted"),
    Case("line_probes_no_binary", "%bpf probes --binary /no/such",
         "%bpf probes --binary /no/such", "ArgumentError", says="/no/such", source="issue 11: internal traceback"),
    Case("line_detach_nosuch", "%bpf detach nosuch",
         "%bpf detach nosuch", "UsageError", says="nosuch"),
    Case("line_unknown_command", "%bpf nope",
         "%bpf nope", "UsageError", says="nope"),
    Case("line_stats_bad", "%bpf stats maybe",
         "%bpf stats maybe", "UsageError", says="maybe"),
]


# -- the Python API used wrongly -----------------------------------------------------------

_PROG = "prog = bpfnb.Program(COUNTER)\ncall_getppid(10)\n"
_BUFFERS = "prog = bpfnb.Program(BUFFERS)\n"

API = [
    Case("api_program_int", "bpfnb.Program(123)",
         "bpfnb.Program(123)", "ArgumentError", says="str"),
    Case("api_program_none", "bpfnb.Program(None)",
         "bpfnb.Program(None)", "ArgumentError", says="str"),
    Case("api_probe_tuple", "probes=[('tracepoint', 'x')]: a tuple instead of a Probe",
         "bpfnb.Program(COUNTER, probes=[('tracepoint', 'syscalls:sys_enter_getppid')])", "ArgumentError",
         says="Probe"),
    Case("api_probe_unknown_kind", "bpfnb.Probe('nope', 'x') passed to a Program",
         "bpfnb.Program('int f(void *ctx) { return 0; }', probes=[bpfnb.Probe('nope', 'x')])", "ArgumentError",
         says="nope"),
    Case("api_cflags_string", "cflags='-DX=1': a string, not a list",
         "bpfnb.Program(COUNTER, cflags='-DX=1')", "ArgumentError", says="cflags",
         source="issue 11: blamed on clang's 'expected exactly one compiler job'"),
    Case("api_debug_string", "debug='nope': not BCC's flags",
         "bpfnb.Program(COUNTER, debug='nope')", "ArgumentError", says="debug"),
    Case("api_source_line_error", "bpfnb.Program(src) with an error on the source's line 3",
         "bpfnb.Program(COUNTER_TYPO)", "CompileError", line=4, says="pidd"),
    Case("api_no_such_map", "prog['nosuch']",
         "prog['nosuch']", "NoSuchMapError", says="nosuch", setup=_PROG),
    Case("api_map_typo", "prog['cuonts'] (misspelled)",
         "prog['cuonts']", "NoSuchMapError", says="did you mean 'counts'\\?", setup=_PROG),
    Case("api_history_after_detach", "map.history() on a view kept from before detach",
         "view.history(interval=0.5)", "BpfnbError", says="detached",
         setup=_PROG + "view = prog['counts']\nprog.detach()\n",
         source="issue 11: RuntimeError: cannot join thread before it is started"),
    Case("api_map_after_detach", "prog['counts'] of a detached program",
         "prog['counts'].df()", "BpfnbError", says="detached", setup=_PROG + "prog.detach()\n"),
    Case("api_df_after_detach", ".df() of a view kept from before detach",
         "view.df()", "BpfnbError", says="detached", setup=_PROG + "view = prog['counts']\nprog.detach()\n"),
    Case("api_wrong_key_type", "prog['counts']['abc']: a string key for a u32 map",
         "prog['counts']['abc']", "ArgumentError", says="key", setup=_PROG),
    Case("api_df_bad_buckets", "df(buckets='nope')",
         "prog['counts'].df(buckets='nope')", "ArgumentError", says="nope", setup=_PROG),
    Case("api_stream_bad_pages", "stream(..., pages=3) on a perf buffer (pages must be a power of two)",
         "prog.stream('perf_events', pages=3)", "ArgumentError", says="power of two", setup=_BUFFERS,
         source="issue 11: an fd leaks and the perf map outlives detach"),
    Case("api_stream_not_buffer", "prog.stream() of a hash map",
         "prog.stream('counts')", "ArgumentError", says="ring or perf buffer", setup=_BUFFERS),
    Case("api_stream_no_such_map", "prog.stream('nosuch')",
         "prog.stream('nosuch')", "NoSuchMapError", says="nosuch", setup=_BUFFERS),
    Case("api_stream_detached", "prog.stream() of a detached program",
         "prog.stream('ring_events')", "BpfnbError", says="detached", setup=_BUFFERS + "prog.detach()\n"),
    Case("api_stream_bad_time_field", "stream(time_field='nope')",
         "prog.stream('ring_events', time_field='nope')", "DecodeError", says="nope", setup=_BUFFERS),
    Case("api_live_bad_kind", "map.live(kind='nope')",
         "prog['counts'].live(kind='nope')", "ArgumentError", says="nope", setup=_PROG),
    Case("api_stream_live_heatmap", "stream.live(kind='heatmap'): a kind a stream cannot draw",
         "s.live(kind='heatmap')", "ArgumentError", says="heatmap",
         setup=_BUFFERS + "s = prog.stream('ring_events')\n"),
    Case("api_percentiles_no_buckets", "bpfnb.percentiles() of a frame without lo/hi/count",
         "bpfnb.percentiles(pd.DataFrame({'key': [1, 2], 'value': [3, 4]}))", "ArgumentError",
         says="lo|hi|count|bucket", source="issue 11: KeyError: 'lo'"),
    Case("api_percentiles_not_frame", "bpfnb.percentiles([1, 2, 3])",
         "bpfnb.percentiles([1, 2, 3])", "ArgumentError", says="DataFrame|frame"),
    Case("api_helpers_type_nope", "bpfnb.helpers('nope')",
         "bpfnb.helpers('nope')", "ArgumentError", says="nope"),
    Case("api_probes_no_binary", "bpfnb.probes(binary='/no/such')",
         "bpfnb.probes(binary='/no/such')", "ArgumentError", says="/no/such"),
    Case("api_queue_busy_read", "df() of a queue pushed on every system call while it is read",
         "frame = prog['q'].df()", None, setup="prog = bpfnb.Program(BUSY_QUEUE)\n",
         check="assert seconds < 5, f'took {seconds:.1f} s'\nassert len(frame) <= 1024\nassert frame.attrs",
         timeout=15, source="issue 11: never returns, memory grows"),
]


# -- a failed re-run keeps the old program ---------------------------------------------------

_OLD_KEPT = """\
old = get_ipython().user_ns['p']
assert not old.closed and old.state == 'attached', old.state
before = old['counts'].df()['value'].sum()
call_getppid(50)
assert old['counts'].df()['value'].sum() >= before + 50, 'the old program stopped counting'
rows = get_ipython().run_line_magic('bpf', 'ls').rows
assert [(r.name, r.state) for r in rows] == [('p', 'attached')], rows
"""

RERUN = [
    Case("rerun_compile_error_keeps_old", "a working cell, then the same NAME with a typo",
         cell("p", COUNTER_TYPO), "CompileError", line=5, says="kept|still (running|attached)|old",
         setup=cell("p", COUNTER), check=_OLD_KEPT, source="issue 11: the old program is detached first"),
    Case("rerun_verifier_error_keeps_old", "a working cell, then the same NAME failing the verifier",
         _tp("u64 *v = counts.lookup(&pid); *v += 1;"), "LoadError", line=5,
         says="kept|still (running|attached)|old", setup=cell("p", COUNTER), check=_OLD_KEPT),
    Case("rerun_attach_error_keeps_old", "a working cell, then the same NAME with --tracepoint nope:nope",
         "%%bpf p --tracepoint nope:nope\n" + _FN, "AttachError", says="kept|still (running|attached)|old",
         setup=cell("p", COUNTER), check=_OLD_KEPT),
    Case("rerun_bad_option_keeps_old", "a working cell, then the same NAME with an unknown flag",
         "%%bpf p --nope\n" + COUNTER, "UsageError", setup=cell("p", COUNTER), check=_OLD_KEPT),
]


# -- Ctrl-C at every moment of a cell -------------------------------------------------------

INTERRUPTS = [
    Case("int_compile_cell", "SIGINT 0.4 s into compiling a slow cell",
         lambda: cell("p", slow_compile_source()), "KeyboardInterrupt",
         interrupt=Interrupt(after=0.4, before="map"),
         source="issue 11: maps leak, survive %bpf detach --all; traceback from inside BCC"),
    Case("int_compile_api", "SIGINT 0.4 s into bpfnb.Program(slow source)",
         "prog = bpfnb.Program(slow_compile_source())", "KeyboardInterrupt",
         interrupt=Interrupt(after=0.4, before="map")),
    Case("int_compile_rerun_keeps_old", "SIGINT while re-running NAME: the old program must stay",
         lambda: cell("p", slow_compile_source()), "KeyboardInterrupt",
         interrupt=Interrupt(after=0.4, before="map"), setup=cell("p", COUNTER), check=_OLD_KEPT),
    Case("int_load_cell", "SIGINT once the first of 40 verifier-heavy functions is loaded",
         lambda: cell("p", many_tracepoints_source(40, loop=3000)), "KeyboardInterrupt",
         interrupt=Interrupt(on="prog", before="perf_event")),
    Case("int_attach_cell", "SIGINT once the first of 150 tracepoints is attached",
         lambda: cell("p", many_tracepoints_source(150)), "KeyboardInterrupt",
         interrupt=Interrupt(on="perf_event"), timeout=60),
    Case("int_stream_wait", "SIGINT during stream.wait(seconds=10): the wait ends, the stream goes on",
         "s.wait(seconds=10)", None, setup=_BUFFERS + "s = prog.stream('ring_events')\n",
         interrupt=Interrupt(after=0.5),
         check="assert seconds < 3, seconds\nassert s.running\ncall_getppid(10)\ns.wait(10, seconds=5)\nassert s.received >= 10"),
    Case("int_map_read", "SIGINT while reading a hash of ~1M entries",
         "frame = prog['big'].df()", "KeyboardInterrupt",
         setup="prog = bpfnb.Program(BIG_HASH)\ncall_getppid(6000)\nn = len(prog['big'])\n",
         interrupt=Interrupt(after=0.05),
         check="assert len(prog['big'].df()) == n, 'entries changed after the interrupted read'"),
    Case("int_queue_read", "SIGINT while reading a full queue of 262144 values: none may be lost",
         "frame = prog['q'].df()", "KeyboardInterrupt",
         setup="prog = bpfnb.Program(FULL_QUEUE)\ncall_getppid(1100)\nn = len(prog['q'])\n",
         interrupt=Interrupt(after=0.05),
         check="assert n == 262144, n\nassert len(prog['q']) == n, 'values were lost'",
         source="corpus: values popped before the interrupt are never pushed back"),
]


# Last, apart from api_queue_busy_read: each has every system call of the machine push a value while it reads.
LAST = [
    Case("api_stack_busy_read", "len() of a stack pushed on every system call while it is read",
         "n = len(prog['q'])", None, setup="prog = bpfnb.Program(BUSY_STACK)\n",
         check="assert seconds < 5, f'took {seconds:.1f} s'\nassert n <= 1024",
         timeout=15, source="issue 11: never returns, memory grows"),
]


CASES: list[Case] = C_ERRORS + C_CRASHES + VERIFIER + LIMITS + OPTIONS + API + RERUN + INTERRUPTS + LAST
CASES_BY_ID = {case.id: case for case in CASES}
assert len(CASES_BY_ID) == len(CASES), "duplicate case ids"
