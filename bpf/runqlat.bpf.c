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

/* With blame: who took the CPU from each key's tasks (user space sizes it).
 * Not preallocated: an entry is made once per (key, culprit), and most of
 * the table is never used. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct blame_key);
	__type(value, struct blame_val);
} blames SEC(".maps");

/* What blame_part() adds to: the wait's histogram, under its key. */
struct blamed {
	struct hist *h;
	__u64 key;
};

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

/* The culprit as fine as the histogram's key (see struct blame_key). */
static __always_inline __u32 culprit_id(const struct who *who)
{
	switch (targ_per) {
	case PER_TID:
		return who->tid;
	case PER_CGROUP:
		return 0;
	default:
		return who->pid;
	}
}

/* Slow path, once per (key, culprit): insert it with no time yet. */
static __always_inline struct blame_val *blame_create(struct blame_key *key,
						      const struct who *who)
{
	struct blame_val v = {};
	long err;

	__builtin_memcpy(v.comm, who->comm, sizeof(v.comm));
	err = bpf_map_update_elem(&blames, key, &v, BPF_NOEXIST);
	if (err && err != -EEXIST)
		return NULL;
	return bpf_map_lookup_elem(&blames, key);
}

static __always_inline void blame_rest(void *ctx, __u32 why, __u64 ns)
{
	struct blamed *b = ctx;

	__sync_fetch_and_add(&b->h->blame_ns[BLAME_UNATTRIBUTED], ns);
}

/* The part goes to the key's kind, and to the culprit's entry (not for
 * idle); a culprit the table has no room for leaves it unattributed. */
static __always_inline void blame_part(void *ctx, const struct who *who,
				       __u32 kind, __u64 ns)
{
	struct blame_key key = {};
	struct blamed *b = ctx;
	struct blame_val *v;

	if (kind == BLAME_IDLE) {
		__sync_fetch_and_add(&b->h->blame_ns[BLAME_IDLE], ns);
		return;
	}
	key.victim = b->key;
	key.cgroup_id = who->cgroup_id;
	key.culprit = culprit_id(who);
	key.kind = kind;
	v = bpf_map_lookup_elem(&blames, &key);
	if (!v)
		v = blame_create(&key, who);
	if (!v) {
		blame_unattributed(ctx, BLAME_WHY_FULL, ns);
		return;
	}
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&b->h->blame_ns[clamp_index(kind, BLAME_KINDS)], ns);
}

static __always_inline void record(bool raw, struct task_struct *t,
				   struct wait *w)
{
	__u64 key = hist_key(raw, t), delta;
	struct blamed blamed;
	struct hist *h;
	__u64 b;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		h = hist_create(t, &key);
		if (!h)
			return;
	}
	__sync_fetch_and_add(&h->sum_ns, w->ns);
	delta = w->ns / (targ_ms ? 1000000 : 1000);
	/* hist_bucket() clamps too, but the 6.1 verifier loses its bound */
	b = clamp_index(hist_bucket(delta), HIST_BUCKETS);
	__sync_fetch_and_add(&h->buckets[b], 1);
	if (targ_blame) {
		blamed.h = h;
		blamed.key = key;
		blame_wait(raw, t, w, &blamed);
	}
}

static __always_inline void runq_measured(bool raw, struct task_struct *prev,
					  struct task_struct *next,
					  struct wait *w)
{
	record(raw, next, w);
}

char LICENSE[] SEC("license") = "GPL";
