// SPDX-License-Identifier: GPL-2.0
/* Test object in cloudflare/ebpf_exporter's style: programs that count only
 * the cgroups their user space selects. ebpf_exporter fills one map from
 * its YAML's cgroup_id_map (the cgroups whose path matches a regexp):
 * here either counted_cgroups (type hash: cgroup id -> 1) or
 * counted_storage (type cgrp_storage: 1 in the cgroup's storage), as the
 * YAML names one. Each getpgid(PROBE) counts, by the caller's cgroup id,
 * in getpgid_matched_total when counted_cgroups holds the cgroup, in
 * getpgid_stored_total when its storage holds 1, else in
 * getpgid_unmatched_total. PROBE is above any pid (pid_max is at most
 * 2^22): the call fails, and nothing else on the machine makes it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define PROBE 0x700001
#define CGRP_STORAGE 32	/* BPF_MAP_TYPE_CGRP_STORAGE (6.2+): older vmlinux.h lack it */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} counted_cgroups SEC(".maps");

struct {
	__uint(type, CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} counted_storage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} getpgid_matched_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} getpgid_stored_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} getpgid_unmatched_total SEC(".maps");

static void add(void *map, __u64 *key)
{
	__u64 one = 1, *count = bpf_map_lookup_elem(map, key);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 cgroup_id, *stored;

	if (id != NR_getpgid || PT_REGS_PARM1_CORE_SYSCALL(regs) != PROBE)
		return 0;
	cgroup_id = bpf_get_current_cgroup_id();
	stored = bpf_cgrp_storage_get(&counted_storage, task->cgroups->dfl_cgrp, 0, 0);
	if (bpf_map_lookup_elem(&counted_cgroups, &cgroup_id))
		add(&getpgid_matched_total, &cgroup_id);
	else if (stored && *stored)
		add(&getpgid_stored_total, &cgroup_id);
	else
		add(&getpgid_unmatched_total, &cgroup_id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
