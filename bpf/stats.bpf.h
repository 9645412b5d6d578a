/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a tool's programs had to drop or could not count, by reason: per-CPU
 * counters indexed by the tool's enum (declared in its header), which user
 * space sums (pyrunq.bpf.Map.counters). Define STATS_MAX, the number of
 * reasons, before including this.
 */
#ifndef PYRUNQ_STATS_BPF_H
#define PYRUNQ_STATS_BPF_H

#ifndef STATS_MAX
#error "define STATS_MAX (the number of reasons) before including stats.bpf.h"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *cnt = bpf_map_lookup_elem(&stats, &idx);

	if (cnt)
		(*cnt)++;
}

#endif
