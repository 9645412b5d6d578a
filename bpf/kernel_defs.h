/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's constants that the BPF programs and the struct headers shared
 * with user space need, and that vmlinux.h cannot give: BTF carries types,
 * not #defines. Plain C; include after vmlinux.h (whose anonymous enum, when
 * made from a recent kernel, also names TASK_COMM_LEN: the macro, with the
 * same value, takes over from there).
 */
#ifndef PYRUNQ_KERNEL_DEFS_H
#define PYRUNQ_KERNEL_DEFS_H

#define TASK_COMM_LEN 16	/* a task's comm with its NUL (linux/sched.h) */
#define TASK_RUNNING 0		/* a task's __state (state before 5.14) */
#define EFAULT 14		/* uapi/asm-generic/errno-base.h */
#define EEXIST 17

#endif
