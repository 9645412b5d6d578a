// SPDX-License-Identifier: GPL-2.0
/* Test object: histograms whose slots are linear, kept the ways
 * libbpf-tools' runqlen (the value is the slot) and cpufreq (the value
 * divided by a step) keep theirs, beside a log2 one. getpgid(value) from the
 * target process counts value into:
 * - depth, a global struct hist: slot value, larger ones in the last slot;
 * - by_parity, a hash map of struct hist: slot value / STEP, the same clamp;
 * - coarse_hist, an array map (one element per slot): slot value >> 4,
 *   larger ones not counted;
 * - orders, a global struct hist: slot log2(value) by halving, clamped.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 8
#define STEP 200
#define COARSE_SLOTS 16

struct hist {
	__u32 slots[MAX_SLOTS];
};

const volatile __u32 target_tgid = 0;

struct hist depth = {};
struct hist orders = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hist);
} by_parity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COARSE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} coarse_hist SEC(".maps");

/* floor(log2(v)): halve the width searched while a bit is set above it */
static __always_inline __u32 order_of(__u64 v)
{
	__u32 order = 0;

	for (int width = 32; width > 0; width /= 2) {
		if (v >> width) {
			v >>= width;
			order += width;
		}
	}
	return order;
}

static __always_inline void count_by_parity(__u64 value)
{
	static const struct hist empty;
	__u32 parity = value & 1;
	__u64 slot = value / STEP;
	struct hist *h;

	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	h = bpf_map_lookup_elem(&by_parity, &parity);
	if (!h) {
		bpf_map_update_elem(&by_parity, &parity, &empty, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&by_parity, &parity);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->slots[slot], 1);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(count_values, struct pt_regs *regs, long id)
{
	__u64 value, slot, *count;
	__u32 coarse;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);

	slot = value;
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&depth.slots[slot], 1);

	slot = order_of(value);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&orders.slots[slot], 1);

	coarse = value >> 4;
	count = bpf_map_lookup_elem(&coarse_hist, &coarse);
	if (count)
		__sync_fetch_and_add(count, 1);

	count_by_parity(value);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
