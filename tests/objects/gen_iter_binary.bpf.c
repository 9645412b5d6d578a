// SPDX-License-Identifier: GPL-2.0
/* Test object for an iterator that writes binary records (bpf_seq_write), as
 * libbpf-bootstrap's task_iter does: one __u32 tgid per task. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("iter/task")
int task_tgids(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	__u32 tgid;

	if (!task)
		return 0;
	tgid = task->tgid;
	bpf_seq_write(ctx->meta->seq, &tgid, sizeof(tgid));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
