// SPDX-License-Identifier: GPL-2.0
/* Test object for iterator programs (SEC("iter/task")): one line per task,
 * "TID COMM", under a header, written each time user space reads the
 * iterator.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("iter/task")
int list_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "%-8s %s\n", "TID", "COMM");
	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%-8d %s\n", task->pid, task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
