/* bpfnb: put before libbpf cells that use ring buffers (clang -include).
 *
 * A full ring buffer drops records without telling anyone. These wrappers
 * count the outputs and reservations that fail, per CPU, in a map of bpfnb's
 * own, which streams read as their kernel-side losses. The counter is looked
 * up before the call, not only on failure: a lookup in one branch defeats the
 * verifier's state pruning in loops.
 */
#ifndef __BPFNB_PRELUDE_H__
#define __BPFNB_PRELUDE_H__

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} _bpfnb_ringbuf_lost SEC(".maps");

static __always_inline long _bpfnb_ringbuf_output(void *rb, void *data, __u64 size, __u64 flags)
{
	__u32 slot = 0;
	__u64 *lost = bpf_map_lookup_elem(&_bpfnb_ringbuf_lost, &slot);
	long err = bpf_ringbuf_output(rb, data, size, flags);
	if (err && lost)
		(*lost)++;
	return err;
}

static __always_inline void *_bpfnb_ringbuf_reserve(void *rb, __u64 size, __u64 flags)
{
	__u32 slot = 0;
	__u64 *lost = bpf_map_lookup_elem(&_bpfnb_ringbuf_lost, &slot);
	void *record = bpf_ringbuf_reserve(rb, size, flags);
	if (!record && lost)
		(*lost)++;
	return record;
}

#define bpf_ringbuf_output(rb, data, size, flags) _bpfnb_ringbuf_output(rb, data, size, flags)
#define bpf_ringbuf_reserve(rb, size, flags) _bpfnb_ringbuf_reserve(rb, size, flags)

#endif
