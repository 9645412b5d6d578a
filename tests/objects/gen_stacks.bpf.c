// SPDX-License-Identifier: GPL-2.0
/* Test object: stacks as the public collections keep them. Each getpgid()
 * of the target process
 * - counts under (tgid, user stack id, kernel stack id, comm) in a hash, the
 *   ids into a stack trace map sized by "its user space" (no value size, no
 *   max_entries), as libbpf-tools' profile and offcputime declare theirs;
 * - sends a record with both stacks inline, as bpf_get_stack fills them, in
 *   a struct only DWARF describes (a ring buffer reservation), as
 *   libbpf-bootstrap's and eunomia's profile do. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */
#define DEPTH 32

const volatile __u32 target_tgid = 0;

struct key_t {
	__u32 pid;
	int user_stack_id;
	int kern_stack_id;
	char name[16];
};

struct stack_event {
	__u32 pid;
	char comm[16];
	__s64 kstack_sz;
	__s64 ustack_sz;
	__u64 kstack[DEPTH];
	__u64 ustack[DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct key_t key = {};
	struct stack_event *e;
	__u64 one = 1, *count;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	key.pid = target_tgid;
	key.user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
	bpf_get_current_comm(key.name, sizeof(key.name));
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = target_tgid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->kstack_sz = bpf_get_stack(ctx, e->kstack, sizeof(e->kstack), 0);
	e->ustack_sz = bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
