// SPDX-License-Identifier: GPL-2.0
/*
 * stackcount: how often each distinct user stack reaches a function. One
 * uprobe at the function's entry; user space attaches it (to one process, or
 * to every process) and reads `counts` and `stacks` at the end.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ustack.h"

#define EEXIST 17

/* Stack id -> frames. Hashed: two stacks in one bucket give -EEXIST. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, USTACK_MAX_DEPTH * sizeof(__u64));
	__uint(max_entries, 16384);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct stack_key);
	__type(value, struct stack_count);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STACKCOUNT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *cnt = bpf_map_lookup_elem(&stats, &idx);

	if (cnt)
		(*cnt)++;
}

SEC("uprobe")
int stackcount_hit(struct pt_regs *ctx)
{
	struct stack_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct stack_count *val, init = {};
	long id;

	id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	if (id < 0) {
		stat_inc(id == -EEXIST ? STACKCOUNT_STAT_COLLISION
				       : STACKCOUNT_STAT_NO_STACK);
		return 0;
	}
	key.stack_id = id;
	val = bpf_map_lookup_elem(&counts, &key);
	if (!val) {
		/* another CPU may create it first: NOEXIST keeps its count */
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		bpf_map_update_elem(&counts, &key, &init, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&counts, &key);
		if (!val) {
			stat_inc(STACKCOUNT_STAT_COUNTS_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&val->count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
