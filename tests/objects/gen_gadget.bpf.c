// SPDX-License-Identifier: GPL-2.0
/* Test object: what Inspektor Gadget's gadgets keep beside their results,
 * and what a generic loader must not add up. Each getpgid() of one of two
 * target processes
 * - is written into a per-CPU scratch value (the caller's pid and its calls
 *   on that CPU): the CPUs' pids are not a sum;
 * - counts under (pid, user stack id, kernel stack id), the ids into two
 *   stack maps, one per side, named as the gadgets name theirs (kstacks,
 *   ustacks): a user stack id is never looked up in the kernel's map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */

const volatile __u32 target_a = 0;
const volatile __u32 target_b = 0;

struct scratch {
	__u32 pid;
	__u64 calls;
};

struct key_t {
	__u32 pid;
	int user_stack_id;
	int kern_stack_id;
};

/* A stack map keeps one stack per hash bucket: another stack hashing there
 * is lost (-EEXIST). Many buckets, so that the test's few stacks (1 in 1,400
 * runs for 6 pairs of them) all find one; 32 frames reach the caller. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 32 * sizeof(__u64));
} kstacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 32 * sizeof(__u64));
} ustacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, zero = 0;
	struct key_t key = {};
	struct scratch *s;
	__u64 one = 1, *count;

	if (id != NR_getpgid || (tgid != target_a && tgid != target_b))
		return 0;
	s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (s) {
		s->pid = tgid;
		s->calls++;
	}
	key.pid = tgid;
	key.user_stack_id = bpf_get_stackid(ctx, &ustacks, BPF_F_USER_STACK);
	key.kern_stack_id = bpf_get_stackid(ctx, &kstacks, 0);
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
