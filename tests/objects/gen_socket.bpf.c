// SPDX-License-Identifier: GPL-2.0
/* Test object: a socket filter in the style of Inspektor Gadget's network
 * tracers (trace_dns, trace_sni). Its section is SEC("socket1"), a name
 * libbpf does not know and that gadget's loader reads as a socket filter:
 * attached to a raw packet socket, it sees every packet sent or received
 * on the socket's interfaces, from the Ethernet header on.
 *
 * Each IPv4 UDP datagram to the port given (a parameter) is one record:
 * when, from and to where, which way it went (the packet type: a datagram
 * on the loopback is seen going out, then coming in), on which interface,
 * its length and the first bytes of its payload. The headers are read with
 * the legacy packet loads (BPF_LD_ABS, which give host order) as those
 * gadgets read them, the payload with bpf_skb_load_bytes. Records go to a
 * perf event array with the packet appended, as trace_dns sends them; the
 * filter keeps nothing of the packet for its socket (it returns 0). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define PAYLOAD 16

unsigned long long load_byte(const void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(const void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(const void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* the gadget headers' types, by the names its loader knows */
typedef __u64 gadget_timestamp;

union gadget_ip_addr_t {
	__u8 v6[16];
	__u32 v4;	/* network order */
};

struct gadget_l4endpoint_t {
	union gadget_ip_addr_t addr_raw;
	__u16 port;	/* host order */
	__u16 proto_raw;
	__u8 version;
};

/* skb->pkt_type: PACKET_HOST, ... PACKET_OUTGOING (<linux/if_packet.h>) */
enum packet_way : __u8 {
	PACKET_HOST,
	PACKET_BROADCAST,
	PACKET_MULTICAST,
	PACKET_OTHERHOST,
	PACKET_OUTGOING,
};

struct datagram {
	gadget_timestamp timestamp_raw;
	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;
	enum packet_way way;
	__u32 ifindex;
	__u32 length;	/* of the UDP payload */
	char payload[PAYLOAD];
};

const volatile __u16 port = 0;
const void *gadget_param_port __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} datagrams SEC(".maps");

const void *gadget_tracer_udp___datagrams___datagram __attribute__((unused));
const struct datagram *__gadget_tracer_type_udp __attribute__((unused));

SEC("socket1")
int ig_trace_udp(struct __sk_buff *skb)
{
	struct datagram d = {};
	__u32 l4, length;

	if (load_half(skb, 12) != ETH_P_IP || load_byte(skb, ETH_HLEN + 9) != IPPROTO_UDP)
		return 0;
	if (load_half(skb, ETH_HLEN + 6) & 0x3fff)	/* a fragment: no UDP header of its own */
		return 0;
	l4 = ETH_HLEN + (load_byte(skb, ETH_HLEN) & 0xf) * 4;
	if (load_half(skb, l4 + 2) != port)
		return 0;

	d.timestamp_raw = bpf_ktime_get_boot_ns();
	d.src.version = d.dst.version = 4;
	d.src.proto_raw = d.dst.proto_raw = IPPROTO_UDP;
	d.src.addr_raw.v4 = bpf_htonl(load_word(skb, ETH_HLEN + 12));
	d.dst.addr_raw.v4 = bpf_htonl(load_word(skb, ETH_HLEN + 16));
	d.src.port = load_half(skb, l4);
	d.dst.port = load_half(skb, l4 + 2);
	d.way = skb->pkt_type;
	d.ifindex = skb->ifindex;
	length = load_half(skb, l4 + 4);
	d.length = length > 8 ? length - 8 : 0;
	if (d.length >= PAYLOAD)
		bpf_skb_load_bytes(skb, l4 + 8, d.payload, PAYLOAD);
	bpf_perf_event_output(skb, &datagrams, (__u64)skb->len << 32 | BPF_F_CURRENT_CPU, &d, sizeof(d));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
