// SPDX-License-Identifier: GPL-2.0
/* runqlat: histograms of run queue latency, optionally one per key. */
#include "runq_common.bpf.h"
#include "maths.bpf.h"
#include "keyed_hist.bpf.h"

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
	__u64 key = hist_key(raw, t);
	struct blamed blamed;
	struct hist *h;

	h = hist_add(t, key, w->ns);
	if (h && targ_blame) {
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
