// SPDX-License-Identifier: GPL-2.0
/* Test object: a USDT program whose section names no probe, as libbpf-tools'
 * javagc declares its own (its user space attaches them to a JVM's
 * hotspot:gc__begin...). Attached to tests/progs/usdt.c's pyrunq:tick(i),
 * it counts the ticks and sums their argument, and sends each as a struct
 * tick through a perf event array: a struct that only a map's value type
 * puts in the object's BTF (javagc's struct data_t is so). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

struct tick {
	__u64 i;
	__u32 pid;
};

__u64 ticks = 0;
__u64 sum = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct tick);
} last SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} out SEC(".maps");

SEC("usdt")
int BPF_USDT(on_tick, long i)
{
	struct tick t = {.i = i, .pid = bpf_get_current_pid_tgid() >> 32};

	__sync_fetch_and_add(&ticks, 1);
	__sync_fetch_and_add(&sum, i);
	bpf_map_update_elem(&last, &t.pid, &t, BPF_ANY);
	bpf_perf_event_output(ctx, &out, BPF_F_CURRENT_CPU, &t, sizeof(t));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
