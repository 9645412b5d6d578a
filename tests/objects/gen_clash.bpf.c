// SPDX-License-Identifier: GPL-2.0
/* Test object for `pyrunq skel`: type names that Python or the generated
 * module already use (a struct `list`, an enum `dict`, a struct `Skeleton`),
 * a member named like a tuple method (`index`), and no program at all. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

enum dict { DICT_A = 1, DICT_B = 2 };

struct list {
	__u32 index;
	enum dict kind;
};

struct Skeleton {
	__u64 x;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, struct Skeleton);
	__type(value, struct list);
} m SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
