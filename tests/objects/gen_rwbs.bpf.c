// SPDX-License-Identifier: GPL-2.0
/* Test object: block requests' op and flags, kept as libbpf-tools' biosnoop
 * keeps them (a plain integer copied from `rq->cmd_flags` with
 * BPF_CORE_READ), beside what the kernel's own tracepoint writes of the same
 * completion (block_rq_complete's `rwbs` text), each with the request's
 * device and sector, so that the two can be paired:
 * - `requests`: from tp_btf/block_rq_complete's request;
 * - `kernel_says`: from tracepoint/block/block_rq_complete. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define MINORBITS 20
#define MKDEV(ma, mi) (((ma) << MINORBITS) | (mi))

struct request_seen {
	__u64 sector;
	__u32 dev;
	__u32 cmd_flags;
};

struct kernel_rwbs {
	__u64 sector;
	__u32 dev;
	char rwbs[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} kernel_says SEC(".maps");

SEC("tp_btf/block_rq_complete")
int BPF_PROG(on_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	struct request_seen *e;

	e = bpf_ringbuf_reserve(&requests, sizeof(*e), 0);
	if (!e)
		return 0;
	e->sector = BPF_CORE_READ(rq, __sector);
	e->dev = disk ? MKDEV(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor)) : 0;
	e->cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int on_complete_tp(struct trace_event_raw_block_rq_completion *ctx)
{
	struct kernel_rwbs *e;

	e = bpf_ringbuf_reserve(&kernel_says, sizeof(*e), 0);
	if (!e)
		return 0;
	e->sector = BPF_CORE_READ(ctx, sector);
	e->dev = BPF_CORE_READ(ctx, dev);
	BPF_CORE_READ_STR_INTO(&e->rwbs, ctx, rwbs);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
