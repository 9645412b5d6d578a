// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of cilium/ebpf's cgroup_skb and tcprtt_sockops
 * examples: programs that run for the processes of one cgroup, attached to
 * it by their user space (a cgroup's directory given to the loader), never
 * by their section alone. It counts, for that cgroup: the sockets created,
 * by type (cgroup/sock_create); the packets sent, by IP protocol
 * (cgroup_skb/egress); the TCP connections it opened (sockops).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);	/* SOCK_STREAM, SOCK_DGRAM... */
	__type(value, u64);
} sockets_by_type SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, u32);	/* IPPROTO_TCP, IPPROTO_UDP... */
	__type(value, u64);
} egress_by_protocol SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} connections SEC(".maps");

static void count(void *map, u32 key)
{
	u64 one = 1, *n = bpf_map_lookup_elem(map, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, &key, &one, BPF_NOEXIST);
}

SEC("cgroup/sock_create")
int count_sockets(struct bpf_sock *sk)
{
	count(&sockets_by_type, sk->type);
	return 1;	/* let it be created */
}

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
	u8 protocol = 0;

	/* a cgroup_skb program's data starts at the network header */
	if (skb->protocol == bpf_htons(ETH_P_IP))
		bpf_skb_load_bytes(skb, 9, &protocol, 1);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		bpf_skb_load_bytes(skb, 6, &protocol, 1);
	count(&egress_by_protocol, protocol);
	return 1;	/* let it pass */
}

SEC("sockops")
int count_connections(struct bpf_sock_ops *skops)
{
	u32 zero = 0;
	u64 *n;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	n = bpf_map_lookup_elem(&connections, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}
