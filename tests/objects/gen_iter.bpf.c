// SPDX-License-Identifier: GPL-2.0
/* Test object for iterator programs (SEC("iter/task")): one line per task,
 * "TID COMM", under a header, written each time user space reads the
 * iterator; the passes so far in a global, as iterator objects keep their
 * results beside the text.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 passes = 0;

SEC("iter/task")
int list_tasks(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (ctx->meta->seq_num == 0) {
		BPF_SEQ_PRINTF(seq, "%-8s %s\n", "TID", "COMM");
		__sync_fetch_and_add(&passes, 1);
	}
	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%-8d %s\n", task->pid, task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
