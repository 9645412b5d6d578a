// SPDX-License-Identifier: GPL-2.0
/* Test object: a gadget's results in maps, in the style of Inspektor
 * Gadget's profile_* and advise_* gadgets, with their names declared here
 * (gadget_mapiter_<name>___<map> markers; the gadget_histogram_slot__u32
 * and gadget_mntns_id typedefs).
 *
 * Each getpgid(value) of the target process
 * - adds to a log2 histogram of the value, one per (mount namespace, parity
 *   of the value): an array of gadget_histogram_slot__u32 named "latency",
 *   as profile_blockio's, not "slots";
 * - sets the value's byte (value % 64) in a bitmap of one byte per value,
 *   per mount namespace, as advise_seccomp keeps one byte per syscall.
 * The bitmap's map is a result only because its marker says so: beside
 * histograms, other maps are working state. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_SLOTS 27
#define VALUES 64

typedef __u64 gadget_mntns_id;
typedef __u32 gadget_histogram_slot__u32;

struct hist_key {
	gadget_mntns_id mntns_id_raw;
	__u32 parity;
};

struct hist_value {
	gadget_histogram_slot__u32 latency[MAX_SLOTS];
};

struct seen_key {
	gadget_mntns_id mntns_id_raw;
};

struct seen_value {
	unsigned char values[VALUES];
};

const volatile __u32 target_tgid = 0;
const void *gadget_param_target_tgid __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct hist_key);
	__type(value, struct hist_value);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct seen_key);
	__type(value, struct seen_value);
} seen SEC(".maps");

const void *gadget_mapiter_values___hists __attribute__((unused));
const void *gadget_mapiter_seen___seen __attribute__((unused));

static const struct hist_value empty_hist;
static const struct seen_value empty_seen;

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	while (v > 1 && slot < MAX_SLOTS - 1) {
		v >>= 1;
		slot++;
	}
	return slot;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct hist_key hkey = {};
	struct seen_key skey = {};
	struct hist_value *hist;
	struct seen_value *seen_values;
	__u64 value;
	__u32 slot;

	if (id != NR_getpgid || bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	value = BPF_CORE_READ(regs, di);
	hkey.mntns_id_raw = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	hkey.parity = value & 1;
	hist = bpf_map_lookup_elem(&hists, &hkey);
	if (!hist) {
		bpf_map_update_elem(&hists, &hkey, &empty_hist, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &hkey);
		if (!hist)
			return 0;
	}
	slot = log2_slot(value);
	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&hist->latency[slot], 1);
	skey.mntns_id_raw = hkey.mntns_id_raw;
	seen_values = bpf_map_lookup_elem(&seen, &skey);
	if (!seen_values) {
		bpf_map_update_elem(&seen, &skey, &empty_seen, BPF_NOEXIST);
		seen_values = bpf_map_lookup_elem(&seen, &skey);
		if (!seen_values)
			return 0;
	}
	seen_values->values[value % VALUES] = 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
