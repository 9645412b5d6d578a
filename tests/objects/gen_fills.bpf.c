// SPDX-License-Identifier: GPL-2.0
/* Test object for what an object's own user space fills before its programs
 * can do anything, in the style of libbpf-tools' cpufreq (a table of
 * frequencies its user space reads from sysfs; a program on cpu_frequency
 * keeps it up to date when a CPU changes speed), ebpf_exporter's tables its
 * user space writes (a hash map the programs only look up), a program array
 * its user space puts tail-call targets into, and a user ring buffer it
 * writes records to. Fired by getpgid(value) from the process in
 * target_tgid: value & 3 picks a "CPU" of freqs_mhz, whose frequency is
 * counted in by_mhz; a watched value adds its weight to weights; each call
 * tail-calls slot 0 of tail_calls, which counts in tail_calls_made; value
 * 99 drains the user ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_CPU_NR 4

struct watch {
	__u32 weight;
	char label[8];
};

const volatile __u32 target_tgid = 0;
__u32 freqs_mhz[MAX_CPU_NR] = {};	/* .bss: user space fills it */
__u64 tail_calls_made = 0;
__u64 drained = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);	/* MHz */
	__type(value, __u64);
} by_mhz SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct watch);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} weights SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} tail_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} requests SEC(".maps");

static void add(void *map, __u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, n);
	else
		bpf_map_update_elem(map, &key, &n, BPF_NOEXIST);
}

static long on_request(struct bpf_dynptr *dynptr, void *ctx)
{
	__sync_fetch_and_add(&drained, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct watch *w;
	__u32 value, cpu;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	cpu = value & (MAX_CPU_NR - 1);
	add(&by_mhz, freqs_mhz[cpu], 1);
	w = bpf_map_lookup_elem(&watched, &value);
	if (w)
		add(&weights, value, w->weight);
	if (value == 99)
		bpf_user_ringbuf_drain(&requests, on_request, NULL, 0);
	bpf_tail_call(ctx, &tail_calls, 0);
	return 0;
}

/* Reached by tail call only: its section names no tracepoint. */
SEC("raw_tp")
int tail_target(void *ctx)
{
	__sync_fetch_and_add(&tail_calls_made, 1);
	return 0;
}

/* Keeps freqs_mhz up to date when a CPU changes speed (never on most VMs). */
SEC("raw_tp/cpu_frequency")
int BPF_PROG(on_cpu_frequency, unsigned int state, unsigned int cpu_id)
{
	freqs_mhz[cpu_id & (MAX_CPU_NR - 1)] = state / 1000;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
