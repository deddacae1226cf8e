"""C text bpfnb puts before a BCC cell: mmapable arrays, and ring-buffer loss counters.

Both work by redefining BCC macros and helpers before the user's lines, which
keep their own line numbers (see :mod:`bpfnb.engines.diagnostics`).
"""

from __future__ import annotations

__all__ = ["LOST_MAP", "prelude"]

#: Per-CPU array (one u64 slot) counting failed ring-buffer outputs and reservations.
LOST_MAP = "_bpfnb_ringbuf_lost"

# For programs that use ring buffers, which have no lost-event records: BCC
# rewrites ``events.ringbuf_output(...)`` into a call of the helper
# ``bpf_ringbuf_output`` and compiles the rewritten text a second time; these
# macros turn that call into a counting wrapper (the parenthesized names inside
# the wrappers escape the macros). The counter is looked up before the call,
# not only on failure: a lookup in one branch defeats the verifier's state
# pruning, and a loop of 1000 outputs would then cost it millions of steps
# instead of tens of thousands.
_RINGBUF_LOSSES = f"""\
BPF_PERCPU_ARRAY({LOST_MAP}, u64, 1);
static __always_inline long _bpfnb_ringbuf_output(void *rb, void *data, u64 size, u64 flags) {{
    u32 slot = 0; u64 *lost = {LOST_MAP}.lookup(&slot);
    long err = (bpf_ringbuf_output)(rb, data, size, flags); if (err && lost) (*lost)++; return err;
}}
static __always_inline void *_bpfnb_ringbuf_reserve(void *rb, u64 size, u64 flags) {{
    u32 slot = 0; u64 *lost = {LOST_MAP}.lookup(&slot);
    void *record = (bpf_ringbuf_reserve)(rb, size, flags); if (!record && lost) (*lost)++; return record;
}}
#define bpf_ringbuf_output(rb, data, size, flags) _bpfnb_ringbuf_output(rb, data, size, flags)
#define bpf_ringbuf_reserve(rb, size, flags) _bpfnb_ringbuf_reserve(rb, size, flags)
"""

# BCC's own array and histogram macros, redefined to add BPF_F_MMAPABLE (which
# the kernel refuses for values holding a spin lock or a timer): such a map is
# read through a shared mapping, about 25x faster than a batch lookup. BCC
# makes a histogram an array only when its key is an int (else a hash, which
# cannot be mapped), hence the flag's test of the key type.
_MMAPABLE_ARRAYS = """\
#undef BPF_ARRAY1
#undef BPF_ARRAY2
#undef BPF_ARRAY3
#undef BPF_HIST1
#undef BPF_HIST2
#undef BPF_HIST3
#define BPF_ARRAY1(_name) BPF_ARRAY3(_name, u64, 10000)
#define BPF_ARRAY2(_name, _leaf_type) BPF_ARRAY3(_name, _leaf_type, 10000)
#define BPF_ARRAY3(_name, _leaf_type, _size) BPF_F_TABLE("array", int, _leaf_type, _name, _size, BPF_F_MMAPABLE)
#define BPF_HIST1(_name) BPF_HIST3(_name, int, 64)
#define BPF_HIST2(_name, _key_type) BPF_HIST3(_name, _key_type, 64)
#define BPF_HIST3(_name, _key_type, _size) BPF_F_TABLE("histogram", _key_type, u64, _name, _size, \\
    __builtin_types_compatible_p(_key_type, int) ? BPF_F_MMAPABLE : 0)
"""


def prelude(source: str) -> str:
    """The C text to put before ``source``."""
    text = "" if "bpf_spin_lock" in source or "bpf_timer" in source else _MMAPABLE_ARRAYS
    return text + _RINGBUF_LOSSES if "ringbuf" in source else text
