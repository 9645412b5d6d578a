// SPDX-License-Identifier: GPL-2.0
/* Test object: a tracer in the style of Inspektor Gadget's gadgets. Its
 * loader knows a gadget by the names it gives: the marker globals
 * (gadget_tracer_<name>___<map>___<struct>, gadget_param_<var>) and the
 * typedefs of its event's members. They are declared here, as a gadget's
 * headers would, so the object needs nothing but vmlinux.h.
 *
 * Each getpgid() of the target process sends a record on its return: when
 * (ns since boot), who (comm, pid, tid, mount namespace, uid, gid, parent),
 * the error (ESRCH for a pid that does not exist), open-like flags and a
 * signal number as constants, and its kernel and user stacks, by id into
 * the gadget's two stack maps. The records go to a ring buffer named so that
 * only the marker says which struct they are: two structs of their size are
 * kept in BTF. A uprobe on libc's getpgid, in the loader's spelling (a
 * library's name, without a path), counts the calls too. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define COMM_LEN 16

typedef __u64 gadget_timestamp;
typedef __u64 gadget_mntns_id;
typedef __u32 gadget_errno;
typedef __u32 gadget_signal;
typedef __u32 gadget_uid;
typedef __u32 gadget_gid;
typedef __u32 gadget_file_flags;
typedef __u32 gadget_kernel_stack;
typedef __u32 gadget_pid;
typedef char gadget_comm;

struct gadget_creds {
	gadget_uid uid;
	gadget_gid gid;
};

struct gadget_parent {
	gadget_comm comm[COMM_LEN];
	gadget_pid pid;
	gadget_pid tid;
};

struct gadget_process {
	gadget_comm comm[COMM_LEN];
	gadget_pid pid;
	gadget_pid tid;
	gadget_mntns_id mntns_id;
	struct gadget_creds creds;
	struct gadget_parent parent;
};

/* what of a user stack this object fills: its id and its process */
struct gadget_user_stack {
	__u32 stack_id;
	__u32 tgid_level0;
};

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	gadget_file_flags flags_raw;
	gadget_signal sig_raw;
	gadget_kernel_stack kstack_raw;
	struct gadget_user_stack ustack;
	__u32 calls;
};

/* the same size as struct event: its size alone does not tell them apart */
struct decoy {
	__u8 bytes[sizeof(struct event)];
};

const volatile __u32 target_tgid = 0;
const void *gadget_param_target_tgid __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} outbox SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} outbox_lost_samples SEC(".maps");

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

/* a scratch buffer, as the gadget library keeps one: not a result */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} gadget_heap SEC(".maps");

const void *gadget_tracer_getpgid___outbox___event __attribute__((unused));
const struct event *__gadget_tracer_type_getpgid __attribute__((unused));
const struct decoy *unused_decoy __attribute__((unused));

SEC("raw_tp/sys_exit")
int BPF_PROG(on_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid(), uid_gid = bpf_get_current_uid_gid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 zero = 0, *lost;
	struct event *e, *scratch;

	if (pid_tgid >> 32 != target_tgid || BPF_CORE_READ(regs, orig_ax) != NR_getpgid)
		return 0;
	scratch = bpf_map_lookup_elem(&gadget_heap, &zero);
	if (scratch)
		scratch->calls++;
	e = bpf_ringbuf_reserve(&outbox, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&outbox_lost_samples, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return 0;
	}
	e->timestamp_raw = bpf_ktime_get_boot_ns();
	bpf_get_current_comm(e->proc.comm, sizeof(e->proc.comm));
	e->proc.pid = pid_tgid >> 32;
	e->proc.tid = (__u32)pid_tgid;
	e->proc.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->proc.creds.uid = (__u32)uid_gid;
	e->proc.creds.gid = uid_gid >> 32;
	BPF_CORE_READ_STR_INTO(&e->proc.parent.comm, task, real_parent, comm);
	e->proc.parent.pid = BPF_CORE_READ(task, real_parent, tgid);
	e->proc.parent.tid = BPF_CORE_READ(task, real_parent, pid);
	e->error_raw = ret < 0 ? -ret : 0;
	e->flags_raw = 02000000;	/* O_RDONLY|O_CLOEXEC */
	e->sig_raw = 9;			/* SIGKILL */
	e->kstack_raw = bpf_get_stackid(ctx, &ig_kstack, 0);
	e->ustack.stack_id = bpf_get_stackid(ctx, &ig_ustack, BPF_F_USER_STACK);
	e->ustack.tgid_level0 = pid_tgid >> 32;
	e->calls = scratch ? scratch->calls : 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

__u64 libc_calls = 0;

SEC("uprobe/libc:getpgid")
int on_libc_getpgid(void *ctx)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&libc_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
