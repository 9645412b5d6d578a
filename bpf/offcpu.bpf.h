/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Off-CPU blocks, from sched_switch alone (offcputime, offwaketime): the
 * thread leaving the CPU (`prev`) is the current task, so its kernel and
 * user stacks are read there and kept with the time it left; when it is
 * switched in again (`next`), the block ends. Which threads, and which
 * blocks, the tool's settings say.
 *
 * Each program comes in two flavours (see task_filter.bpf.h): tp_btf keeps
 * the pending blocks in task storage, raw_tp in a hash by thread id.
 * Include after offcpu.h, ustack.h, stats.bpf.h (STATS_ENUM offcpu_stat),
 * task_filter.bpf.h and ustack.bpf.h.
 */
#ifndef PYRUNQ_OFFCPU_BPF_H
#define PYRUNQ_OFFCPU_BPF_H

#define PF_KTHREAD 0x00200000	/* task->flags: a kernel thread (linux/sched.h) */

const volatile bool user_threads_only = false;
const volatile bool kernel_threads_only = false;
const volatile long targ_state = -1;		/* -1: any state */
const volatile __u64 min_block_ns = 1000;	/* blocks shorter are not counted */
const volatile __u64 max_block_ns = -1;		/* nor longer */

/* A thread that left the CPU: when, and where it was. */
struct block {
	__u64 ns;			/* 0: none pending */
	__s32 kern_stack_id;
	__s32 user_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct block);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct block);
} start_hash SEC(".maps");

static __always_inline bool thread_wanted(bool raw, struct task_struct *t,
					  __u32 tid)
{
	bool kthread;

	if (!tid || !task_wanted(raw, t, tid))
		return false;
	if (user_threads_only || kernel_threads_only) {
		kthread = task_read(raw, t, flags) & PF_KTHREAD;
		if (user_threads_only ? kthread : !kthread)
			return false;
	}
	return targ_state < 0 || task_state(raw, t) == targ_state;
}

/* t, the current task, leaves the CPU: note when, and its stacks. */
static __always_inline void blocked(bool raw, void *ctx, struct task_struct *t)
{
	__u32 tid = task_read(raw, t, pid);
	struct block b = {}, *slot;

	if (!thread_wanted(raw, t, tid))
		return;
	b.kern_stack_id = kernel_stack_id(ctx, OFFCPU_STAT_STACK_COLLISIONS,
					  OFFCPU_STAT_STACK_ERRORS);
	b.user_stack_id = -1;	/* none: a kernel thread */
	if (!(task_read(raw, t, flags) & PF_KTHREAD)) {
		/* -EFAULT: no user context to walk (an exiting thread, say):
		 * no user stack, like a kernel thread's, not one lost */
		b.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		if (b.user_stack_id < 0 && b.user_stack_id != -EFAULT)
			stat_inc(b.user_stack_id == -EEXIST ? OFFCPU_STAT_STACK_COLLISIONS
							    : OFFCPU_STAT_STACK_ERRORS);
	}
	b.ns = bpf_ktime_get_ns();
	if (raw) {
		if (bpf_map_update_elem(&start_hash, &tid, &b, BPF_ANY))
			stat_inc(OFFCPU_STAT_START_FULL);
		return;
	}
	slot = bpf_task_storage_get(&start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = b;
}

/* t runs again: its pending block, if any, ends now; true, with the block
 * and its length, when it is to be counted (t wanted, long enough). */
static __always_inline bool resumed(bool raw, struct task_struct *t,
				    struct block *b, __u64 *ns)
{
	__u32 tid = task_read(raw, t, pid);
	struct block *slot;
	__u64 now;

	if (!tid)
		return false;
	if (raw)
		slot = bpf_map_lookup_elem(&start_hash, &tid);
	else
		slot = bpf_task_storage_get(&start, t, 0, 0);
	if (!slot || !slot->ns)
		return false;
	*b = *slot;
	if (raw)
		bpf_map_delete_elem(&start_hash, &tid);
	else
		slot->ns = 0;	/* consumed: cheaper than deleting the storage */
	if (!task_wanted(raw, t, tid))	/* the filter sets may have changed */
		return false;
	now = bpf_ktime_get_ns();
	if (now < b->ns) {
		stat_inc(OFFCPU_STAT_CLOCK_SKEW);
		return false;
	}
	*ns = now - b->ns;
	return *ns >= min_block_ns && *ns <= max_block_ns;
}

/* Add a block of ns under key in the tool's counts map, the entry made
 * (with t's comm and cgroup) if new. */
static __always_inline void add_block(bool raw, void *counts, const void *key,
				      struct task_struct *t, __u64 ns)
{
	struct offcpu_val *val, init = {};

	val = bpf_map_lookup_elem(counts, key);
	if (!val) {
		BPF_CORE_READ_INTO(&init.comm, t, comm);
		init.cgroup_id = task_cgroup(raw, t);
		/* another CPU may create it first: NOEXIST keeps its sums */
		bpf_map_update_elem(counts, key, &init, BPF_NOEXIST);
		val = bpf_map_lookup_elem(counts, key);
		if (!val) {
			stat_inc(OFFCPU_STAT_COUNTS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&val->total_ns, ns);
	__sync_fetch_and_add(&val->count, 1);
}

#endif
