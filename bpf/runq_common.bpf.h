/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Run queue latency: the time from a task's enqueue (wakeup, or being
 * switched out while still runnable) to its switch-in. Each tool includes
 * this, which defines the programs, and defines runq_measured(): what to do
 * with a measured delay.
 *
 * With targ_blame, each wait is also split among what ran instead
 * (blame.bpf.h), and the tool receives the parts.
 *
 * Every function comes in two flavours selected by the literal `raw`:
 * tp_btf programs (raw = false) get BTF-typed task pointers, which can be
 * dereferenced directly and keyed in task storage; raw_tp programs (raw =
 * true, kernels without tp_btf) get bare addresses that must be probe-read
 * and keep their stamps in a hash keyed by tid. Everything is inlined, so
 * each program holds only its own flavour.
 */
#ifndef __RUNQ_COMMON_BPF_H
#define __RUNQ_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "kernel_defs.h"
#include "max_entries.h"
#include "runq.h"
#define STATS_ENUM runq_stat
#define STATS_MAX RUNQ_STAT_MAX
#include "stats.bpf.h"

#include "task_filter.bpf.h"

/* When a task joined a run queue; with blame, which one, and since when. */
struct stamp {
	__u64 ns;			/* 0: consumed */
	__u64 since_ns;			/* on cpu's queue since (migrations) */
	__u32 cpu;
	__u32 __pad;
};

/* Enqueue stamps of the tp_btf flavour: freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stamp);
} start SEC(".maps");

/* Enqueue stamps of the raw_tp flavour, keyed by tid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct stamp);
} start_hash SEC(".maps");

/* A measured wait: from then to now, on CPU cpu's queue since since,
 * ended by a switch from the task prev_tid. */
struct wait {
	__u64 then;
	__u64 since;
	__u64 now;
	__u64 ns;
	__u32 cpu;
	__u32 prev_tid;
};

/*
 * The clock is read at most once per event, and only when a stamp is set or
 * consumed: bpf_ktime_get_ns() costs as much as the rest of the fast path.
 */
static __always_inline __u64 clock_ns(__u64 *now)
{
	if (!*now)
		*now = bpf_ktime_get_ns();
	return *now;
}

#include "blame.bpf.h"

/* t joins the run queue of CPU cpu at *now. */
static __always_inline void runq_enqueue(bool raw, struct task_struct *t,
					 __u32 cpu, __u64 *now)
{
	__u32 tid = task_read(raw, t, pid);
	struct stamp *stamp, new = {};

	if (!tid || !task_wanted(raw, t, tid))
		return;
	if (raw) {
		new.ns = new.since_ns = clock_ns(now);
		new.cpu = cpu;
		if (bpf_map_update_elem(&start_hash, &tid, &new, BPF_ANY))
			stat_inc(RUNQ_STAT_START_FULL);
		return;
	}
	stamp = bpf_task_storage_get(&start, t, 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (stamp) {
		stamp->ns = stamp->since_ns = clock_ns(now);
		stamp->cpu = cpu;
	}
}

/* The live stamp of t, if it waits: NULL if it does not. */
static __always_inline struct stamp *runq_stamp(bool raw, struct task_struct *t)
{
	__u32 tid = task_read(raw, t, pid);
	struct stamp *stamp;

	if (raw)
		stamp = bpf_map_lookup_elem(&start_hash, &tid);
	else
		stamp = bpf_task_storage_get(&start, t, 0, 0);
	return stamp && stamp->ns ? stamp : NULL;
}

/* sched_migrate_task (with blame): a waiting t moves to cpu's queue; the
 * wait so far, on another CPU, will be unattributed as "migrated". */
static __always_inline void runq_migrate(bool raw, struct task_struct *t,
					 __u32 cpu)
{
	struct stamp *stamp = runq_stamp(raw, t);

	if (stamp) {
		stamp->since_ns = bpf_ktime_get_ns();
		stamp->cpu = cpu;
	}
}

/*
 * t runs at w->now: consume its stamp, so that each enqueue is counted at
 * most once, and fill in *w if t is still wanted (the filter set may have
 * changed since the enqueue).
 */
static __always_inline bool runq_dequeue(bool raw, struct task_struct *t,
					 struct wait *w)
{
	__u32 tid = task_read(raw, t, pid);
	struct stamp *stamp;

	if (!tid)
		return false;
	stamp = runq_stamp(raw, t);
	if (!stamp)
		return false;
	w->then = stamp->ns;
	w->since = stamp->since_ns;
	w->cpu = stamp->cpu;
	/* zero marks a consumed stamp: cheaper than deleting the task
	 * storage and creating it again at the next enqueue */
	if (raw)
		bpf_map_delete_elem(&start_hash, &tid);
	else
		stamp->ns = 0;
	if (!task_wanted(raw, t, tid))
		return false;
	if (clock_ns(&w->now) < w->then) {
		stat_inc(RUNQ_STAT_CLOCK_SKEW);
		return false;
	}
	w->ns = w->now - w->then;
	return true;
}

/* sched_wakeup, sched_wakeup_new: p is queued on its CPU. */
static __always_inline void runq_wakeup(bool raw, struct task_struct *p)
{
	__u64 now = 0;

	runq_enqueue(raw, p, targ_blame ? task_cpu(raw, p) : 0, &now);
}

/*
 * sched_switch on this CPU: prev leaves it, still queued if runnable, and
 * next runs. True, with *w filled in, when next's wait was measured.
 */
static __always_inline bool runq_switch(bool raw, bool preempt,
					struct task_struct *prev,
					struct task_struct *next,
					struct wait *w)
{
	if (targ_blame)	/* blame_wait() checks the ring against it */
		w->prev_tid = task_read(raw, prev, pid);
	if (preempt || task_running(raw, prev))
		runq_enqueue(raw, prev,
			     targ_blame ? bpf_get_smp_processor_id() : 0,
			     &w->now);
	return runq_dequeue(raw, next, w);
}

/* What the including tool does with next's measured wait. */
static __always_inline void runq_measured(bool raw, struct task_struct *prev,
					  struct task_struct *next,
					  struct wait *w);

static __always_inline void runq_switched(bool raw, bool preempt,
					  struct task_struct *prev,
					  struct task_struct *next)
{
	struct wait w = {};

	if (targ_blame)
		blame_switch(raw, prev);
	if (runq_switch(raw, preempt, prev, next, &w))
		runq_measured(raw, prev, next, &w);
	/* after the measure: next's wait ends where its own segment begins */
	if (targ_blame)
		blame_ran(raw, next, clock_ns(&w.now));
}

/* The programs, in both flavours; user space loads one flavour. */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_wakeup, struct task_struct *p)
{
	runq_wakeup(false, p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new, struct task_struct *p)
{
	runq_wakeup(false, p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	runq_switched(false, preempt, prev, next);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(handle_migrate, struct task_struct *p, int dest_cpu)
{
	runq_migrate(false, p, dest_cpu);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(handle_wakeup_raw, struct task_struct *p)
{
	runq_wakeup(true, p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new_raw, struct task_struct *p)
{
	runq_wakeup(true, p);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(handle_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	runq_switched(true, preempt, prev, next);
	return 0;
}

SEC("raw_tp/sched_migrate_task")
int BPF_PROG(handle_migrate_raw, struct task_struct *p, int dest_cpu)
{
	runq_migrate(true, p, dest_cpu);
	return 0;
}

#endif /* __RUNQ_COMMON_BPF_H */
