// SPDX-License-Identifier: GPL-2.0
/* Test object: a socket snapshot in the style of Inspektor Gadget's
 * snapshot_socket. Iterators over TCP and UDP sockets write one binary
 * record per socket on the ports from `port` to `port + 2` (bpf_seq_write).
 * The state is the socket's own (sk->sk_state, through tcp_sock or
 * udp_sock), a TIME_WAIT socket's tw_substate, or, for a request socket,
 * the constant TCP_SYN_RECV. Nothing but the kernel's struct members says
 * that the number is a TCP state. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define TCP_SYN_RECV_STATE 3

struct sock_row {
	__u16 local_port;
	__u16 proto;
	__u32 state;
	__u64 ino;
};

const volatile __u16 port = 0;

const struct sock_row *unusedevent_sockets___sock_row __attribute__((unused));
const void *gadget_iter_sockets___sock_row___snap_tcp___snap_udp __attribute__((unused));

static __always_inline void write_row(struct seq_file *seq, __u16 local_port, __u16 proto, __u8 state,
				      __u64 ino)
{
	struct sock_row row = {};

	if (local_port < port || local_port > port + 2)
		return;
	row.local_port = local_port;
	row.proto = proto;
	row.state = state;
	row.ino = ino;
	bpf_seq_write(seq, &row, sizeof(row));
}

static __always_inline __u64 inode_of(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);

	if (!sock)
		return 0;
	return BPF_CORE_READ(container_of(sock, struct socket_alloc, socket), vfs_inode.i_ino);
}

SEC("iter/tcp")
int snap_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *common = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct tcp_timewait_sock *tw;
	struct tcp_request_sock *req;
	struct tcp_sock *tp;

	if (!common)
		return 0;
	tp = bpf_skc_to_tcp_sock(common);
	if (tp) {
		struct sock *sk = &tp->inet_conn.icsk_inet.sk;

		write_row(seq, sk->__sk_common.skc_num, IPPROTO_TCP, sk->__sk_common.skc_state, inode_of(sk));
		return 0;
	}
	tw = bpf_skc_to_tcp_timewait_sock(common);
	if (tw) {
		write_row(seq, tw->tw_sk.__tw_common.skc_num, IPPROTO_TCP, tw->tw_sk.tw_substate, 0);
		return 0;
	}
	req = bpf_skc_to_tcp_request_sock(common);
	if (req)
		write_row(seq, req->req.req.__req_common.skc_num, IPPROTO_TCP, TCP_SYN_RECV_STATE, 0);
	return 0;
}

SEC("iter/udp")
int snap_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	struct sock *sk;

	if (!udp)
		return 0;
	sk = &udp->inet.sk;
	write_row(ctx->meta->seq, sk->__sk_common.skc_num, IPPROTO_UDP, sk->__sk_common.skc_state, inode_of(sk));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
