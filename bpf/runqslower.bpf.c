// SPDX-License-Identifier: GPL-2.0
/* runqslower: one event per run queue delay of at least min_us. */
#include "runq_common.bpf.h"

const volatile __u64 min_us = 0;	/* 0: every delay */

/* No __type(value): libbpf 1.1 rejects it on ring buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Keep struct event and struct blame_event in the object's BTF for user space. */
const struct event *const unused_event __attribute__((unused));
const struct blame_event *const unused_blame_event __attribute__((unused));

static __always_inline void fill(bool raw, struct event *e,
				 struct task_struct *prev,
				 struct task_struct *next, __u64 delta_ns)
{
	BPF_CORE_READ_INTO(&e->task, next, comm);
	BPF_CORE_READ_INTO(&e->prev_task, prev, comm);
	e->delta_ns = delta_ns;
	e->pid = task_read(raw, next, tgid);
	e->tid = task_read(raw, next, pid);
	e->prev_pid = task_read(raw, prev, tgid);
	e->prev_tid = task_read(raw, prev, pid);
	e->cpu = bpf_get_smp_processor_id();
	e->__pad = 0;
}

/* Each part of the wait becomes one of the event's culprits. */
static __always_inline void blame_part(void *ctx, const struct who *who,
				       __u32 kind, __u64 ns)
{
	struct blame_event *b = ctx;
	struct culprit *c;

	if (b->nculprits >= BLAME_SEGS)
		return;
	c = &b->culprits[b->nculprits & (BLAME_SEGS - 1)];
	c->ns = ns;
	c->who = *who;
	c->who.kind = kind;
	b->nculprits++;
}

static __always_inline void blame_rest(void *ctx, __u32 why, __u64 ns)
{
	struct blame_event *b = ctx;

	b->unattributed_ns += ns;
	if (!b->why)	/* the first reason: a migration comes before history */
		b->why = why;
}

static __always_inline void emit(bool raw, struct task_struct *prev,
				 struct task_struct *next, struct wait *w)
{
	struct blame_event *b;
	struct event *e;

	if (!targ_blame) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			stat_inc(RUNQ_STAT_LOST);
			return;
		}
		fill(raw, e, prev, next, w->ns);
		bpf_ringbuf_submit(e, 0);
		return;
	}
	b = bpf_ringbuf_reserve(&events, sizeof(*b), 0);
	if (!b) {
		stat_inc(RUNQ_STAT_LOST);
		return;
	}
	fill(raw, &b->e, prev, next, w->ns);
	b->unattributed_ns = 0;
	b->why = BLAME_WHY_NONE;
	b->nculprits = 0;
	blame_wait(raw, next, w, b);
	bpf_ringbuf_submit(b, 0);
}

static __always_inline void runq_measured(bool raw, struct task_struct *prev,
					  struct task_struct *next,
					  struct wait *w)
{
	if (w->ns >= min_us * 1000)
		emit(raw, prev, next, w);
}

char LICENSE[] SEC("license") = "GPL";
