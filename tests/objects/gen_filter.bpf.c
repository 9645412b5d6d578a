// SPDX-License-Identifier: GPL-2.0
/* Test object: a `const volatile` filter. getpgid(value) from the target
 * process emits a struct record to the `records` ring buffer only when
 * value >= min_value (0x10 unless --set changes it), and counts it in `passed`,
 * a map the object asks libbpf to pin.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_arm64)
#define NR_getpgid 155	/* arm64: the generic syscall table */
#else
#define NR_getpgid 121	/* x86_64 */
#endif

struct record {
	__u64 value;
	__u32 tid;
};

const volatile __u32 target_tgid = 0;
const volatile __u64 min_value = 0x10;

const struct record *unused_record __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pyrunq_test_passed SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct record *r;
	__u64 value;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	if (value < min_value)
		return 0;
	__u32 zero = 0;
	__u64 *passed = bpf_map_lookup_elem(&pyrunq_test_passed, &zero);
	if (passed)
		__sync_fetch_and_add(passed, 1);
	r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
	if (!r)
		return 0;
	r->value = value;
	r->tid = (__u32)pid_tgid;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
