// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of ebpf_exporter's examples (llcstat, and the
 * others that count perf events): each program's section names the perf
 * event it samples, SEC("perf_event/type=T,config=C,..."), which libbpf
 * does not read (it knows only a bare SEC("perf_event")): the loader opens
 * that event on every CPU and attaches the program there. Here the
 * software page-fault event (type 1, PERF_TYPE_SOFTWARE; config 2,
 * PERF_COUNT_SW_PAGE_FAULTS), every fault a sample (sample_period=1), and
 * the CPU clock at 1000 Hz, both counted for the process in target_tgid;
 * a section that names its event with an item no loader knows, and one
 * that names a software event no kernel has (config 999).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);	/* 0: page faults, 1: clock ticks */
	__type(value, u64);
} samples_total SEC(".maps");

static int count(u32 key)
{
	u64 one = 1, *n;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	n = bpf_map_lookup_elem(&samples_total, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&samples_total, &key, &one, BPF_NOEXIST);
	return 0;
}

SEC("perf_event/type=1,config=2,sample_period=1")
int on_page_fault(struct bpf_perf_event_data *ctx)
{
	return count(0);
}

SEC("perf_event/type=1,config=0,frequency=1000")
int on_clock(struct bpf_perf_event_data *ctx)
{
	return count(1);
}

SEC("perf_event/type=1,config=0,colour=3")
int on_nothing(struct bpf_perf_event_data *ctx)
{
	return count(2);
}

SEC("perf_event/type=1,config=999,frequency=1")
int on_no_such_event(struct bpf_perf_event_data *ctx)
{
	return count(3);
}

char LICENSE[] SEC("license") = "GPL";
