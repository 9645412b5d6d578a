// SPDX-License-Identifier: GPL-2.0
/* Test object: a socket filter in the style of the eunomia tutorial's
 * examples. SEC("socket"), attached to a raw packet socket, reads each
 * packet's headers with bpf_skb_load_bytes and sends one ring buffer
 * record per IPv4 UDP datagram to the port given: its addresses, protocol,
 * the packet's type and interface as its __sk_buff says (plain __u32s:
 * nothing in the record's types says that pkt_type is PACKET_HOST,
 * PACKET_OUTGOING...), and the datagram's payload length. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800

struct so_event {
	__be32 src_addr;
	__be32 dst_addr;
	__u32 ip_proto;
	__u32 pkt_type;
	__u32 ifindex;
	__u32 payload_length;
};

const volatile __u16 port = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

SEC("socket")
int socket_handler(struct __sk_buff *skb)
{
	struct so_event *e;
	__u16 proto, dport, udp_len;
	__u8 verlen, ip_proto;
	__u32 l4;

	bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto));
	if (bpf_ntohs(proto) != ETH_P_IP)
		return 0;
	bpf_skb_load_bytes(skb, ETH_HLEN + 9, &ip_proto, sizeof(ip_proto));
	if (ip_proto != IPPROTO_UDP)
		return 0;
	bpf_skb_load_bytes(skb, ETH_HLEN, &verlen, sizeof(verlen));
	l4 = ETH_HLEN + (verlen & 0xf) * 4;
	bpf_skb_load_bytes(skb, l4 + 2, &dport, sizeof(dport));
	if (bpf_ntohs(dport) != port)
		return 0;

	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	bpf_skb_load_bytes(skb, ETH_HLEN + 12, &e->src_addr, 4);
	bpf_skb_load_bytes(skb, ETH_HLEN + 16, &e->dst_addr, 4);
	bpf_skb_load_bytes(skb, l4 + 4, &udp_len, sizeof(udp_len));
	e->ip_proto = ip_proto;
	e->pkt_type = skb->pkt_type;
	e->ifindex = skb->ifindex;
	e->payload_length = bpf_ntohs(udp_len) - 8;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
