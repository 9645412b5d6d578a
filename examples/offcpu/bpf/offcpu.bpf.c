// SPDX-License-Identifier: GPL-2.0
/* Off-CPU time per thread of one process: how long each thread of
 * target_tgid stayed switched out (sleeping, blocked, or preempted), from its
 * switch-out to its next switch-in, summed with the number of such spells.
 * An example of a tool of one's own on pyrunq (README.md beside it). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct offcpu {
	__u64 total_ns;		/* switched out, summed */
	__u64 spells;		/* switch-outs that ended in a switch-in */
};

const volatile __u32 target_tgid = 0;
__u64 missed = 0;	/* spells not counted: the offcpu map was full */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);	/* tid */
	__type(value, __u64);	/* when it was switched out */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);	/* tid */
	__type(value, struct offcpu);
} offcpu SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns(), *since;
	struct offcpu *o, first;
	__u32 tid;

	if (prev->tgid == target_tgid) {
		tid = prev->pid;
		bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	}
	if (next->tgid != target_tgid)
		return 0;
	tid = next->pid;
	since = bpf_map_lookup_elem(&start, &tid);
	if (!since)
		return 0;	/* switched out before tracing began */
	first.total_ns = now - *since;
	first.spells = 1;
	bpf_map_delete_elem(&start, &tid);
	o = bpf_map_lookup_elem(&offcpu, &tid);
	if (o) {
		__sync_fetch_and_add(&o->total_ns, first.total_ns);
		__sync_fetch_and_add(&o->spells, 1);
	} else if (bpf_map_update_elem(&offcpu, &tid, &first, BPF_NOEXIST)) {
		__sync_fetch_and_add(&missed, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
