// SPDX-License-Identifier: GPL-2.0
/* Test object for SEC("perf_event") programs, as profile and runqlen use
 * them: the program says nothing of the event it runs on; user space opens a
 * software CPU clock per CPU at some frequency. Each sample counts in
 * samples[the CPU it ran on], so the test can compare the counts with
 * frequency x CPUs x seconds.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_CPUS 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, __u64);
} samples SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 *n = bpf_map_lookup_elem(&samples, &cpu);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
