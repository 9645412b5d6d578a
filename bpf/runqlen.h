/* SPDX-License-Identifier: GPL-2.0 */
/*
 * runqlen's types, shared by bpf/runqlen.bpf.c and user space (which reads
 * their layout from the object's BTF). Plain C on __u64 only.
 */
#ifndef __RUNQLEN_H
#define __RUNQLEN_H

/* Queue lengths 0 .. RUNQLEN_SLOTS - 2 each get a slot; the last slot holds
 * that length and every longer one. libbpf-tools' runqlen keeps 32 too. */
#define RUNQLEN_SLOTS 32

/* Samples per queue length, of one CPU: cumulative, user space takes
 * differences. */
struct runqlen_hist {
	__u64 slots[RUNQLEN_SLOTS];
};

#endif /* __RUNQLEN_H */
