/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a tool's programs had to drop or could not count, by reason: per-CPU
 * counters indexed by the tool's enum (declared in its header), which user
 * space sums (pyrunq.bpf.Map.counters) and names after the enumerators,
 * lowercase and without the prefix they share: RUNQ_STAT_CLOCK_SKEW is
 * "clock_skew" in the Python API and in metric labels, so renaming an
 * enumerator renames a reason there. Define STATS_ENUM, the enum's tag, and
 * STATS_MAX, its last enumerator (the number of reasons), before including this.
 */
#ifndef PYRUNQ_STATS_BPF_H
#define PYRUNQ_STATS_BPF_H

#if !defined(STATS_ENUM) || !defined(STATS_MAX)
#error "define STATS_ENUM (the enum's tag) and STATS_MAX (the number of reasons) before including stats.bpf.h"
#endif

/* The key stays a plain integer: the kernel takes no other BTF type (not even
 * an enum) as an array's key, and libbpf would then create the map without BTF. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_MAX);
	__type(key, __u32);	/* enum STATS_ENUM */
	__type(value, __u64);
} stats SEC(".maps");

/* Never set. It keeps enum STATS_ENUM in the object's BTF, which holds only
 * the types something uses; user space finds the enum through this variable,
 * named after the map: "<map>_keys". */
const enum STATS_ENUM *const stats_keys __attribute__((unused));

static __always_inline void stat_inc(enum STATS_ENUM reason)
{
	__u32 idx = reason;
	__u64 *cnt = bpf_map_lookup_elem(&stats, &idx);

	if (cnt)
		(*cnt)++;
}

#endif
