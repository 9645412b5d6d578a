/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Histograms of durations, one per key (the whole, a process, a thread, a
 * PID namespace or a cgroup: targ_per), in the log-linear buckets of
 * struct hist (runq.h), cumulative: user space takes differences. Shared by
 * runqlat and cpudist. Include after task_filter.bpf.h and maths.bpf.h;
 * counts a full table under RUNQ_STAT_HIST_FULL.
 */
#ifndef PYRUNQ_KEYED_HIST_BPF_H
#define PYRUNQ_KEYED_HIST_BPF_H

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
		return task_nr(raw, t, false);
	case PER_TID:
		return task_nr(raw, t, true);
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

/* What a new histogram starts from: too large for the BPF stack. */
static const struct hist empty_hist;

/* Slow path, once per key: insert an empty histogram named after t. */
static __always_inline struct hist *hist_create(struct task_struct *t,
						__u64 *key)
{
	struct hist *h;
	long err;

	err = bpf_map_update_elem(&hists, key, &empty_hist, BPF_NOEXIST);
	/* EEXIST: another CPU won the race; anything else loses the sample */
	if (err && err != -EEXIST) {
		stat_inc(RUNQ_STAT_HIST_FULL);
		return NULL;
	}
	h = bpf_map_lookup_elem(&hists, key);
	if (h && !err)
		BPF_CORE_READ_INTO(&h->comm, t, comm);
	return h;
}

/* Add ns (scaled to targ_ms's unit) to key's histogram, made for t if new. */
static __always_inline struct hist *hist_add(struct task_struct *t, __u64 key,
					     __u64 ns)
{
	struct hist *h;
	__u64 b;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		h = hist_create(t, &key);
		if (!h)
			return NULL;
	}
	__sync_fetch_and_add(&h->sum_ns, ns);
	ns /= targ_ms ? 1000000 : 1000;
	/* hist_bucket() clamps too, but the 6.1 verifier loses its bound */
	b = clamp_index(hist_bucket(ns), HIST_BUCKETS);
	__sync_fetch_and_add(&h->buckets[b], 1);
	return h;
}

#endif
