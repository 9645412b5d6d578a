// SPDX-License-Identifier: GPL-2.0
/* Test object for records that nothing decodes on its own, all of them
 * structs only DWARF describes (local variables). `twins` carries struct
 * alpha, but struct beta has the same size: pairing by size cannot choose,
 * and `--event twins=alpha` must be given. `blobs` carries 20-byte arrays
 * that no struct has the size of. struct beta and struct flagged (with
 * bit-fields) are only sent when seq is BETA_SEQ or FLAGGED_SEQ, which the
 * tests never use: they are there to be found in DWARF. Each getpgid(seq)
 * from the process whose tgid is in target_tgid sends one record to each map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define BETA_SEQ 0x7ffffff0
#define FLAGGED_SEQ 0x7ffffff1
#define BLOB_SIZE 20

struct alpha {
	__u64 seq;
	__u32 tgid;
	__u32 magic;
	__u64 twice;
};

struct beta {
	__u64 a;
	__u64 b;
	__u64 c;
};

struct flagged {
	__u32 seq;
	__u32 low : 4,
	      high : 12;
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} twins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} blobs SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u8 blob[BLOB_SIZE];
	struct alpha a;
	__u64 seq;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	if (seq == BETA_SEQ) {
		struct beta b = { .a = seq, .b = seq, .c = seq };

		bpf_ringbuf_output(&twins, &b, sizeof(b), 0);
		return 0;
	}
	if (seq == FLAGGED_SEQ) {
		struct flagged f = { .seq = seq, .low = 3, .high = 99 };

		bpf_ringbuf_output(&twins, &f, sizeof(f), 0);
		return 0;
	}
	__builtin_memset(&a, 0, sizeof(a));
	a.seq = seq;
	a.tgid = pid_tgid >> 32;
	a.magic = 0xa1fa;
	a.twice = seq * 2;
	bpf_ringbuf_output(&twins, &a, sizeof(a), 0);

	for (int i = 0; i < BLOB_SIZE; i++)
		blob[i] = (seq >> (8 * (i % 8))) & 0xff;
	bpf_ringbuf_output(&blobs, blob, sizeof(blob), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
