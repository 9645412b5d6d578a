// SPDX-License-Identifier: GPL-2.0
/* Test object for perf event arrays whose record structs only DWARF
 * describes: both are local variables handed to bpf_perf_event_output(),
 * which leaves no BTF for them. `events` carries struct event (paired by
 * the map's name, from DWARF); `outbox` carries struct parcel, which no name
 * gives: `run` pairs it by size. A perf sample is padded so that with its
 * 4-byte size it fills whole 8-byte words: the 40-byte struct event arrives
 * as 44 bytes, the 32-byte struct parcel as 36. Each getpgid(seq) from the
 * process whose tgid is in target_tgid sends one record to each map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

struct event {
	__u64 seq;
	__u32 tgid;
	__u32 cpu;
	char comm[16];
	__u64 twice;
};

struct parcel {
	__u64 seq;
	__u64 square;
	__u32 tgid;
	__u32 flags;
	__u64 tail;
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} outbox SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct event e;
	struct parcel s;
	__u64 seq;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	__builtin_memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.tgid = pid_tgid >> 32;
	e.cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	e.twice = seq * 2;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));

	__builtin_memset(&s, 0, sizeof(s));
	s.seq = seq;
	s.square = seq * seq;
	s.tgid = pid_tgid >> 32;
	s.flags = 0x5a;
	s.tail = ~seq;
	bpf_perf_event_output(ctx, &outbox, BPF_F_CURRENT_CPU, &s, sizeof(s));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
