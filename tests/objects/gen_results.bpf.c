// SPDX-License-Identifier: GPL-2.0
/* Test object: results kept in .bss and .data globals, as some of the public
 * tools keep theirs, and no event map. getpgid(value) from the process whose
 * tgid is in `target_tgid` (a .bss global: user space sets it before load)
 * counts in `triggers`, adds `scale` (.data) to `scaled`, counts the value's
 * log2 slot in `value_slots` and, by the value's parity, in `parity_counts`
 * and `by_parity[].slots`, and keeps the last trigger in `last`. The hash
 * `seen` keeps the time each value was last seen: working state beside the
 * histograms, which `run` does not show unless asked.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define NSLOTS 16

struct parity_hist {
	__u32 slots[NSLOTS];
	__u32 parity;
};

struct last_trigger {
	__u64 value;
	__u32 tgid;
};

__u32 target_tgid = 0;			/* .bss, set before load */
__u32 scale = 1;			/* .data, may be set before load */
__u64 triggers = 0;			/* .bss counter */
__u64 scaled = 0;			/* .bss: scale per trigger */
__u32 value_slots[NSLOTS];		/* .bss log2 histogram */
__u64 parity_counts[2];			/* .bss array: [0] even, [1] odd */
struct parity_hist by_parity[2];	/* .bss: one histogram per parity */
struct last_trigger last;		/* .bss struct */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline __u32 slot_of(__u64 v)
{
	__u32 slot = 0;

	for (int i = 0; i < 64 && v > 1; i++) {
		v >>= 1;
		slot++;
	}
	return slot < NSLOTS ? slot : NSLOTS - 1;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(count_getpgid, struct pt_regs *regs, long id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 value, now;
	__u32 slot, parity;

	if (id != NR_getpgid || !target_tgid || tgid != target_tgid)
		return 0;
	value = PT_REGS_PARM1_CORE_SYSCALL(regs);
	slot = slot_of(value);
	parity = value & 1;
	__sync_fetch_and_add(&triggers, 1);
	__sync_fetch_and_add(&scaled, scale);
	__sync_fetch_and_add(&value_slots[slot], 1);
	__sync_fetch_and_add(&parity_counts[parity], 1);
	__sync_fetch_and_add(&by_parity[parity].slots[slot], 1);
	by_parity[parity].parity = parity;
	last.value = value;
	last.tgid = tgid;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&seen, &value, &now, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
