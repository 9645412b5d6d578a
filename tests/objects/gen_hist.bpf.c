// SPDX-License-Identifier: GPL-2.0
/* Test object: log2 histograms. getpgid(value) from the target process adds
 * value to hist_us (an array map, one element per log2 slot) and to
 * per_parity (a hash map whose value is struct hist { slots[] }).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 24

struct hist {
	__u32 slots[MAX_SLOTS];
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist_us SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct hist);
} per_parity SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	static const struct hist zero;
	__u32 slot, parity;
	struct hist *h;
	__u64 *count, value;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	slot = log2_slot(value);
	count = bpf_map_lookup_elem(&hist_us, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);

	parity = value & 1;
	h = bpf_map_lookup_elem(&per_parity, &parity);
	if (!h) {
		bpf_map_update_elem(&per_parity, &parity, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&per_parity, &parity);
		if (!h)
			return 0;
	}
	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
