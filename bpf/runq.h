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

/* Cumulative: the kernel never resets it, user space takes differences. */
struct hist {
	__u64 sum_ns;			/* of every delay counted, before scaling */
	__u32 buckets[HIST_BUCKETS];
	char comm[TASK_COMM_LEN];
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
