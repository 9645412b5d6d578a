// SPDX-License-Identifier: GPL-2.0
/*
 * runqlen: how many tasks wait on a CPU's run queue, sampled on every CPU by
 * a software CPU clock (user space opens one per CPU at the frequency asked
 * for). The length is the CPU's: struct rq's nr_running, every runnable task
 * of every class and task group on that CPU, less the one running. Never a
 * task group's cfs_rq, whose count is that group's alone (inside a
 * container: the container's) and whose nr_running is gone since 6.13.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "runqlen.h"

/* cfs_rq without group scheduling (CONFIG_FAIR_GROUP_SCHED), which has no
 * rq pointer: then the only cfs_rq of a CPU is the one inside its rq. */
struct rq___nogroups {
	struct cfs_rq cfs;
} __attribute__((preserve_access_index));

/* One histogram per CPU, each written only by its own CPU's clock. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct runqlen_hist);
} hists SEC(".maps");

/*
 * The CPU's run queue, found from the task running on it: its cfs_rq (its
 * task group's on this CPU; every task has one, whatever its class, the idle
 * task too) points to the CPU's rq. The per-CPU variable `runqueues` would be
 * shorter, but a typed ksym needs data symbols in kallsyms
 * (CONFIG_KALLSYMS_ALL), which Debian's kernels lack.
 */
static __always_inline __u64 cpu_nr_running(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct cfs_rq *cfs_rq = BPF_CORE_READ(t, se.cfs_rq);
	struct rq *rq;

	if (bpf_core_field_exists(cfs_rq->rq))
		rq = BPF_CORE_READ(cfs_rq, rq);
	else
		rq = (void *)cfs_rq - bpf_core_field_offset(struct rq___nogroups, cfs);
	return BPF_CORE_READ(rq, nr_running);
}

SEC("perf_event")
int sample(struct bpf_perf_event_data *ctx)
{
	struct runqlen_hist *h;
	__u32 zero = 0;
	__u64 len;

	len = cpu_nr_running();
	if (len > 0)
		len--;	/* the task running now does not wait */
	if (len >= RUNQLEN_SLOTS)
		len = RUNQLEN_SLOTS - 1;
	h = bpf_map_lookup_elem(&hists, &zero);
	if (h)
		h->slots[len]++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
