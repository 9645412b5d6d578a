// SPDX-License-Identifier: GPL-2.0
/*
 * cpudist: histograms of how long a task runs each time it is on a CPU (from
 * its switch-in to its switch-out, whatever the reason it leaves), or with
 * targ_offcpu how long it stays off (from its switch-out to its switch-in),
 * optionally one per key. Only sched_switch: the idle task (tid 0) is never
 * measured.
 *
 * Each program comes in two flavours (see task_filter.bpf.h): tp_btf keeps
 * the stamps in task storage, freed with the task; raw_tp in a hash by tid.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "runq.h"
#define STATS_ENUM runq_stat
#define STATS_MAX RUNQ_STAT_MAX
#include "stats.bpf.h"
#include "task_filter.bpf.h"
#include "maths.bpf.h"
#include "keyed_hist.bpf.h"

const volatile bool targ_offcpu = false;	/* off-CPU time instead of on-CPU */

/* When the task went on (or off) its CPU; 0: no stamp. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start_hash SEC(".maps");

/* t's period begins now. */
static __always_inline void stamp(bool raw, struct task_struct *t, __u64 now)
{
	__u32 tid = task_read(raw, t, pid);
	__u64 *ts;

	if (!tid || !task_wanted(raw, t, tid))
		return;
	if (raw) {
		if (bpf_map_update_elem(&start_hash, &tid, &now, BPF_ANY))
			stat_inc(RUNQ_STAT_START_FULL);
		return;
	}
	ts = bpf_task_storage_get(&start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = now;
}

/* t's period ends now: count it, once, if t was stamped and is still wanted
 * (the filter sets may have changed meanwhile). */
static __always_inline void measure(bool raw, struct task_struct *t, __u64 now)
{
	__u32 tid = task_read(raw, t, pid);
	__u64 *ts, then;

	if (!tid)
		return;
	if (raw) {
		ts = bpf_map_lookup_elem(&start_hash, &tid);
		if (!ts)
			return;
		then = *ts;
		bpf_map_delete_elem(&start_hash, &tid);
	} else {
		ts = bpf_task_storage_get(&start, t, 0, 0);
		if (!ts || !*ts)
			return;
		then = *ts;
		*ts = 0;	/* consumed: cheaper than deleting the storage */
	}
	if (!task_wanted(raw, t, tid))
		return;
	if (now < then) {
		stat_inc(RUNQ_STAT_CLOCK_SKEW);
		return;
	}
	hist_add(t, hist_key(raw, t), now - then);
}

static __always_inline void switched(bool raw, struct task_struct *prev,
				     struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	if (targ_offcpu) {
		stamp(raw, prev, now);
		measure(raw, next, now);
	} else {
		measure(raw, prev, now);
		stamp(raw, next, now);
	}
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	switched(false, prev, next);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(handle_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	switched(true, prev, next);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
