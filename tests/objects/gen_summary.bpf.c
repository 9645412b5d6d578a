// SPDX-License-Identifier: GPL-2.0
/* Test object: a per-process summary, as some libbpf-tools keep one: each
 * getpgid() of the process in `target_tgid` adds its call and its time (from
 * `start`, working state: written at sys_enter, read and deleted at
 * sys_exit) to the process's entry in `summaries`; the entry is deleted when
 * the process exits (counted in `exited`). Deleted, but only by another
 * program than the one that adds to it: a result, not working state. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define TASK_COMM_LEN 16

struct summary {
	__u64 calls;
	__u64 total_ns;
	char comm[TASK_COMM_LEN];
};

const volatile __u32 target_tgid = 0;
__u64 exited = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct summary);
} summaries SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid(), ts;
	__u32 tid = pid_tgid;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	static const struct summary zero;
	__u64 pid_tgid = bpf_get_current_pid_tgid(), *tsp;
	__u32 tid = pid_tgid, tgid = pid_tgid >> 32;
	struct summary *s;

	if (BPF_CORE_READ(regs, orig_ax) != NR_getpgid)
		return 0;
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	s = bpf_map_lookup_elem(&summaries, &tgid);
	if (!s) {
		bpf_map_update_elem(&summaries, &tgid, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&summaries, &tgid);
	}
	if (s) {
		__sync_fetch_and_add(&s->calls, 1);
		__sync_fetch_and_add(&s->total_ns, bpf_ktime_get_ns() - *tsp);
		bpf_get_current_comm(s->comm, sizeof(s->comm));
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if ((__u32)pid_tgid == tgid && !bpf_map_delete_elem(&summaries, &tgid))	/* the process, not a thread */
		__sync_fetch_and_add(&exited, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
