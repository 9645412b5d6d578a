// SPDX-License-Identifier: GPL-2.0
/* Test object for tracepoint/ programs, which need tracefs to attach (libbpf
 * reads the tracepoint's id there): getpgid(value) calls of the process in
 * target_tgid, counted per value. Its twin raw_tp/sys_enter_getpgid is
 * preferred but cannot attach on any kernel (syscall events are not raw
 * tracepoints): the tracepoint must take its place. And programs whose
 * targets no kernel has, of three kinds: each is reported, and the others run.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
	__u64 value = ctx->args[0], one = 1, *n;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	n = bpf_map_lookup_elem(&calls, &value);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &value, &one, BPF_NOEXIST);
	return 0;
}

SEC("raw_tp/sys_enter_getpgid")
int on_getpgid_raw(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pyrunq_missing")
int on_missing_tracepoint(void *ctx)
{
	return 0;
}

SEC("raw_tp/pyrunq_missing_raw")
int on_missing_raw_tp(void *ctx)
{
	return 0;
}

SEC("tp_btf/pyrunq_missing_btf")
int BPF_PROG(on_missing_tp_btf)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
