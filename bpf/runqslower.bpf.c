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
		stat_inc(STAT_LOST);
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

SEC("tp_btf/sched_wakeup")
int BPF_PROG(handle_wakeup, struct task_struct *p)
{
	runq_wakeup(false, p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new, struct task_struct *p)
{
	runq_wakeup(false, p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	__u64 delta_ns;

	if (runq_switch(false, preempt, prev, next, &delta_ns) &&
	    delta_ns >= min_us * 1000)
		emit(false, prev, next, delta_ns);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(handle_wakeup_raw, struct task_struct *p)
{
	runq_wakeup(true, p);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(handle_wakeup_new_raw, struct task_struct *p)
{
	runq_wakeup(true, p);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(handle_switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	__u64 delta_ns;

	if (runq_switch(true, preempt, prev, next, &delta_ns) &&
	    delta_ns >= min_us * 1000)
		emit(true, prev, next, delta_ns);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
