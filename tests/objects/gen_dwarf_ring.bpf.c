// SPDX-License-Identifier: GPL-2.0
/* Test object for records whose struct only DWARF describes: a ring buffer
 * `rb` of struct ring_event, reserved through a local pointer, which leaves
 * no BTF for the struct (nothing else names it). The map's name names no
 * struct either: `run` pairs the records with struct ring_event by their
 * size. The fields cover what the DWARF reader turns into codecs: a typedef,
 * signed and unsigned integers, a char array, an enum with a negative
 * value, a nested struct, arrays of one and two dimensions, a bool, a union
 * (raw bytes) and a pointer. The test fires it with getpgid(seq) from the
 * process whose tgid is in target_tgid.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

enum phase {
	PHASE_COLD = -1,
	PHASE_WARM = 1,
	PHASE_HOT = 2,
};

typedef __u32 tgid_t;

struct span {
	__u16 lo;
	__u16 hi;
};

struct ring_event {
	__u64 seq;
	tgid_t tgid;
	__s32 neg;
	char comm[16];
	enum phase phase;
	struct span span;
	__u16 vals[3];
	bool odd;
	__s16 grid[2][2];
	union {
		__u32 word;
		__u8 bytes[4];
	} mix;
	const void *cookie;
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} rb SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ring_event *e;
	__u64 seq;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->tgid = pid_tgid >> 32;
	e->neg = -(__s32)seq;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->phase = seq % 3 == 0 ? PHASE_COLD : (seq % 3 == 1 ? PHASE_WARM : PHASE_HOT);
	e->span.lo = seq & 0xffff;
	e->span.hi = (seq >> 16) & 0xffff;
	for (int i = 0; i < 3; i++)
		e->vals[i] = seq + i;
	e->odd = seq & 1;
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++)
			e->grid[i][j] = i * 2 + j - 2;
	e->mix.word = seq;
	e->cookie = (const void *)(seq * 8);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
