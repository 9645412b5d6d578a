// SPDX-License-Identifier: GPL-2.0
/* Test object: a log2 histogram per stack, as libbpf-tools' futexctn and
 * biostacks keep theirs: getpgid(value) of the target process adds value to
 * the histogram of its (pid_tgid, user stack id), with its count and extremes
 * beside the slots (futexctn.h's struct hist_key and struct hist shapes: the
 * process is known only as the upper half of a pid_tgid). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 20

struct hist_key {
	__u64 pid_tgid;
	int user_stack_id;
};

struct hist {
	__u32 slots[MAX_SLOTS];
	__u64 contended;
	__u64 total_elapsed;
	__u64 min;
	__u64 max;
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	static const struct hist zero = {.min = -1};
	struct hist_key key = {};
	struct hist *h;
	__u64 value;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	key.pid_tgid = bpf_get_current_pid_tgid();
	key.user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[log2_slot(value)], 1);
	__sync_fetch_and_add(&h->contended, 1);
	__sync_fetch_and_add(&h->total_elapsed, value);
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
