// SPDX-License-Identifier: GPL-2.0
/* Test object for `pyrunq run` / `pyrunq inspect`: one ring buffer of
 * struct event (integers, a char array, an enum). The test fires it with
 * getpgid(seq) from the process whose tgid is in target_tgid.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

enum parity {
	PARITY_EVEN = 0,
	PARITY_ODD = 1,
	PARITY_FORCED = 7,
};

struct event {
	__u32 pid;
	__u64 seq;
	char comm[16];
	enum parity parity;
	__s32 delta;
	char tag[8];
};

const volatile __u32 target_tgid = 0;
const volatile __s32 bias = -3;
const volatile bool force = false;
const volatile enum parity forced_parity = PARITY_FORCED;
const volatile char tag[8] = "none";
__u64 emitted = 0;		/* .bss */

/* Keeps struct event in the object's BTF. */
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct event *e;
	__u64 seq, one = 1, *count;
	__u32 key;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	seq = PT_REGS_PARM1_CORE_SYSCALL(regs);
	key = seq & 3;
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid_tgid >> 32;
	e->seq = seq;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->parity = force ? forced_parity : (seq & 1 ? PARITY_ODD : PARITY_EVEN);
	e->delta = bias - (__s32)seq;
	for (int i = 0; i < sizeof(e->tag); i++)	/* volatile reads: set at load */
		e->tag[i] = tag[i];
	bpf_ringbuf_submit(e, 0);
	__sync_fetch_and_add(&emitted, 1);
	return 0;
}

/* libbpf cannot attach a bare "uprobe" by itself: `run` must say so and go on. */
SEC("uprobe")
int manual_probe(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
