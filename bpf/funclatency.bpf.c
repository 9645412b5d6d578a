// SPDX-License-Identifier: GPL-2.0
/* funclatency: a log2 histogram of a user-space function's latency, from a
 * uprobe at its entry and a uretprobe at its return. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "funclatency.h"
#include "maths.bpf.h"
#include "max_entries.h"

const volatile __u64 unit_ns = 1;	/* 1: nsecs, 1000: usecs, 1000000: msecs */

struct funclat totals;

/* Entry time per thread (calls nest per thread, not across threads). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);	/* pid_tgid */
	__type(value, __u64);	/* ktime at entry */
} starts SEC(".maps");

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
	__u64 id = bpf_get_current_pid_tgid(), delta, slot, *start;

	start = bpf_map_lookup_elem(&starts, &id);
	if (!start)
		return 0;	/* entered before we attached */
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &id);
	slot = clamp_index(log2_u64(delta / unit_ns), FUNCLAT_SLOTS);
	__sync_fetch_and_add(&totals.slots[slot], 1);
	__sync_fetch_and_add(&totals.count, 1);
	__sync_fetch_and_add(&totals.sum_ns, delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
