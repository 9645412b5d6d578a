// SPDX-License-Identifier: GPL-2.0
/* Test object for twin programs, in the style libbpf-tools ships them: the
 * same count kept by one program per attach mechanism, of which user space
 * must run only one per attach point. Each counts the getpgid() calls of the
 * process in target_tgid into hits[its mechanism]: if two ran, the test
 * would see every call twice.
 *
 *   the syscall's entry tracepoint: tp_btf, raw_tp, tracepoint (raw_syscalls)
 *   the syscall's function:         fentry, kprobe; fexit, kretprobe
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#if defined(__TARGET_ARCH_arm64)
#define NR_getpgid 155	/* arm64: the generic syscall table */
#define SYS_getpgid "__arm64_sys_getpgid"
#else
#define NR_getpgid 121	/* x86_64 */
#define SYS_getpgid "__x64_sys_getpgid"
#endif

enum mechanism {
	BY_TP_BTF, BY_RAW_TP, BY_TRACEPOINT, BY_FENTRY, BY_KPROBE, BY_FEXIT, BY_KRETPROBE,
	MECHANISMS,
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MECHANISMS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int count(long syscall, __u32 by)
{
	__u64 *n;

	if (syscall != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	n = bpf_map_lookup_elem(&hits, &by);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(count_enter, struct pt_regs *regs, long id)
{
	return count(id, BY_TP_BTF);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(count_enter_raw, struct pt_regs *regs, long id)
{
	return count(id, BY_RAW_TP);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int count_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return count(ctx->id, BY_TRACEPOINT);
}

SEC("fentry/" SYS_getpgid)
int BPF_PROG(count_call)
{
	return count(NR_getpgid, BY_FENTRY);
}

SEC("kprobe/" SYS_getpgid)
int BPF_KPROBE(count_call_kprobe)
{
	return count(NR_getpgid, BY_KPROBE);
}

SEC("fexit/" SYS_getpgid)
int BPF_PROG(count_return)
{
	return count(NR_getpgid, BY_FEXIT);
}

SEC("kretprobe/" SYS_getpgid)
int BPF_KRETPROBE(count_return_kretprobe)
{
	return count(NR_getpgid, BY_KRETPROBE);
}

char LICENSE[] SEC("license") = "GPL";
