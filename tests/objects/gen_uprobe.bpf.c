// SPDX-License-Identifier: GPL-2.0
/* Test object: uprobe and uretprobe programs whose sections name no target
 * (as libbpf-bootstrap's uprobe example declares them), counting the calls
 * of whatever function user space attaches them to, in the target process;
 * one that probes its own loader (/proc/self/exe), as libbpf-bootstrap's
 * uprobe does, and writes with bpf_printk; and one whose section names a
 * function but no binary, as libbpf-tools' bashreadline's does. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_tgid = 0;
__u64 entries = 0;
__u64 returns = 0;

SEC("uprobe")
int BPF_KPROBE(on_entry)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&entries, 1);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_return)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&returns, 1);
	return 0;
}

SEC("uprobe//proc/self/exe:pyrunq_test_missing")
int BPF_KPROBE(on_self)
{
	bpf_printk("pyrunq test: never, pyrunq has no such function");
	return 0;
}

SEC("uretprobe/getpgid")
int BPF_KRETPROBE(on_bare)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
