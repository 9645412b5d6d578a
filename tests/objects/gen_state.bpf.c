// SPDX-License-Identifier: GPL-2.0
/* Test object: working state beside results, as the C tools keep start times
 * between two probes. getpgid(value) from the process in `target_tgid`
 * counts the value's parity in `counts` (a result), ends the pending entry of
 * value - 1 if there is one (deletes it and emits a struct pair to `events`),
 * and leaves its own entry in `pending`. `pending` declares no max_entries:
 * user space sizes it before load, as cpudist does with its maps.
 * `entered` is handed from one probe to another without deletes, as
 * syscount keeps its start times: sys_enter writes it, sys_exit only reads
 * it and counts the getpgid() exits of the threads it saw enter in `exits`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

struct pair {
	__u64 first;
	__u64 second;
};

const volatile __u32 target_tgid = 0;

const struct pair *unused_pair __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} entered SEC(".maps");

__u64 exits = 0;

SEC("raw_tp/sys_enter")
int BPF_PROG(pair_up, struct pt_regs *regs, long id)
{
	__u64 value, prev, now, one = 1, *count;
	struct pair *p;
	__u32 parity, tid;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	parity = value & 1;
	count = bpf_map_lookup_elem(&counts, &parity);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &parity, &one, BPF_NOEXIST);

	prev = value - 1;
	if (bpf_map_lookup_elem(&pending, &prev)) {
		bpf_map_delete_elem(&pending, &prev);
		p = bpf_ringbuf_reserve(&events, sizeof(*p), 0);
		if (p) {
			p->first = prev;
			p->second = value;
			bpf_ringbuf_submit(p, 0);
		}
	}
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&pending, &value, &now, BPF_ANY);
	tid = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&entered, &tid, &now, BPF_ANY);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(count_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = bpf_get_current_pid_tgid();

	if (BPF_CORE_READ(regs, orig_ax) != NR_getpgid)
		return 0;
	if (bpf_map_lookup_elem(&entered, &tid))
		__sync_fetch_and_add(&exits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
