// SPDX-License-Identifier: GPL-2.0
/* Test object for a tool author's own program, written the libbpf-bootstrap
 * way: records of struct own_event reserved through a local pointer (so only
 * the DWARF describes the struct) on ring buffer `rb`, whose name names no
 * struct; members named as Python cannot name attributes (`_pad`, `from`,
 * `class`); a bool and an enum global; a hash map of counts per seq parity.
 * The test fires it with getpgid(seq) from the process whose tgid is in
 * target_tgid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

enum own_mode {
	OWN_QUIET = 0,
	OWN_LOUD = 2,
};

struct own_event {
	__u64 seq;
	__u8 _pad;
	__u8 from;
	__u16 class;
	__u32 tgid;
};

const volatile __u32 target_tgid = 0;
const volatile bool doubled = false;
const volatile enum own_mode mode = OWN_QUIET;
__u64 seen = 0;		/* .bss */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} parity SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 one = 1, *count, seq;
	struct own_event *e;
	__u32 odd;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	__sync_fetch_and_add(&seen, doubled ? 2 : 1);
	odd = seq & 1;
	count = bpf_map_lookup_elem(&parity, &odd);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&parity, &odd, &one, BPF_NOEXIST);
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->seq = seq;
	e->_pad = mode;
	e->from = seq & 0xff;
	e->class = (seq >> 8) & 0xffff;
	e->tgid = pid_tgid >> 32;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
