// SPDX-License-Identifier: GPL-2.0
/* Test object: a struct_ops object, as cilium/ebpf's sched_ext example and
 * the kernel's bpf_cubic are: its programs are a kernel struct's callbacks
 * (here a TCP congestion control that does nothing of its own), called once
 * user space registers the .struct_ops map. Nothing here attaches alone. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("struct_ops/pyrunq_ssthresh")
__u32 BPF_PROG(pyrunq_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/pyrunq_cong_avoid")
void BPF_PROG(pyrunq_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/pyrunq_undo_cwnd")
__u32 BPF_PROG(pyrunq_undo_cwnd, struct sock *sk)
{
	return 2;
}

SEC(".struct_ops")
struct tcp_congestion_ops pyrunq_cc = {
	.ssthresh = (void *)pyrunq_ssthresh,
	.cong_avoid = (void *)pyrunq_cong_avoid,
	.undo_cwnd = (void *)pyrunq_undo_cwnd,
	.name = "pyrunq_cc",
};
