/* SPDX-License-Identifier: GPL-2.0 */
/* Arithmetic the BPF programs share. Include after vmlinux.h and bpf_helpers.h. */
#ifndef PYRUNQ_MATHS_BPF_H
#define PYRUNQ_MATHS_BPF_H

/*
 * floor(log2(v)), and 0 for v = 0: in 0..63. Without a branch: shifts and
 * ORs. Its bound does not survive the ORs in every verifier (6.1 loses it):
 * an array index made from it goes through clamp_index() before the access.
 */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xffffffff) << 5;
	v >>= r;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	return r | (v >> 1);
}

/*
 * i, or n - 1 when i >= n: an array index whose bound the verifier sees at the
 * access. In 64 bits and behind a barrier, so that clang neither drops the
 * test (it may know the bound already) nor makes it on a copy of i.
 */
static __always_inline __u64 clamp_index(__u64 i, __u64 n)
{
	barrier_var(i);
	if (i >= n)
		i = n - 1;
	return i;
}

#endif
