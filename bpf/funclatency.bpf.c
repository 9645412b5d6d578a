// SPDX-License-Identifier: GPL-2.0
/* funclatency: a log2 histogram of a user-space function's latency, from a
 * uprobe at its entry and a uretprobe at its return. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "funclatency.h"

const volatile __u64 unit_ns = 1;	/* 1: nsecs, 1000: usecs, 1000000: msecs */

struct funclat totals;

/* Entry time per thread (calls nest per thread, not across threads). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);	/* pid_tgid */
	__type(value, __u64);	/* ktime at entry */
} starts SEC(".maps");

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	/* binary search for the highest set bit: 6 steps, no loop */
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

SEC("uprobe")
int func_entry(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&starts, &id, &now, BPF_ANY))
		__sync_fetch_and_add(&totals.missed, 1);
	return 0;
}

SEC("uretprobe")
int func_return(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), delta, *start;
	__u32 slot;

	start = bpf_map_lookup_elem(&starts, &id);
	if (!start)
		return 0;	/* entered before we attached */
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &id);
	slot = log2_u64(delta / unit_ns);
	if (slot >= FUNCLAT_SLOTS)
		slot = FUNCLAT_SLOTS - 1;
	__sync_fetch_and_add(&totals.slots[slot], 1);
	__sync_fetch_and_add(&totals.count, 1);
	__sync_fetch_and_add(&totals.sum_ns, delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
