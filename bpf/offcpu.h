/* SPDX-License-Identifier: GPL-2.0 */
/*
 * offcputime's types, shared by bpf/offcputime.bpf.c and user space (which
 * reads their layout from the object's BTF). Plain C on __u32/__u64 only; in
 * BPF code include it after vmlinux.h.
 */
#ifndef __OFFCPU_H
#define __OFFCPU_H

#include "kernel_defs.h"

/* What off-CPU time is summed under: a thread, blocked in these stacks. */
struct offcpu_key {
	__u32 tgid;			/* as the tracer sees it (its PID namespace) */
	__u32 tid;
	__s32 kern_stack_id;		/* < 0: not captured */
	__s32 user_stack_id;		/* < 0: none (a kernel thread) or not captured */
};

struct offcpu_val {
	__u64 total_ns;			/* off the CPU, in all */
	__u64 count;			/* times */
	__u64 cgroup_id;		/* the thread's cgroup v2 id, when first seen */
	char comm[TASK_COMM_LEN];
};

/* offwaketime: in what context a wakeup was made. */
enum wake_context {
	WAKE_TASK = 0,			/* by the current task: it is the waker */
	WAKE_IRQ = 1,			/* in an interrupt, on top of whatever ran */
	WAKE_SOFTIRQ = 2,		/* in a softirq run at an interrupt's exit */
};

/* Kernel frames kept of a wakeup made in an interrupt, leaf first: down to
 * the interrupt's entry, never the interrupted code's (0 after the last). */
#define WAKE_FRAMES 16

/* offwaketime: off-CPU time of a thread in its stacks, joined with who woke
 * it and from where (the waker's stacks, taken at sched_waking). */
struct offwake_key {
	struct offcpu_key target;
	__u32 waker_tgid;		/* as the tracer sees it; 0 in an interrupt */
	__u32 waker_tid;
	__s32 waker_kern_stack_id;	/* < 0 in an interrupt: see waker_frames */
	__s32 waker_user_stack_id;
	char waker_comm[TASK_COMM_LEN];
	__u32 waker_context;		/* enum wake_context */
	__u32 __pad;
	__u64 waker_frames[WAKE_FRAMES];	/* in an interrupt */
};

/* Indices into offcputime's and offwaketime's per-CPU `stats` counters. */
enum offcpu_stat {
	OFFCPU_STAT_STACK_COLLISIONS = 0,	/* stack id: hash bucket holds another stack */
	OFFCPU_STAT_STACK_ERRORS = 1,	/* stack id: any other failure */
	OFFCPU_STAT_START_FULL = 2,	/* raw_tp: start map full, block not timed */
	OFFCPU_STAT_COUNTS_FULL = 3,	/* counts map full, block lost */
	OFFCPU_STAT_CLOCK_SKEW = 4,	/* now < stamp, discarded */
	OFFCPU_STAT_MAX = 5,
};

#endif /* __OFFCPU_H */
