// SPDX-License-Identifier: GPL-2.0
/* Self-test object: exercises every part of pyrunq's object / map / ring
 * buffer API on the running kernel. A test fires it deterministically with
 * getpgid(seq) from the process whose tgid is in targ_tgid; the argument
 * travels as the record's sequence number.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_x86)
#define NR_getpgid 121
#elif defined(__TARGET_ARCH_arm64)
#define NR_getpgid 155
#endif

struct selftest_event {
	__u64 seq;
	__u64 scaled;		/* seq * multiplier: shows .rodata reached the program */
	__u32 tgid;
	__u32 tid;
	char comm[16];
	__s32 delta;		/* signed on purpose */
	__u8 flag;
};

struct pair_key {
	__u32 a;
	__u16 b;
	__u16 c;
};

struct pair_value {
	__u64 sum;
	char name[8];
	__u32 items[3];
};

const volatile __u32 targ_tgid = 0;
const volatile __u64 multiplier = 1;
const volatile char label[8] = "default";

__u64 hits = 0;			/* .bss */
__u64 last_seq = 0;		/* .bss */
__s32 bias = -5;		/* .data */

/* Keeps struct selftest_event in BTF for user space to decode records. */
const struct selftest_event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} numbers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct pair_key);
	__type(value, struct pair_value);
} pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 12);
} more_events SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct selftest_event *e;
	__u32 zero = 0, slot;
	__u64 *count, seq;

	if (id != NR_getpgid || pid_tgid >> 32 != targ_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);

	__sync_fetch_and_add(&hits, 1);
	last_seq = seq;
	count = bpf_map_lookup_elem(&percpu_hits, &zero);
	if (count)
		*count += 1;
	slot = seq & 3;
	count = bpf_map_lookup_elem(&slots, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);

	if (seq & 1)	/* odd numbers go to the second ring buffer */
		e = bpf_ringbuf_reserve(&more_events, sizeof(*e), 0);
	else
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->seq = seq;
	e->scaled = seq * multiplier;
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->delta = bias - (__s32)seq;
	e->flag = label[0];
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
