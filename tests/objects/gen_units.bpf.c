// SPDX-License-Identifier: GPL-2.0
/* Test object: histograms whose unit only their programs say, kept the way
 * libbpf-tools keep theirs (a struct hist with slots and the comm, a start
 * time in a hash map, a targ_ms setting). Each getpgid(value) from the
 * target process counts, in one program:
 * - into latency: the log2 of the time since the process's previous
 *   getpgid(), in usecs, or in msecs with targ_ms (the difference of two
 *   bpf_ktime_get_ns() readings, the earlier one kept in starts);
 * - into sizes: the log2 of value, a size: no time, although a duration is
 *   at hand in the same program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 26
#define COMM_LEN 16

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[COMM_LEN];
};

const volatile bool targ_ms = false;
const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct hist);
} latency SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct hist);
} sizes SEC(".maps");

/* the highest bit set in v: narrow the search by halves, as a sequence of
 * tests that each shift v down when its upper half holds a bit */
static __always_inline __u32 top_bit32(__u32 v)
{
	__u32 bit = 0, by;

	by = v > 0xffff ? 16 : 0;
	v >>= by;
	bit += by;
	by = v > 0xff ? 8 : 0;
	v >>= by;
	bit += by;
	by = v > 0xf ? 4 : 0;
	v >>= by;
	bit += by;
	by = v > 0x3 ? 2 : 0;
	v >>= by;
	bit += by;
	return bit + (v >> 1);
}

static __always_inline __u32 top_bit(__u64 v)
{
	__u32 upper = v >> 32;

	return upper ? 32 + top_bit32(upper) : top_bit32(v);
}

static __always_inline struct hist *hist_of(void *map, __u32 tgid)
{
	static const struct hist empty;
	struct hist *h;

	h = bpf_map_lookup_elem(map, &tgid);
	if (h)
		return h;
	bpf_map_update_elem(map, &tgid, &empty, BPF_NOEXIST);
	h = bpf_map_lookup_elem(map, &tgid);
	if (h)
		bpf_get_current_comm(&h->comm, sizeof(h->comm));
	return h;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_getpgid, struct pt_regs *regs, long id)
{
	__u64 now, *then, delta, size;
	__u32 tgid, slot;
	struct hist *h;

	tgid = bpf_get_current_pid_tgid() >> 32;
	if (id != NR_getpgid || tgid != target_tgid)
		return 0;
	size = PT_REGS_PARM1_CORE_SYSCALL(regs);
	now = bpf_ktime_get_ns();
	then = bpf_map_lookup_elem(&starts, &tgid);
	if (then && now > *then) {
		delta = now - *then;
		if (targ_ms)
			delta /= 1000000U;
		else
			delta /= 1000U;
		slot = top_bit(delta);
		if (slot >= MAX_SLOTS)
			slot = MAX_SLOTS - 1;
		h = hist_of(&latency, tgid);
		if (h)
			__sync_fetch_and_add(&h->slots[slot], 1);
	}
	bpf_map_update_elem(&starts, &tgid, &now, BPF_ANY);

	slot = top_bit(size);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	h = hist_of(&sizes, tgid);
	if (h)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
