// SPDX-License-Identifier: GPL-2.0
/* Test object: one program every kernel's verifier rejects (an index it
 * cannot bound), beside one that loads: getpgid() of the process in
 * `target_tgid` counts in `hits`. libbpf loads all programs at once, so the
 * rejected one must be left out for the other to run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */

const volatile __u32 target_tgid = 0;
__u64 hits = 0;
__u64 cells[4] = {};

SEC("raw_tp/sys_enter")
int BPF_PROG(counted, struct pt_regs *regs, long id)
{
	if (id == NR_getpgid && bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(rejected, struct pt_regs *regs, long ret)
{
	__u32 i = bpf_get_prandom_u32();	/* anything: out of cells' bounds */

	__sync_fetch_and_add(&cells[i], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
