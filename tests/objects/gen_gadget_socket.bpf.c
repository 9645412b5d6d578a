// SPDX-License-Identifier: GPL-2.0
/* Test object: what Inspektor Gadget's network gadgets read of its socket
 * enricher. The enricher's table holds a struct gadget_socket_value that
 * the gadgets read with CO-RE (preserve_access_index) as if it were the
 * kernel's: its loader adds the type to the kernel's BTF. Here the table is
 * keyed by tgid; each getpgid() of the target process looks itself up and
 * counts whether it was found (never: nothing fills the table). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */

struct gadget_socket_value {
	__u64 mntns;
	__u64 pid_tgid;
	char task[16];
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct gadget_socket_value);
} gadget_sockets SEC(".maps");

const volatile __u32 target_tgid = 0;
__u64 found = 0;
__u64 not_found = 0;
__u64 last_mntns = 0;

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct gadget_socket_value *v;

	if (id != NR_getpgid || tgid != target_tgid)
		return 0;
	v = bpf_map_lookup_elem(&gadget_sockets, &tgid);
	if (!v) {
		__sync_fetch_and_add(&not_found, 1);
		return 0;
	}
	last_mntns = v->mntns;
	__sync_fetch_and_add(&found, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
