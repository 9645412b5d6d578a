// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of cilium/ebpf's examples: each event map names
 * its record on itself, __type(value, struct ...), the way bpf2go finds the
 * Go type to generate; a ring buffer and a perf event array without key or
 * value sizes. libbpf hands those sizes to the kernel, which refuses such a
 * map (EINVAL); cilium/ebpf's loader drops them first, and so must pyrunq.
 * Neither struct is named after its map and no global points to one: the
 * maps alone say what their records are. Fired by getpgid(value) from the
 * process in target_tgid, through the syscall's tracepoint read with a
 * context struct of its own, as cilium's tracepoint example reads its own.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual MIT/GPL";

const volatile u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
	__type(value, struct exec_info);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(value, struct pgid_line);
} lines SEC(".maps");

/* The records, declared after the maps as cilium's tcprtt declares its own. */
struct exec_info {
	u32 pid;
	u64 value;
	u8 comm[16];
};

struct pgid_line {
	u32 tgid;
	u32 cpu;
	u64 value;
	u64 twice;
};

/* /sys/kernel/tracing/events/syscalls/sys_enter_getpgid/format */
struct getpgid_args {
	u64 common; /* the first 8 bytes are not ours to read */
	int nr;
	u64 pid;
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int getpgid_enter(struct getpgid_args *args)
{
	u64 id = bpf_get_current_pid_tgid();
	struct exec_info *info;
	struct pgid_line line = {};

	if (id >> 32 != target_tgid)
		return 0;
	info = bpf_ringbuf_reserve(&events, sizeof(struct exec_info), 0);
	if (info) {
		info->pid = id >> 32;
		info->value = args->pid;
		bpf_get_current_comm(&info->comm, sizeof(info->comm));
		bpf_ringbuf_submit(info, 0);
	}
	line.tgid = id >> 32;
	line.cpu = bpf_get_smp_processor_id();
	line.value = args->pid;
	line.twice = 2 * args->pid;
	bpf_perf_event_output(args, &lines, BPF_F_CURRENT_CPU, &line, sizeof(line));
	return 0;
}
