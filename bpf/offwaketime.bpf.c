// SPDX-License-Identifier: GPL-2.0
/*
 * offwaketime: how long threads stay off the CPU, by their stacks when they
 * left it (offcpu.bpf.h), joined with who woke them and from where. The
 * waker is the current task at sched_waking, which fires in try_to_wake_up()
 * on the waker's CPU (sched_wakeup may fire later on the wakee's CPU, in an
 * IPI, where the current task has nothing to do with it). A wakeup from an
 * interrupt has the interrupted task as current: it is told by its kernel
 * stack, whose frames reach the interrupt's entry code (address ranges user
 * space finds in kallsyms), and kept as those frames alone, without the
 * interrupted task or its stacks. No kprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "offcpu.h"
#include "ustack.h"
#define STATS_ENUM offcpu_stat
#define STATS_MAX OFFCPU_STAT_MAX
#include "stats.bpf.h"
#include "task_filter.bpf.h"
#include "ustack.bpf.h"
#include "offcpu.bpf.h"

/* The kernel's interrupt entry code, and its softirq loop: [start, end)
 * addresses from kallsyms (all 0: unknown, every wakeup is a task's). */
const volatile __u64 irq_text_start = 0;	/* __irqentry_text_start */
const volatile __u64 irq_text_end = 0;
const volatile __u64 softirq_text_start = 0;	/* __softirqentry_text_start */
const volatile __u64 softirq_text_end = 0;
const volatile __u64 softirq_fn_start = 0;	/* handle_softirqs (6.8+) */
const volatile __u64 softirq_fn_end = 0;

/* Who woke a blocked thread, and when. */
struct wake {
	__u64 ns;			/* 0: none */
	__u32 tgid;
	__u32 tid;
	__s32 kern_stack_id;
	__s32 user_stack_id;
	char comm[TASK_COMM_LEN];
	__u32 context;			/* enum wake_context */
	__u32 __pad;
	__u64 frames[WAKE_FRAMES];
};

/* Where a wake record is made before it is stored: too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wake);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wake);
} wakes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct wake);
} wakes_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct offwake_key);
	__type(value, struct offcpu_val);
} counts SEC(".maps");

static __always_inline bool in_range(__u64 ip, __u64 start, __u64 end)
{
	return ip >= start && ip < end;
}

/* The context of a wakeup whose kernel stack (leaf first, n bytes) is in
 * w->frames: the first frame in interrupt or softirq code says which, and
 * the frames after it (the interrupted code's) are zeroed. */
static __always_inline __u32 frames_context(struct wake *w, long n)
{
	__u32 context = WAKE_TASK, got = n > 0 ? (__u64)n / 8 : 0;
	__u64 ip;

	for (int i = 0; i < WAKE_FRAMES; i++) {
		if (context != WAKE_TASK || i >= got) {
			w->frames[i] = 0;
			continue;
		}
		ip = w->frames[i];
		if (in_range(ip, softirq_fn_start, softirq_fn_end) ||
		    in_range(ip, softirq_text_start, softirq_text_end))
			context = WAKE_SOFTIRQ;
		else if (in_range(ip, irq_text_start, irq_text_end))
			context = WAKE_IRQ;
	}
	return context;
}

/* The current task, in task context, wakes: it, and its stacks. */
static __always_inline void task_waker(void *ctx, struct wake *w)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();

	w->tgid = task_nr(true, cur, false);
	w->tid = task_nr(true, cur, true);
	bpf_get_current_comm(w->comm, sizeof(w->comm));
	w->kern_stack_id = kernel_stack_id(ctx, OFFCPU_STAT_STACK_COLLISIONS,
					   OFFCPU_STAT_STACK_ERRORS);
	w->user_stack_id = -1;
	if (!(BPF_CORE_READ(cur, flags) & PF_KTHREAD)) {
		w->user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		if (w->user_stack_id < 0 && w->user_stack_id != -EFAULT)
			stat_inc(w->user_stack_id == -EEXIST ? OFFCPU_STAT_STACK_COLLISIONS
							     : OFFCPU_STAT_STACK_ERRORS);
	}
}

/* sched_waking: p is woken. Noted only for a p whose block is pending (a
 * wanted thread that left the CPU while traced). */
static __always_inline void waking(bool raw, void *ctx, struct task_struct *p)
{
	__u32 tid = task_read(raw, p, pid), zero = 0;
	struct wake *w, *slot;
	struct block *b;
	long n;

	if (raw)
		b = bpf_map_lookup_elem(&start_hash, &tid);
	else
		b = bpf_task_storage_get(&start, p, 0, 0);
	if (!b || !b->ns)
		return;
	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return;
	__builtin_memset(w, 0, sizeof(*w));
	w->ns = bpf_ktime_get_ns();
	n = bpf_get_stack(ctx, w->frames, sizeof(w->frames), 0);
	w->context = frames_context(w, n);
	if (w->context == WAKE_TASK) {
		__builtin_memset(w->frames, 0, sizeof(w->frames));
		task_waker(ctx, w);
	} else {
		w->kern_stack_id = w->user_stack_id = -1;
	}
	if (raw) {
		if (bpf_map_update_elem(&wakes_hash, &tid, w, BPF_ANY))
			stat_inc(OFFCPU_STAT_START_FULL);
		return;
	}
	slot = bpf_task_storage_get(&wakes, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (slot)
		*slot = *w;
}

/* t ran again after block b of ns: add ns under t's stacks and its waker's,
 * if a wakeup after the block began was seen (not for a preemption). */
static __always_inline void count(bool raw, struct task_struct *t,
				  const struct block *b, __u64 ns)
{
	__u32 tid = task_read(raw, t, pid);
	struct offwake_key key = {};
	struct wake *w;

	if (raw)
		w = bpf_map_lookup_elem(&wakes_hash, &tid);
	else
		w = bpf_task_storage_get(&wakes, t, 0, 0);
	if (!w || w->ns < b->ns)
		return;
	key.target.tgid = task_nr(raw, t, false);
	key.target.tid = task_nr(raw, t, true);
	key.target.kern_stack_id = b->kern_stack_id;
	key.target.user_stack_id = b->user_stack_id;
	key.waker_tgid = w->tgid;
	key.waker_tid = w->tid;
	key.waker_kern_stack_id = w->kern_stack_id;
	key.waker_user_stack_id = w->user_stack_id;
	__builtin_memcpy(key.waker_comm, w->comm, sizeof(key.waker_comm));
	key.waker_context = w->context;
	__builtin_memcpy(key.waker_frames, w->frames, sizeof(key.waker_frames));
	if (raw)
		bpf_map_delete_elem(&wakes_hash, &tid);
	else
		w->ns = 0;
	add_block(raw, &counts, &key, t, ns);
}

static __always_inline void switched(bool raw, void *ctx,
				     struct task_struct *prev,
				     struct task_struct *next)
{
	struct block b;
	__u64 ns;

	blocked(raw, ctx, prev);
	if (resumed(raw, next, &b, &ns))
		count(raw, next, &b, ns);
}

SEC("tp_btf/sched_waking")
int BPF_PROG(handle_waking, struct task_struct *p)
{
	waking(false, ctx, p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	switched(false, ctx, prev, next);
	return 0;
}

SEC("raw_tp/sched_waking")
int BPF_PROG(handle_waking_raw, struct task_struct *p)
{
	waking(true, ctx, p);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(handle_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	switched(true, ctx, prev, next);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
