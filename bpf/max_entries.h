/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The default size of the tables that grow with what is traced (processes,
 * threads inside a call, histogram keys, stacks, filter sets). User space may
 * resize any of them before load (pyrunq.bpf.Map.max_entries), as runqlat's
 * `hists` and stackcount's `counts` are.
 */
#ifndef PYRUNQ_MAX_ENTRIES_H
#define PYRUNQ_MAX_ENTRIES_H

#define MAX_ENTRIES 10240

#endif
