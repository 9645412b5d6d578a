// SPDX-License-Identifier: GPL-2.0
/*
 * memleak: a process's outstanding allocations, with the stack that made
 * each. User space attaches these programs to one process's libc: the
 * allocators' entries note the size asked for, their returns record the
 * block under its address, and free() forgets it.
 *
 * The stack is taken at the allocator's return: the registers are the
 * caller's there, so the first frame is the call site itself.
 *
 * BPF_KPROBE / BPF_KRETPROBE read pt_regs, which is what a uprobe gets too
 * (libbpf 1.1 has no BPF_UPROBE).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "max_entries.h"
#include "ustack.h"
#define STATS_ENUM memleak_stat
#define STATS_MAX MEMLEAK_STAT_MAX
#include "stats.bpf.h"
#include "ustack.bpf.h"

/* Address -> allocation. Not preallocated: sized for the worst case. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, __u64);
	__type(value, struct alloc_info);
} allocs SEC(".maps");

/* Thread (pid_tgid) inside an allocator -> the size it asked for. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} sizes SEC(".maps");

/* Thread inside posix_memalign -> where the block's address will be written. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} memptrs SEC(".maps");

static __always_inline void alloc_enter(__u64 size)
{
	__u64 tid = bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY))
		stat_inc(MEMLEAK_STAT_PENDING_FULL);
}

/* The allocator of this thread returned block `address` (0: it failed). */
static __always_inline void alloc_exit(struct pt_regs *ctx, __u64 address)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct alloc_info info = {};
	__u64 *size;

	size = bpf_map_lookup_elem(&sizes, &tid);
	if (!size)
		return;	/* entered before we attached, or counted as missed */
	info.size = *size;
	bpf_map_delete_elem(&sizes, &tid);
	if (!address)
		return;
	/* kept even without a stack, so that its free() still matches */
	info.stack_id = user_stack_id(ctx, MEMLEAK_STAT_STACK_COLLISIONS, MEMLEAK_STAT_STACK_ERRORS);
	info.timestamp_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&allocs, &address, &info, BPF_ANY))
		stat_inc(MEMLEAK_STAT_ALLOCS_FULL);
}

static __always_inline void freed(__u64 address)
{
	if (address)
		bpf_map_delete_elem(&allocs, &address);
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, size_t size)
{
	alloc_enter(size);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, size_t nmemb, size_t size)
{
	alloc_enter((__u64)nmemb * size);
	return 0;
}

/* The old block is gone once realloc succeeds; bcc's memleak, too, drops
 * it at entry (a failed realloc, which keeps it, is rare). */
SEC("uprobe")
int BPF_KPROBE(realloc_enter, void *ptr, size_t size)
{
	freed((__u64)ptr);
	alloc_enter(size);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(aligned_alloc_enter, size_t alignment, size_t size)
{
	alloc_enter(size);
	return 0;
}

/* malloc, calloc, realloc, aligned_alloc: the block is the return value. */
SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, void *address)
{
	alloc_exit(ctx, (__u64)address);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, void **memptr, size_t alignment, size_t size)
{
	__u64 tid = bpf_get_current_pid_tgid(), where = (__u64)memptr;

	if (bpf_map_update_elem(&memptrs, &tid, &where, BPF_ANY)) {
		stat_inc(MEMLEAK_STAT_PENDING_FULL);
		return 0;
	}
	alloc_enter(size);
	return 0;
}

/* posix_memalign returns 0 and writes the block's address to *memptr. */
SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_return, int ret)
{
	__u64 tid = bpf_get_current_pid_tgid(), *where, address = 0;

	where = bpf_map_lookup_elem(&memptrs, &tid);
	if (!where)
		return 0;
	if (ret == 0)
		bpf_probe_read_user(&address, sizeof(address), (void *)*where);
	bpf_map_delete_elem(&memptrs, &tid);
	alloc_exit(ctx, address);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(free_enter, void *address)
{
	freed((__u64)address);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
