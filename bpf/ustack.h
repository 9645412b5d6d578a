/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by the user-stack tools (bpf/stackcount.bpf.c,
 * bpf/memleak.bpf.c) and user space, which reads their layout from each
 * object's BTF. Plain C on __u32/__u64 only; in BPF code include it after
 * vmlinux.h.
 */
#ifndef __USTACK_H
#define __USTACK_H

#include "kernel_defs.h"

/* Frames kept per stack: the kernel's limit (PERF_MAX_STACK_DEPTH). */
#define USTACK_MAX_DEPTH 127

/* stackcount: what a hit is counted under. */
struct stack_key {
	__u32 tgid;
	__s32 stack_id;		/* id in the `stacks` map, always >= 0 */
};

/* stackcount: hits of one stack in one process. */
struct stack_count {
	__u64 count;
	char comm[TASK_COMM_LEN];	/* of the thread that hit it first */
};

/* Indices into stackcount's per-CPU `stats` counters. */
enum stackcount_stat {
	STACKCOUNT_STAT_STACK_COLLISIONS = 0,	/* stack id: hash bucket holds another stack */
	STACKCOUNT_STAT_STACK_ERRORS = 1,	/* stack id: any other failure */
	STACKCOUNT_STAT_COUNTS_FULL = 2,	/* counts map full */
	STACKCOUNT_STAT_MAX = 3,
};

/* memleak: one outstanding allocation, keyed by its address. */
struct alloc_info {
	__u64 size;
	__u64 timestamp_ns;	/* bpf_ktime_get_ns() when it returned */
	__s32 stack_id;		/* allocating stack, < 0 when it was lost */
	__u32 __pad;
};

/* Indices into memleak's per-CPU `stats` counters. */
enum memleak_stat {
	MEMLEAK_STAT_STACK_COLLISIONS = 0,	/* stack id: bucket holds another stack */
	MEMLEAK_STAT_STACK_ERRORS = 1,	/* stack id: any other failure */
	MEMLEAK_STAT_ALLOCS_FULL = 2,	/* allocs map full: allocation not tracked */
	MEMLEAK_STAT_PENDING_FULL = 3,	/* sizes/memptrs full: allocation missed */
	MEMLEAK_STAT_MAX = 4,
};

#endif /* __USTACK_H */
