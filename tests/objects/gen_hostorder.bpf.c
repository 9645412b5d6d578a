// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of cilium/ebpf's tcprtt_sockops: the program
 * turns an IPv4 address around with bpf_ntohl before it stores it, and
 * declares it a plain u32, as that example does with a socket's local_ip4;
 * its Go side prints it in host order. A second address is stored as it
 * came, declared __be32: network order, as the kernel keeps addresses.
 * Fired by getpgid(value) from the process in target_tgid: value is the
 * address in network order (127.0.0.1 is 0x0100007f on a little-endian
 * machine). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

const volatile u32 target_tgid = 0;

struct rtt_event {
	u16 sport;
	u16 dport;
	u32 saddr;	/* host order */
	__be32 daddr;	/* network order */
	u32 srtt;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
	__type(value, struct rtt_event);
} rtt_events SEC(".maps");

struct getpgid_args {
	u64 common;
	int nr;
	u64 pid;
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct getpgid_args *args)
{
	struct rtt_event *e;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	e = bpf_ringbuf_reserve(&rtt_events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->sport = 4242;
	e->dport = 80;
	e->saddr = bpf_ntohl((u32)args->pid);
	e->daddr = (__be32)args->pid;
	e->srtt = 7;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
