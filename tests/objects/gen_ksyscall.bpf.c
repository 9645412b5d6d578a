// SPDX-License-Identifier: GPL-2.0
/* Test object: a ksyscall program (a kprobe on the syscall's entry) beside a
 * raw tracepoint, counting this process's getpgid() calls each. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */

const volatile __u32 target_tgid = 0;
__u64 by_ksyscall = 0;
__u64 by_raw_tp = 0;

SEC("ksyscall/getpgid")
int BPF_KSYSCALL(on_getpgid, pid_t pid)
{
	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&by_ksyscall, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	if (id == NR_getpgid && bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&by_raw_tp, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
