/* SPDX-License-Identifier: GPL-2.0 */
/* funclatency: what the kernel side counts, read by user space through BTF. */
#ifndef PYRUNQ_FUNCLATENCY_H
#define PYRUNQ_FUNCLATENCY_H

#define FUNCLAT_SLOTS 64	/* log2 slots: enough for any u64 */

/* Cumulative since load; user space takes differences per interval. */
struct funclat {
	__u64 slots[FUNCLAT_SLOTS];	/* slot i: latency 2^i .. 2^(i+1)-1 units; 0 also in 0 */
	__u64 count;			/* calls that returned */
	__u64 sum_ns;			/* their total latency */
	__u64 missed;			/* calls not timed: the table of running calls was full */
};

#endif
