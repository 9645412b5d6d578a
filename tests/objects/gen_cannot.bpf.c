// SPDX-License-Identifier: GPL-2.0
/* Test object: two programs that cannot run beside one that can. libbpf
 * refuses the iterator before it asks the kernel (no such iterator in the
 * kernel's BTF); the USDT program names its binary by a name that the test
 * puts on PATH as a shell script (as some systems' python3 is), which has
 * no USDT notes, being no ELF file. getpgid() of `target_tgid` counts in
 * `hits`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */

const volatile __u32 target_tgid = 0;
__u64 hits = 0;

SEC("raw_tp/sys_enter")
int BPF_PROG(counted, struct pt_regs *regs, long id)
{
	if (id == NR_getpgid && bpf_get_current_pid_tgid() >> 32 == target_tgid)
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("iter/pyrunq_no_such_iterator")
int walk(void *ctx)
{
	return 0;
}

SEC("usdt/pyrunq-script-target:pyrunq:tick")
int on_named(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
