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

/* Filters on the measured task, frozen at load (dead branches are pruned). */
const volatile bool filter_pids = false;	/* tgid must be a key of pids */
const volatile __u32 targ_tid = 0;		/* 0: any thread */
const volatile bool filter_cgroup = false;	/* in targ_cgroup_id or below */
const volatile __u64 targ_cgroup_id = 0;
const volatile __u32 targ_cgroup_level = 0;	/* level of targ_cgroup_id */
const volatile bool filter_cgroup_set = false;	/* cgroup id must be in cgroup_set */

/* tgids to measure when filter_pids; user space may edit it at any time. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

/* cgroup ids to measure when filter_cgroup_set; user space edits it live. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_set SEC(".maps");

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

/* task_struct before 5.14, when state became __state */
struct task_struct___o {
	long state;
} __attribute__((preserve_access_index));

/* task_struct before 5.16, when cpu moved into thread_info */
struct task_struct___cpu {
	unsigned int cpu;
} __attribute__((preserve_access_index));

/* cgroup before 6.1, when ancestor_ids[] became ancestors[] */
struct cgroup___o {
	u64 ancestor_ids[0];
} __attribute__((preserve_access_index));

/* A scalar field of task t, in the flavour's way of reading it. */
#define task_read(raw, t, field) ((raw) ? BPF_CORE_READ(t, field) : (t)->field)

static __always_inline bool task_running(bool raw, struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return task_read(raw, t, __state) == TASK_RUNNING;
	return task_read(raw, (struct task_struct___o *)t, state) == TASK_RUNNING;
}

/* The CPU whose run queue t is on (or last ran on). */
static __always_inline __u32 task_cpu(bool raw, struct task_struct *t)
{
	if (bpf_core_field_exists(t->thread_info.cpu))
		return task_read(raw, t, thread_info.cpu);
	return task_read(raw, (struct task_struct___cpu *)t, cpu);
}

/* t's cgroup v2 id: tp_btf walks the pointers with plain (BTF) loads, a
 * raw_tp must probe-read each one. */
static __always_inline __u64 task_cgroup(bool raw, struct task_struct *t)
{
	if (raw)
		return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	return t->cgroups->dfl_cgrp->kn->id;
}

/* Is t in the cgroup v2 directory targ_cgroup_id or below it? */
static __always_inline bool task_in_cgroup(struct task_struct *t)
{
	struct cgroup *cgrp = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	__u32 level = targ_cgroup_level;
	struct cgroup *anc;
	__u64 id;

	if (BPF_CORE_READ(cgrp, level) < (int)level)
		return false;
	if (bpf_core_field_exists(cgrp->ancestors)) {
		bpf_core_read(&anc, sizeof(anc), &cgrp->ancestors[level]);
		id = BPF_CORE_READ(anc, kn, id);
	} else {
		struct cgroup___o *old = (void *)cgrp;

		bpf_core_read(&id, sizeof(id), &old->ancestor_ids[level]);
	}
	return id == targ_cgroup_id;
}

static __always_inline bool task_wanted(bool raw, struct task_struct *t,
					__u32 tid)
{
	if (targ_tid && tid != targ_tid)
		return false;
	if (filter_pids) {
		__u32 tgid = task_read(raw, t, tgid);

		if (!bpf_map_lookup_elem(&pids, &tgid))
			return false;
	}
	if (filter_cgroup_set) {
		__u64 id = task_cgroup(raw, t);

		if (!bpf_map_lookup_elem(&cgroup_set, &id))
			return false;
	}
	return !filter_cgroup || task_in_cgroup(t);
}

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
