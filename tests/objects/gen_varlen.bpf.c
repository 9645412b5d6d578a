// SPDX-License-Identifier: GPL-2.0
/* Test object: variable-length records, as libbpf-tools' execsnoop sends
 * them: a per-CPU buffer that always holds all three strings, sent with
 * only the bytes in use, through a perf event array. getpgid(v) from the
 * process in `target_tgid` sends a record whose last member, `args`, holds
 * the first v of the strings "one", "two", "three", NUL-separated; v = 0
 * sends a record cut inside its fixed part (4 bytes). A union before them
 * holds "two" as a number, a string and a struct. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define BASE __builtin_offsetof(struct event, args)

struct event {
	__u32 pid;
	__u32 args_count;
	__u32 args_size;
	union {		/* "two" three ways */
		__u64 as_u64;
		char as_text[8];
		struct {
			__u32 lo;
			__u32 hi;
		} halves;
	} value;
	char args[32];
};

const volatile __u32 target_tgid = 0;
const struct event *unused_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	static const char strings[] = "one\0two\0three";
	__u32 zero = 0, v, size, len;
	struct event *e;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	v = PT_REGS_PARM1_CORE_SYSCALL(regs);
	size = v == 1 ? 4 : v == 2 ? 8 : v >= 3 ? 14 : 0;
	e->pid = target_tgid;
	e->args_count = v;
	e->args_size = size;
	e->value.as_u64 = 0x6f7774;	/* "two", little-endian */
	__builtin_memcpy(e->args, strings, sizeof(strings));
	len = v ? BASE + size : 4;
	if (len <= sizeof(*e))
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
