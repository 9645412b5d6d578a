/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types shared by bpf/bootstrap.bpf.c and user space (pyrunq.tools.bootstrap
 * reads the layout from the object's BTF). Plain C on __u32/__u64 only; in
 * BPF code include it after vmlinux.h.
 */
#ifndef __BOOTSTRAP_H
#define __BOOTSTRAP_H

#include "kernel_defs.h"

#define MAX_FILENAME_LEN 256

/* One exec, or one process exit (the thread-group leader's). */
struct bootstrap_event {
	__u64 duration_ns;		/* exit: time since exec; 0 if unknown */
	__u32 pid;			/* tgid */
	__u32 ppid;			/* tgid of the real parent */
	__u32 exit_code;		/* exit: (task->exit_code >> 8) & 0xff */
	__u32 exit_event;		/* 1: exit, 0: exec */
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN];	/* exec: the path exec'd */
};

/* Indices into the per-CPU `stats` counters. */
enum bootstrap_stat {
	BOOTSTRAP_STAT_LOST = 0,	/* ring buffer full, event lost */
	BOOTSTRAP_STAT_START_FULL = 1,	/* exec_start full: lifetime unknown */
	BOOTSTRAP_STAT_MAX = 2,
};

#endif /* __BOOTSTRAP_H */
