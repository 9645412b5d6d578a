// SPDX-License-Identifier: GPL-2.0
/* Test object: kernel functions counted by their address beside a
 * histogram, as ebpf_exporter's and bpftrace's one-liners keep them
 * (`@[ksym(ip)] = count()` beside `@hist = hist(...)`): getpgid(value) of
 * the process in `target_tgid` adds value to `hist_slots` and the kernel
 * function that handles it (its address, from kallsyms) to `calls`. `last`
 * holds each thread's first call time, read and written by one program, as
 * cpudist keeps its start times: what a histogram is made of, no result. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 24

const volatile __u32 target_tgid = 0;
extern const void __x64_sys_getpgid __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} last SEC(".maps");

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		slot++;
	}
	return slot < MAX_SLOTS ? slot : MAX_SLOTS - 1;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid(), now, ip, one = 1, *count;
	__u32 tid = pid_tgid, slot;

	if (id != NR_getpgid || pid_tgid >> 32 != target_tgid)
		return 0;
	slot = log2_slot(PT_REGS_PARM1_CORE_SYSCALL(regs));
	count = bpf_map_lookup_elem(&hist_slots, &slot);
	if (count)
		__sync_fetch_and_add(count, 1);
	now = bpf_ktime_get_ns();
	if (!bpf_map_lookup_elem(&last, &tid))
		bpf_map_update_elem(&last, &tid, &now, BPF_ANY);
	ip = (__u64)&__x64_sys_getpgid;	/* the handler of this syscall */
	count = bpf_map_lookup_elem(&calls, &ip);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&calls, &ip, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
