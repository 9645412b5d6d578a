// SPDX-License-Identifier: GPL-2.0
/* Test object: samples counted by their stacks, in the style of Inspektor
 * Gadget's profile_cpu (on getpgid() of the target process instead of a
 * CPU clock). The key holds the process (struct gadget_process) and the
 * kernel stack (a gadget_kernel_stack id into ig_kstack); the value the
 * count and the user stack (a struct gadget_user_stack: an id into
 * ig_ustack and its process). The names are declared here, as a gadget's
 * headers would. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

typedef __u64 gadget_mntns_id;
typedef __u32 gadget_kernel_stack;
typedef __u32 gadget_pid;
typedef char gadget_comm;

struct gadget_process {
	gadget_comm comm[16];
	gadget_pid pid;
	gadget_pid tid;
	gadget_mntns_id mntns_id;
};

struct gadget_user_stack {
	__u32 stack_id;
	__u32 tgid_level0;
};

struct key_t {
	gadget_kernel_stack kern_stack_raw;
	struct gadget_process proc;
};

struct values {
	__u64 samples;
	struct gadget_user_stack user_stack_raw;
};

const volatile __u32 target_tgid = 0;
const void *gadget_param_target_tgid __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} ig_kstack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} ig_ustack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct key_t);
	__type(value, struct values);
} counts SEC(".maps");

const void *gadget_mapiter_samples___counts __attribute__((unused));

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct key_t key = {};
	struct values *v, zero = {};

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	key.kern_stack_raw = bpf_get_stackid(ctx, &ig_kstack, 0);
	bpf_get_current_comm(key.proc.comm, sizeof(key.proc.comm));
	key.proc.pid = pid_tgid >> 32;
	key.proc.tid = (__u32)pid_tgid;
	key.proc.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		zero.user_stack_raw.stack_id = bpf_get_stackid(ctx, &ig_ustack, BPF_F_USER_STACK);
		zero.user_stack_raw.tgid_level0 = pid_tgid >> 32;
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->samples, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
