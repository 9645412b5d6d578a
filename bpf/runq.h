/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by the BPF programs and user space. Plain C on __u32/__u64 only.
 * In BPF code include it after vmlinux.h.
 */
#ifndef __RUNQ_H
#define __RUNQ_H

#include "kernel_defs.h"

/*
 * Log-linear histogram: values 0..3 get a bucket each, then every power of
 * two [2^m, 2^(m+1)) is split into HIST_SUB equal sub-buckets starting at
 * bucket HIST_SUB * (m - 1). Summing buckets {0,1}, {2,3} and then groups of
 * HIST_SUB gives libbpf-tools' log2 slots, which stop at slot
 * HIST_LOG2_SLOTS - 1: every value >= 2^25 is clamped into its last bucket.
 */
#define HIST_LOG2_SLOTS 26
#define HIST_SUB 4
#define HIST_BUCKETS 100	/* HIST_SUB * (HIST_LOG2_SLOTS - 1) */

/*
 * What ran on the CPU while a task waited for it (bpf/blame.bpf.h). A wait's
 * nanoseconds are split among these kinds, and the parts add up to the wait.
 * BLAME_OTHER is a task of another cgroup: user space tells containers from
 * the host by the cgroup's path.
 */
enum blame_kind {
	BLAME_SELF = 0,		/* a task of the waiting task's own cgroup */
	BLAME_OTHER = 1,	/* a task of another cgroup */
	BLAME_KERNEL = 2,	/* a kernel thread */
	BLAME_IDLE = 3,		/* the idle task: the CPU was free */
	BLAME_UNATTRIBUTED = 4,	/* not known: see enum blame_why */
	BLAME_KINDS = 5,
};

/* Why part of a wait is unattributed: counted per wait (map `unattributed`). */
enum blame_why {
	BLAME_WHY_NONE = 0,
	BLAME_WHY_MIGRATED = 1,	/* queued on one CPU, ran on another */
	BLAME_WHY_HISTORY = 2,	/* began before the oldest run segment kept */
	BLAME_WHY_FULL = 3,	/* the `blames` table was full */
	BLAME_WHY_UNSEEN = 4,	/* a switch on the CPU was not seen */
	BLAME_WHY_MAX = 5,
};

/* Run segments kept per CPU: a wait across more switches than this is
 * attributed for its last BLAME_SEGS segments only. A power of two. */
#define BLAME_SEGS 16

/* A task that ran on a CPU. */
struct who {
	__u64 cgroup_id;		/* its cgroup v2 id */
	__u32 pid;			/* tgid */
	__u32 tid;
	__u32 kind;			/* enum blame_kind */
	char comm[TASK_COMM_LEN];
	__u32 __pad;
};

/* Cumulative: the kernel never resets it, user space takes differences. */
struct hist {
	__u64 sum_ns;			/* of every delay counted, before scaling */
	__u32 buckets[HIST_BUCKETS];
	char comm[TASK_COMM_LEN];
	__u64 blame_ns[BLAME_KINDS];	/* sum_ns split by enum blame_kind */
};

/* Nanoseconds that culprits took from waiting tasks, per histogram key. The
 * culprit is as fine as the key: a thread per thread, a process per process
 * (and per pidns, or the whole), only its cgroup per cgroup. */
struct blame_key {
	__u64 victim;			/* the histogram's key */
	__u64 cgroup_id;		/* the culprit's cgroup */
	__u32 culprit;			/* tid, tgid, or 0 */
	__u32 kind;			/* enum blame_kind, not BLAME_IDLE */
};

struct blame_val {
	__u64 ns;
	char comm[TASK_COMM_LEN];	/* the culprit's, when first seen */
};

/* One culprit of one wait: who, and for how long. */
struct culprit {
	__u64 ns;
	struct who who;
};

/* One run queue delay at least min_us long (runqslower). */
struct event {
	char task[TASK_COMM_LEN];	/* the task that waited */
	char prev_task[TASK_COMM_LEN];	/* the task it replaced on the CPU */
	__u64 delta_ns;
	__u32 pid;			/* tgid of task */
	__u32 tid;
	__u32 prev_pid;
	__u32 prev_tid;
	__u32 cpu;
	__u32 __pad;
};

/* An event with what ran instead, newest first (runqslower with blame). The
 * culprits' ns and unattributed_ns add up to delta_ns. */
struct blame_event {
	struct event e;
	__u64 unattributed_ns;
	__u32 why;			/* enum blame_why of unattributed_ns */
	__u32 nculprits;
	struct culprit culprits[BLAME_SEGS];
};

/* Histogram key of runqlat (targ_per); user space reads the values from BTF. */
enum per_kind {
	PER_NONE = 0,
	PER_PID = 1,
	PER_TID = 2,
	PER_PIDNS = 3,
	PER_CGROUP = 4,
};

/*
 * Indices into the per-CPU `stats` counters. Not `enum stat`: the tag would
 * clash with struct stat (vmlinux.h, <sys/stat.h>).
 */
enum runq_stat {
	RUNQ_STAT_CLOCK_SKEW = 0,	/* now < stamp, discarded */
	RUNQ_STAT_HIST_FULL = 1,	/* hists map full, sample lost */
	RUNQ_STAT_START_FULL = 2,	/* raw_tp fallback start map full */
	RUNQ_STAT_LOST = 3,		/* ring buffer full, event lost */
	RUNQ_STAT_MAX = 4,
};

#endif /* __RUNQ_H */
