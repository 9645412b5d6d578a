// SPDX-License-Identifier: GPL-2.0
/* Test object: numbers that say what they hold, in cloudflare/ebpf_exporter's
 * style (a counter map per metric, named *_total). Each getpgid() of the
 * target process counts
 * - under a kernel function's address, as its timers example keys
 *   timer_starts_total by timer->function (here schedule()'s, a typeless
 *   ksym libbpf fills in from kallsyms);
 * - under (dev, ret, pid_tgid): a dev_t of 8:0, an errno, the caller. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_getpgid 121	/* x86_64 */
#define ENOENT 2

const volatile __u32 target_tgid = 0;

extern const void schedule __ksym;

struct call_key {
	__u32 dev;
	__s32 ret;
	__u64 pid_tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} function_calls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct call_key);
	__type(value, __u64);
} calls_total SEC(".maps");

static void increment(void *map, void *key)
{
	__u64 one = 1, *count = bpf_map_lookup_elem(map, key);

	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 function = (__u64)&schedule;
	struct call_key key = {};

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	increment(&function_calls_total, &function);
	key.dev = 8 << 20;	/* the kernel's dev_t: 12 bits of major, 20 of minor */
	key.ret = -ENOENT;
	key.pid_tgid = bpf_get_current_pid_tgid();
	increment(&calls_total, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
