// SPDX-License-Identifier: GPL-2.0
/* Test object in the style of the eunomia tutorial's cgroup_guard and
 * sockfilter: records with anonymous unions, whose members C reaches as
 * the record's own (e->connect4.dport, e->port16[1]).
 *
 * guard_event: which member of the union holds the record's data, only
 * `kind` says (an anonymous union of structs); it is a local type only,
 * so DWARF describes it, not BTF.
 * flow_event: a packet's two ports, read as one __be32 or as two __be16,
 * in network order as a packet has them; kept in BTF by a global.
 *
 * Fired by getpgid(value) from the process in target_tgid: value is
 * kind << 16 | n (kind 1: a connect to 127.0.0.1:n, 2: device n:n+1,
 * 3: a sysctl write), and each call also sends a flow from port n to 8080.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum guard_kind {
	GUARD_CONNECT = 1,
	GUARD_DEVICE = 2,
	GUARD_SYSCTL = 3,
};

struct guard_event {
	__u32 pid;
	__u32 kind;
	char task[16];
	union {
		struct {
			__u32 daddr;	/* network order */
			__u16 dport;
			__u16 proto;
		} connect4;
		struct {
			__u32 major, minor, access_type;
		} device;
		struct {
			__u32 write;
			char name[20];
		} sysctl;
	};
};

struct flow_event {
	__be32 src_addr;
	union {
		__be32 ports;
		__be16 port16[2];
	};
	__u32 ip_proto;
};

const volatile __u32 target_tgid = 0;

const struct flow_event *unused_flow __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} guard_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} flows SEC(".maps");

struct getpgid_args {
	__u64 common;
	int nr;
	__u64 pid;
};

static void send_flow(__u16 port)
{
	struct flow_event *f;

	f = bpf_ringbuf_reserve(&flows, sizeof(*f), 0);
	if (!f)
		return;
	f->src_addr = bpf_htonl(0x7f000001);
	f->port16[0] = bpf_htons(port);
	f->port16[1] = bpf_htons(8080);
	f->ip_proto = 6;
	bpf_ringbuf_submit(f, 0);
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int guard_getpgid(struct getpgid_args *ctx)
{
	struct guard_event *e;
	__u32 kind = ctx->pid >> 16;
	__u16 n = ctx->pid & 0xffff;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	e = bpf_ringbuf_reserve(&guard_events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->kind = kind;
	bpf_get_current_comm(e->task, sizeof(e->task));
	if (kind == GUARD_CONNECT) {
		e->connect4.daddr = bpf_htonl(0x7f000001);
		e->connect4.dport = n;
		e->connect4.proto = 6;
	} else if (kind == GUARD_DEVICE) {
		e->device.major = n;
		e->device.minor = n + 1;
		e->device.access_type = 3;
	} else {
		e->sysctl.write = 1;
		__builtin_memcpy(e->sysctl.name, "kernel/pid_max", 15);
	}
	bpf_ringbuf_submit(e, 0);
	send_flow(n);
	return 0;
}
