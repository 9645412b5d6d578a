// SPDX-License-Identifier: GPL-2.0
/* runqslower: one event per run queue delay of at least min_us. */
#include "runq_common.bpf.h"

const volatile __u64 min_us = 0;	/* 0: every delay */

/* No __type(value): libbpf 1.1 rejects it on ring buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Keeps struct event in the object's BTF for user space. */
const struct event *const unused_event __attribute__((unused));

static __always_inline void emit(bool raw, struct task_struct *prev,
				 struct task_struct *next, __u64 delta_ns)
{
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(RUNQ_STAT_LOST);
		return;
	}
	BPF_CORE_READ_INTO(&e->task, next, comm);
	BPF_CORE_READ_INTO(&e->prev_task, prev, comm);
	e->delta_ns = delta_ns;
	e->pid = task_read(raw, next, tgid);
	e->tid = task_read(raw, next, pid);
	e->prev_pid = task_read(raw, prev, tgid);
	e->prev_tid = task_read(raw, prev, pid);
	e->cpu = bpf_get_smp_processor_id();
	e->__pad = 0;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void runq_measured(bool raw, struct task_struct *prev,
					  struct task_struct *next,
					  __u64 delta_ns)
{
	if (delta_ns >= min_us * 1000)
		emit(raw, prev, next, delta_ns);
}

char LICENSE[] SEC("license") = "GPL";
