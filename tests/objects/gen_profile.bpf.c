// SPDX-License-Identifier: GPL-2.0
/* Test object: a CPU profile, as libbpf-tools' profile keeps one. On each
 * sample of the CPU clock (user space opens it per CPU: SEC("perf_event")),
 * the running task's user and kernel stacks go into a stack trace map and
 * count under (tgid, user stack id, kernel stack id, comm): what `pyrunq run`
 * draws as a flame graph. The idle task (pid 0) is left out. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct key_t {
	__u32 tgid;
	int user_stack_id;
	int kern_stack_id;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct key_t key = {};
	__u64 one = 1, *count;

	if ((__u32)id == 0)
		return 0;
	key.tgid = id >> 32;
	key.user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
