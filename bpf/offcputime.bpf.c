// SPDX-License-Identifier: GPL-2.0
/*
 * offcputime: how long threads stay off the CPU, summed by their kernel and
 * user stacks at the moment they left it (offcpu.bpf.h). No kprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "offcpu.h"
#include "ustack.h"
#define STATS_ENUM offcpu_stat
#define STATS_MAX OFFCPU_STAT_MAX
#include "stats.bpf.h"
#include "task_filter.bpf.h"
#include "ustack.bpf.h"

#include "offcpu.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_val);
} counts SEC(".maps");

/* Add ns under t's key, made (with t's comm and cgroup) if new. */
static __always_inline void count(bool raw, struct task_struct *t,
				  const struct block *b, __u64 ns)
{
	struct offcpu_key key = {};

	key.tgid = task_nr(raw, t, false);
	key.tid = task_nr(raw, t, true);
	key.kern_stack_id = b->kern_stack_id;
	key.user_stack_id = b->user_stack_id;
	add_block(raw, &counts, &key, t, ns);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct block b;
	__u64 ns;

	blocked(false, ctx, prev);
	if (resumed(false, next, &b, &ns))
		count(false, next, &b, ns);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(handle_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct block b;
	__u64 ns;

	blocked(true, ctx, prev);
	if (resumed(true, next, &b, &ns))
		count(true, next, &b, ns);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
