// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of cloudflare/ebpf_exporter's tracing examples:
 * a demo program marks the processes to trace through a USDT probe of its
 * own (here ./demo, which is not there: the probe cannot attach), which
 * puts them in marked_tgids with a tag; the tracing program reads the mark.
 * Each getpgid(PROBE) of a marked process counts in marked_calls_total,
 * keyed by its tag. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

#define NR_getpgid 121	/* x86_64 */
#define PROBE 0x700002

struct mark {
	__u64 tag;
	__u64 since_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct mark);
} marked_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} marked_calls_total SEC(".maps");

SEC("usdt/./demo:pyrunq_demo:mark")
int BPF_USDT(mark_me, __u64 tag)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct mark m = {.tag = tag, .since_ns = bpf_ktime_get_ns()};

	bpf_map_update_elem(&marked_tgids, &tgid, &m, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *count;
	struct mark *m;

	if (id != NR_getpgid || PT_REGS_PARM1_CORE_SYSCALL(regs) != PROBE)
		return 0;
	m = bpf_map_lookup_elem(&marked_tgids, &tgid);
	if (!m)
		return 0;
	count = bpf_map_lookup_elem(&marked_calls_total, &m->tag);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&marked_calls_total, &m->tag, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
