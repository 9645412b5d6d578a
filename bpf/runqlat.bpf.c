// SPDX-License-Identifier: GPL-2.0
/* runqlat: histograms of run queue latency, optionally one per key. */
#include "runq_common.bpf.h"
#include "maths.bpf.h"

const volatile enum per_kind targ_per = PER_NONE;
const volatile bool targ_ms = false;		/* ms instead of us */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, struct hist);
} hists SEC(".maps");

/* See runq.h for the layout. */
static __always_inline __u32 hist_bucket(__u64 v)
{
	__u32 m;

	if (v < HIST_SUB)
		return v;
	m = log2_u64(v);
	if (m >= HIST_LOG2_SLOTS)
		return HIST_BUCKETS - 1;
	return HIST_SUB * (m - 1) + ((v >> (m - 2)) & (HIST_SUB - 1));
}

static __always_inline __u64 hist_key(bool raw, struct task_struct *t)
{
	struct pid *pid;
	unsigned int level;

	switch (targ_per) {
	case PER_PID:
		return (__u32)task_read(raw, t, tgid);
	case PER_TID:
		return (__u32)task_read(raw, t, pid);
	case PER_PIDNS:
		/* t's own pid namespace: the deepest one its pid lives in;
		 * 0 for an exiting thread already detached from its pid */
		pid = BPF_CORE_READ(t, thread_pid);
		level = BPF_CORE_READ(pid, level);
		return BPF_CORE_READ(pid, numbers[level].ns, ns.inum);
	case PER_CGROUP:
		return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	default:
		return 0;
	}
}

/* Slow path, once per key: insert an empty histogram named after t. */
static __always_inline struct hist *hist_create(struct task_struct *t,
						__u64 *key)
{
	struct hist h;
	long err;

	__builtin_memset(&h, 0, sizeof(h));
	BPF_CORE_READ_INTO(&h.comm, t, comm);
	err = bpf_map_update_elem(&hists, key, &h, BPF_NOEXIST);
	/* EEXIST: another CPU won the race; anything else loses the sample */
	if (err && err != -EEXIST) {
		stat_inc(RUNQ_STAT_HIST_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&hists, key);
}

static __always_inline void record(bool raw, struct task_struct *t,
				   __u64 delta_ns)
{
	__u64 key = hist_key(raw, t);
	struct hist *h;
	__u64 b;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		h = hist_create(t, &key);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->sum_ns, delta_ns);
	delta_ns /= targ_ms ? 1000000 : 1000;
	/* hist_bucket() clamps too, but the 6.1 verifier loses its bound */
	b = clamp_index(hist_bucket(delta_ns), HIST_BUCKETS);
	__sync_fetch_and_add(&h->buckets[b], 1);
}

static __always_inline void runq_measured(bool raw, struct task_struct *prev,
					  struct task_struct *next,
					  __u64 delta_ns)
{
	record(raw, next, delta_ns);
}

char LICENSE[] SEC("license") = "GPL";
