// SPDX-License-Identifier: GPL-2.0
/* Test object: IP addresses as libbpf-tools' tcplife and tcpstates send
 * them, in 16-byte integers beside a family. getpgid(v) from the process
 * in `target_tgid` sends: v = 4, AF_INET 127.0.0.1 -> 10.1.2.3 (the other
 * 12 bytes not zero, as a reused buffer leaves them); v = 6, AF_INET6 ::1 ->
 * fe80::1; v = 5, AF_UNIX, which holds no IP address. The ring buffer is
 * named after a struct of the kernel that the object's BTF holds (struct
 * pt_regs, through BPF_PROG's argument), as libbpf-bootstrap's
 * bootstrap_legacy names its perf event array "perf_buffer": its records
 * are no struct pt_regs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10

struct conn {
	unsigned __int128 saddr;
	unsigned __int128 daddr;
	__u16 family;
	__u16 lport;
};

const volatile __u32 target_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} pt_regs SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct conn *c;
	__u8 *s, *d;
	long v;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	v = PT_REGS_PARM1_CORE_SYSCALL(regs);
	c = bpf_ringbuf_reserve(&pt_regs, sizeof(*c), 0);
	if (!c)
		return 0;
	__builtin_memset(c, 0xee, sizeof(*c));
	s = (__u8 *)&c->saddr;
	d = (__u8 *)&c->daddr;
	c->lport = 8080;
	if (v == 6) {
		c->family = AF_INET6;
		__builtin_memset(s, 0, 16);
		s[15] = 1;
		__builtin_memset(d, 0, 16);
		d[0] = 0xfe;
		d[1] = 0x80;
		d[15] = 1;
	} else {
		c->family = v == 4 ? AF_INET : AF_UNIX;
		s[0] = 127; s[1] = 0; s[2] = 0; s[3] = 1;
		d[0] = 10; d[1] = 1; d[2] = 2; d[3] = 3;
	}
	bpf_ringbuf_submit(c, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
