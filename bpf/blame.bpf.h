/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who held the CPU while a task waited for it. Each CPU keeps a ring of its
 * last BLAME_SEGS run segments: at every switch on a CPU, the task switched
 * in begins a segment that lasts until the next switch there. When a waiting
 * task is switched in, its wait [then, now) is split among the segments that
 * overlap it, newest first, in a bounded loop; what no kept segment covers
 * (a wait across more switches than the ring holds), or a wait that moved
 * between CPUs, is unattributed, with its reason counted. So the parts and
 * the remainder add up to the wait exactly, and nothing is sampled.
 *
 * The ring is per CPU and written only by its CPU's sched_switch, which also
 * reads it: no lock. Included by runq_common.bpf.h; the tool defines
 * blame_part() and blame_rest(): what to do with each part of a wait.
 */
#ifndef __BLAME_BPF_H
#define __BLAME_BPF_H

#define PF_KTHREAD 0x00200000	/* a kernel thread (linux/sched.h) */

/* Attribute waits (and keep the rings): frozen at load, off costs nothing. */
const volatile bool targ_blame = false;

struct segment {
	__u64 start_ns;
	struct who who;
};

struct blame_ring {
	__u64 count;			/* segments ever begun here */
	struct segment segs[BLAME_SEGS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blame_ring);
} blame_rings SEC(".maps");

/* Waits with an unattributed part, by enum blame_why (user space sums CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BLAME_WHY_MAX);
	__type(key, __u32);
	__type(value, __u64);
} unattributed SEC(".maps");

/* Names the elements of `unattributed` (see stats.bpf.h), and keeps enum
 * blame_kind in the object's BTF: user space names kinds after it. */
const enum blame_why *const unattributed_keys __attribute__((unused));
const enum blame_kind *const blame_kinds __attribute__((unused));

/* What the including tool does with a part of a wait: who ran for ns, as
 * kind; and with the rest, which nothing kept explains, for reason why. */
static __always_inline void blame_part(void *ctx, const struct who *who,
				       __u32 kind, __u64 ns);
static __always_inline void blame_rest(void *ctx, __u32 why, __u64 ns);

static __always_inline void segment_begin(bool raw, struct blame_ring *r,
					  struct task_struct *t, __u64 start)
{
	struct segment *s = &r->segs[r->count & (BLAME_SEGS - 1)];

	s->start_ns = start;
	s->who.tid = task_read(raw, t, pid);
	s->who.pid = task_read(raw, t, tgid);
	s->who.cgroup_id = task_cgroup(raw, t);
	if (!s->who.tid)
		s->who.kind = BLAME_IDLE;
	else if (task_read(raw, t, flags) & PF_KTHREAD)
		s->who.kind = BLAME_KERNEL;
	else
		s->who.kind = BLAME_OTHER;
	if (raw)
		BPF_CORE_READ_INTO(&s->who.comm, t, comm);
	else	/* plain loads through the BTF pointer: no helper call */
		__builtin_memcpy(s->who.comm, t->comm, sizeof(s->who.comm));
	r->count++;
}

static __always_inline struct blame_ring *blame_ring(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&blame_rings, &zero);
}

/*
 * A switch on this CPU, before anything else: at the first one seen here,
 * prev has held the CPU since tracing began (start 0), and every wait
 * measured began after that.
 */
static __always_inline void blame_switch(bool raw, struct task_struct *prev)
{
	struct blame_ring *r = blame_ring();

	if (r && !r->count)
		segment_begin(raw, r, prev, 0);
}

/* next is switched in on this CPU at now: it holds the CPU from now on. */
static __always_inline void blame_ran(bool raw, struct task_struct *next,
				      __u64 now)
{
	struct blame_ring *r = blame_ring();

	if (r)
		segment_begin(raw, r, next, now);
}

static __always_inline void blame_unattributed(void *ctx, __u32 why, __u64 ns)
{
	__u64 *cnt = bpf_map_lookup_elem(&unattributed, &why);

	if (cnt)
		(*cnt)++;
	blame_rest(ctx, why, ns);
}

/*
 * Split w (t's wait, ending now on this CPU) among the segments that ran
 * here since it was queued here; the part on another CPU's queue before a
 * migration is unattributed.
 */
static __always_inline void blame_wait(bool raw, struct task_struct *t,
				       struct wait *w, void *ctx)
{
	__u64 end = w->now, cgroup, start;
	struct blame_ring *r;
	struct segment *s;
	__u32 i, kind;

	if (w->cpu != bpf_get_smp_processor_id() || w->since > w->now) {
		blame_unattributed(ctx, BLAME_WHY_MIGRATED, w->ns);
		return;
	}
	if (w->since > w->then) {
		blame_unattributed(ctx, BLAME_WHY_MIGRATED, w->since - w->then);
		w->then = w->since;
	}
	r = blame_ring();
	if (!r) {
		blame_unattributed(ctx, BLAME_WHY_HISTORY, w->ns);
		return;
	}
	/* the newest segment must be the task switched out now. If it is
	 * not, a switch here was not seen: on some hosts no tracepoint fires
	 * in the context of some tasks (docs/design.md), so a switch away
	 * from one is missed. Its task ran from the segment's start, then
	 * others until now, for times nobody knows: unattributed. The
	 * segments before it were seen whole. */
	s = &r->segs[(r->count - 1) & (BLAME_SEGS - 1)];
	i = 0;
	if (s->who.tid != w->prev_tid) {
		start = s->start_ns > w->then ? s->start_ns : w->then;
		blame_unattributed(ctx, BLAME_WHY_UNSEEN, end - start);
		if (s->start_ns <= w->then)
			return;
		end = s->start_ns;
		i = 1;
	}
	cgroup = task_cgroup(raw, t);
	for (; i < BLAME_SEGS && i < r->count; i++) {
		s = &r->segs[(r->count - 1 - i) & (BLAME_SEGS - 1)];
		start = s->start_ns > w->then ? s->start_ns : w->then;
		kind = s->who.kind;
		if (kind == BLAME_OTHER && s->who.cgroup_id == cgroup)
			kind = BLAME_SELF;
		if (end > start)
			blame_part(ctx, &s->who, kind, end - start);
		if (s->start_ns <= w->then)
			return;
		end = s->start_ns;
	}
	if (end > w->then)
		blame_unattributed(ctx, BLAME_WHY_HISTORY, end - w->then);
}

#endif /* __BLAME_BPF_H */
