// SPDX-License-Identifier: GPL-2.0
/* Test object that every verifier rejects, as a tool author's first try
 * often is: a map value used without checking the lookup for NULL. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("raw_tp/sys_enter")
int unchecked(void *ctx)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&counts, &zero);

	*count += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
