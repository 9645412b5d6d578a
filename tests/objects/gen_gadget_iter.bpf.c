// SPDX-License-Identifier: GPL-2.0
/* Test object: a snapshot in the style of Inspektor Gadget's snapshot_*
 * gadgets. An iterator over tasks writes one binary record per thread of
 * the target process (bpf_seq_write): its comm, pid, tid and mount
 * namespace; the marker gadget_iter_<name>___<struct>___<program>, declared
 * here as a gadget's headers would, names the records' struct. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef __u64 gadget_mntns_id;
typedef __u32 gadget_pid;
typedef char gadget_comm;

struct task_row {
	gadget_comm comm[16];
	gadget_pid pid;
	gadget_pid tid;
	gadget_mntns_id mntns_id_raw;
};

const volatile __u32 target_tgid = 0;
const void *gadget_param_target_tgid __attribute__((unused));

const struct task_row *unusedevent_threads___task_row __attribute__((unused));
const void *gadget_iter_threads___task_row___dump_threads __attribute__((unused));

SEC("iter/task")
int dump_threads(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct task_row row = {};

	if (!task || task->tgid != target_tgid)
		return 0;
	__builtin_memcpy(row.comm, task->comm, sizeof(row.comm));
	row.pid = task->tgid;
	row.tid = task->pid;
	row.mntns_id_raw = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_seq_write(ctx->meta->seq, &row, sizeof(row));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
