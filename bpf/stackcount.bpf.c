// SPDX-License-Identifier: GPL-2.0
/*
 * stackcount: how often each distinct user stack reaches a function. One
 * uprobe at the function's entry; user space attaches it (to one process, or
 * to every process) and reads `counts` and `stacks` at the end.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "max_entries.h"
#include "ustack.h"
#define STATS_ENUM stackcount_stat
#define STATS_MAX STACKCOUNT_STAT_MAX
#include "stats.bpf.h"
#include "ustack.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct stack_key);
	__type(value, struct stack_count);
} counts SEC(".maps");

SEC("uprobe")
int stackcount_hit(struct pt_regs *ctx)
{
	struct stack_key key = { .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct stack_count *val, init = {};
	long id;

	id = user_stack_id(ctx, STACKCOUNT_STAT_STACK_COLLISIONS, STACKCOUNT_STAT_STACK_ERRORS);
	if (id < 0)
		return 0;
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
