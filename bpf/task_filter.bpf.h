/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which tasks a tool measures, and how a task's fields are read, for the
 * tools that trace the scheduler's tracepoints (runqlat, runqslower,
 * cpudist, offcputime): the filters, frozen at load or edited live through
 * maps, and the CO-RE flavours of the task fields that moved between kernels.
 *
 * Every function takes the literal `raw`: tp_btf programs (raw = false) get
 * BTF-typed task pointers, which can be dereferenced directly; raw_tp
 * programs (raw = true, kernels without tp_btf) get bare addresses that must
 * be probe-read. Include after the tool's stats.bpf.h.
 */
#ifndef PYRUNQ_TASK_FILTER_BPF_H
#define PYRUNQ_TASK_FILTER_BPF_H

#include "kernel_defs.h"
#include "max_entries.h"

/* Filters on the measured task, frozen at load (dead branches are pruned). */
const volatile bool filter_pids = false;	/* tgid must be a key of pids */
const volatile __u32 targ_tid = 0;		/* 0: any thread */
const volatile bool filter_cgroup = false;	/* in targ_cgroup_id or below */
const volatile __u64 targ_cgroup_id = 0;
const volatile __u32 targ_cgroup_level = 0;	/* level of targ_cgroup_id */
const volatile bool filter_cgroup_set = false;	/* cgroup id must be in cgroup_set */
/* Nonzero when the tracer runs in a PID namespace of its own: the inode of
 * that namespace, in which targ_tid, the pids map and the pid/tid keys are
 * numbers (the kernel's tgid and pid are the initial namespace's). */
const volatile __u32 targ_pidns_inum = 0;

/* How deep a PID namespace of the tracer's can be (the kernel allows 32). */
#define PIDNS_MAX_LEVEL 8

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

/* t's state: TASK_RUNNING (0), or the bits of how it sleeps. */
static __always_inline long task_state(bool raw, struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return task_read(raw, t, __state);
	return task_read(raw, (struct task_struct___o *)t, state);
}

static __always_inline bool task_running(bool raw, struct task_struct *t)
{
	return task_state(raw, t) == TASK_RUNNING;
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

/* The number of pid in PID namespace targ_pidns_inum; 0 if it has none
 * there (the task is not visible to the tracer). */
static __always_inline __u32 pid_nr_in_ns(struct pid *pid)
{
	unsigned int level = BPF_CORE_READ(pid, level);

	for (int i = 0; i < PIDNS_MAX_LEVEL; i++) {
		if (i > level)
			break;
		if (BPF_CORE_READ(pid, numbers[i].ns, ns.inum) == targ_pidns_inum)
			return BPF_CORE_READ(pid, numbers[i].nr);
	}
	return 0;
}

/* t's tid (thread) or tgid (!thread), as the tracer sees it. */
static __always_inline __u32 task_nr(bool raw, struct task_struct *t,
				     bool thread)
{
	if (targ_pidns_inum)
		return pid_nr_in_ns(thread ? BPF_CORE_READ(t, thread_pid)
				    : BPF_CORE_READ(t, group_leader, thread_pid));
	return thread ? task_read(raw, t, pid) : task_read(raw, t, tgid);
}

static __always_inline bool task_wanted(bool raw, struct task_struct *t,
					__u32 tid)
{
	if (targ_tid && (targ_pidns_inum ? task_nr(raw, t, true) : tid) != targ_tid)
		return false;
	if (filter_pids) {
		__u32 tgid = task_nr(raw, t, false);

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

#endif
