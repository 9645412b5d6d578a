// SPDX-License-Identifier: GPL-2.0
/* Test object in cloudflare/ebpf_exporter's style: each metric a map named
 * as the metric, histograms kept one entry per bucket, keyed
 * {labels..., bucket}, with the sum of what was measured in bucket max + 1;
 * gen_exporter_hist.yaml beside it says what each key holds. Each getpgid(v)
 * of the target process counts
 * - v, as microseconds, in getpgid_value_seconds: exp2 buckets (bucket b
 *   holds (2^(b-1), 2^b], 0 and 1 in bucket 0) up to MAX_EXP2, keyed by a
 *   disk (global disk_dev, user space's dev_t encoding) and v's parity;
 * - v in getpgid_linear: buckets of 50 (v / 50) up to MAX_LINEAR, and no
 *   sum (as the exporter's tcp-syn-backlog);
 * - v in getpgid_zero: exp2zero buckets (0 alone in bucket 0) in a per-CPU
 *   array of MAX_ZERO + 2 elements (the sum in the last);
 * - once in calls_by_function_total under schedule()'s address, in
 *   calls_by_comm_total under its comm, and in calls_per_cpu_total (a
 *   per-CPU array of one element);
 * and every system call of the target counts in syscalls_total by number. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpgid 121	/* x86_64 */
#define MAX_EXP2 27
#define MAX_LINEAR 20
#define MAX_ZERO 12

const volatile __u32 target_tgid = 0;
const volatile __u32 disk_dev = 0;

extern const void schedule __ksym;

struct value_key {
	__u32 dev;
	__u8 op;
	__u64 bucket;
};

struct linear_key {
	__u64 bucket;
};

struct zero_key {
	__u32 bucket;
};

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, (MAX_EXP2 + 2) * 4);
	__type(key, struct value_key);
	__type(value, __u64);
} getpgid_value_seconds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LINEAR + 2);
	__type(key, struct linear_key);
	__type(value, __u64);
} getpgid_linear SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_ZERO + 2);
	__type(key, struct zero_key);
	__type(value, __u64);
} getpgid_zero SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} syscalls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u64);
	__type(value, __u64);
} calls_by_function_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct comm_key);
	__type(value, __u64);
} calls_by_comm_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} calls_per_cpu_total SEC(".maps");

static void add(void *map, void *key, __u64 n)
{
	__u64 *count = bpf_map_lookup_elem(map, key);

	if (count) {
		__sync_fetch_and_add(count, n);
		return;
	}
	bpf_map_update_elem(map, key, &n, BPF_NOEXIST);
}

/* The exp2 bucket of v: the least b with v <= 2^b (0 for 0 and 1). */
static __u64 exp2_bucket(__u64 v)
{
	__u64 b = 0;

	if (v <= 1)
		return 0;
	v -= 1;
	for (int i = 0; i < 64 && v; i++) {
		v >>= 1;
		b++;
	}
	return b;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	struct value_key vkey = {};
	struct linear_key lkey = {};
	struct zero_key zkey = {};
	struct comm_key ckey = {};
	__u64 function = (__u64)&schedule, v, nr = id;
	__u32 zero = 0;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	add(&syscalls_total, &nr, 1);
	if (id != NR_getpgid)
		return 0;
	v = PT_REGS_PARM1_CORE_SYSCALL(regs);

	vkey.dev = disk_dev;
	vkey.op = v & 1;
	vkey.bucket = exp2_bucket(v);
	if (vkey.bucket > MAX_EXP2)
		vkey.bucket = MAX_EXP2;
	add(&getpgid_value_seconds, &vkey, 1);
	if (v) {
		vkey.bucket = MAX_EXP2 + 1;
		add(&getpgid_value_seconds, &vkey, v);
	}

	lkey.bucket = v / 50;
	if (lkey.bucket > MAX_LINEAR)
		lkey.bucket = MAX_LINEAR;
	add(&getpgid_linear, &lkey, 1);

	zkey.bucket = v ? exp2_bucket(v) + 1 : 0;
	if (zkey.bucket > MAX_ZERO)
		zkey.bucket = MAX_ZERO;
	add(&getpgid_zero, &zkey, 1);
	if (v) {
		zkey.bucket = MAX_ZERO + 1;
		add(&getpgid_zero, &zkey, v);
	}

	add(&calls_by_function_total, &function, 1);
	bpf_get_current_comm(ckey.comm, sizeof(ckey.comm));
	add(&calls_by_comm_total, &ckey, 1);
	add(&calls_per_cpu_total, &zero, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
