// SPDX-License-Identifier: GPL-2.0
/* Test object: a stack trace map sized by "its user space" (no value size,
 * no max_entries), as libbpf-tools' profile and offcputime declare theirs.
 * Each getpgid() of the target process counts under its user stack id. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
} stack_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __s32);	/* user stack id */
	__type(value, __u64);
} stack_counts SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__s32 stack_id;
	__u64 one = 1, *count;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	stack_id = bpf_get_stackid(ctx, &stack_map, BPF_F_USER_STACK);
	count = bpf_map_lookup_elem(&stack_counts, &stack_id);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&stack_counts, &stack_id, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
