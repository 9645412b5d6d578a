/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The stack tools' kernel side (stackcount, memleak, offcputime): the
 * stack-trace map and how a stack id is taken. Include after stats.bpf.h.
 */
#ifndef PYRUNQ_USTACK_BPF_H
#define PYRUNQ_USTACK_BPF_H

#include "kernel_defs.h"

/* Stack id -> frames. Hashed: a stack whose bucket holds another gets -EEXIST. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, USTACK_MAX_DEPTH * sizeof(__u64));
	__uint(max_entries, 16384);
} stacks SEC(".maps");

/* The id of the current user stack, or < 0 once the failure is counted
 * under `collision` (bucket taken) or `other`. */
static __always_inline long stack_id(void *ctx, __u64 flags,
				     enum STATS_ENUM collision,
				     enum STATS_ENUM other)
{
	long id = bpf_get_stackid(ctx, &stacks, flags);

	if (id < 0)
		stat_inc(id == -EEXIST ? collision : other);
	return id;
}

static __always_inline long user_stack_id(void *ctx, enum STATS_ENUM collision,
					  enum STATS_ENUM other)
{
	return stack_id(ctx, BPF_F_USER_STACK, collision, other);
}

/* The id of the current kernel stack (from where the program runs). */
static __always_inline long kernel_stack_id(void *ctx,
					    enum STATS_ENUM collision,
					    enum STATS_ENUM other)
{
	return stack_id(ctx, 0, collision, other);
}

#endif
