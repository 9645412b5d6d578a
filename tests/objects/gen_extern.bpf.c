// SPDX-License-Identifier: GPL-2.0
/* Test object: a call to a function neither the kernel nor libbpf defines
 * (as an object built against newer headers calls bpf_ksym_exists): libbpf
 * finds no BTF for the extern where it looks for kernel functions
 * (.ksyms), and fails at open. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int pyrunq_no_such_function(void *p);

__u64 hits = 0;

SEC("raw_tp/sys_enter")
int count(void *ctx)
{
	if (pyrunq_no_such_function(&hits))
		__sync_fetch_and_add(&hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
