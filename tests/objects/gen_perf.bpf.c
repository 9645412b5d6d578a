// SPDX-License-Identifier: GPL-2.0
/* Test object for PerfBuffer: one perf event array (as most libbpf-tools
 * stream their events) of struct perf_rec. The test fires it with
 * getpgid(seq) from the process whose tgid is in target_tgid; every trigger
 * counts in `emitted`, and every sample the kernel could not store (its CPU's
 * buffer was full) in `failed`, which user space must see as lost.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

struct perf_rec {
	__u64 seq;
	__u32 tgid;
	__u32 cpu;
	char comm[16];
};

const volatile __u32 target_tgid = 0;
__u64 emitted = 0;		/* .bss: triggers seen */
__u64 failed = 0;		/* .bss: samples the kernel dropped */

/* A local variable leaves no BTF: this keeps struct perf_rec in the object's. */
const struct perf_rec *unused_perf_rec __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct perf_rec e;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	__builtin_memset(&e, 0, sizeof(e));
	e.seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	e.tgid = pid_tgid >> 32;
	e.cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	__sync_fetch_and_add(&emitted, 1);
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e)) < 0)
		__sync_fetch_and_add(&failed, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
