// SPDX-License-Identifier: GPL-2.0
/* Test object: numbers that are names, kept as tracing tools keep them,
 * each copied from a tracepoint's field: nothing in the object's types says
 * what they hold (plain integers), only where its programs read them.
 * - `changes`: the TCP state changes (sock/inet_sock_set_state's oldstate
 *   and newstate) of sockets on `target_port`, in ring buffer records, with
 *   the protocol (a number of no known meaning: stays a number); the same
 *   records sent from the stack to the perf event array `perf_changes`;
 * - `by_syscall`: syscalls of `target_tgid` counted by number
 *   (raw_syscalls/sys_enter's id);
 * - `by_signal`: signals `target_tgid` sends, by number (signal_generate's sig);
 * - `by_pid_type`: its getpgid calls, by a key whose type is a kernel enum
 *   (`enum pid_type`: PIDTYPE_PGID), named by its type, not where it came from;
 * - `mixed`: the same counted by the syscall's number or by the process,
 *   as `by_pid` says: nothing in the object says which, so a number;
 * - `by_vec`: softirqs counted by vector (irq/softirq_entry's vec);
 * - `finished`: softirqs that ran, in a global array indexed by the vector,
 *   from tp_btf/softirq_exit's argument, by a BPF function (as libbpf-tools'
 *   softirqs keeps them; not softirq_entry: pyrunq would run one of two twins);
 * - `by_disk`: completed block requests counted by device (the kernel's
 *   dev_t of block/block_rq_complete), read with BPF_CORE_READ. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define IPPROTO_TCP 6
#define NR_getpgid 121	/* x86_64 */

struct change {
	__u64 ts;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 protocol;
};

const volatile __u16 target_port = 0;
const volatile __u32 target_tgid = 0;
const volatile bool by_pid = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} changes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_changes SEC(".maps");

#define COUNTER(name)                           \
	struct {                                \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 512);        \
		__type(key, __u32);              \
		__type(value, __u64);            \
	} name SEC(".maps")

COUNTER(by_syscall);
COUNTER(by_signal);
COUNTER(mixed);
COUNTER(by_vec);
COUNTER(by_disk);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, enum pid_type);
	__type(value, __u64);
} by_pid_type SEC(".maps");

static __always_inline void count(void *map, __u32 *key)
{
	static const __u64 one = 1;
	__u64 *n = bpf_map_lookup_elem(map, key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

SEC("tracepoint/sock/inet_sock_set_state")
int on_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct change *c, sent = {};

	if (ctx->protocol != IPPROTO_TCP || (ctx->sport != target_port && ctx->dport != target_port))
		return 0;
	c = bpf_ringbuf_reserve(&changes, sizeof(*c), 0);
	if (!c)
		return 0;
	c->ts = bpf_ktime_get_ns();
	c->oldstate = ctx->oldstate;
	c->newstate = ctx->newstate;
	c->sport = ctx->sport;
	c->dport = ctx->dport;
	c->protocol = ctx->protocol;
	sent.ts = c->ts;
	bpf_ringbuf_submit(c, 0);
	/* filled anew from the tracepoint: a copy of the record, read back
	 * from the ring buffer's memory, would not say what it holds */
	sent.oldstate = ctx->oldstate;
	sent.newstate = ctx->newstate;
	sent.sport = ctx->sport;
	sent.dport = ctx->dport;
	sent.protocol = ctx->protocol;
	bpf_perf_event_output(ctx, &perf_changes, BPF_F_CURRENT_CPU, &sent, sizeof(sent));
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_syscall(struct trace_event_raw_sys_enter *ctx)
{
	__u32 nr, key;

	if (bpf_get_current_pid_tgid() >> 32 != target_tgid)
		return 0;
	nr = ctx->id;
	count(&by_syscall, &nr);
	if (nr == NR_getpgid) {
		enum pid_type type = PIDTYPE_PGID;

		count(&by_pid_type, (__u32 *)&type);
	}
	key = by_pid ? target_tgid : ctx->id;
	count(&mixed, &key);
	return 0;
}

SEC("tracepoint/signal/signal_generate")
int on_signal(struct trace_event_raw_signal_generate *ctx)
{
	__u32 sig = ctx->sig;

	if (bpf_get_current_pid_tgid() >> 32 == target_tgid)
		count(&by_signal, &sig);
	return 0;
}

SEC("tracepoint/irq/softirq_entry")
int on_softirq(struct trace_event_raw_softirq *ctx)
{
	__u32 vec = ctx->vec;

	count(&by_vec, &vec);
	return 0;
}

__u64 finished[NR_SOFTIRQS] = {};

static __noinline int tally(__u32 vec)
{
	if (vec < NR_SOFTIRQS)
		__sync_fetch_and_add(&finished[vec], 1);
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(on_softirq_btf, unsigned int vec_nr)
{
	return tally(vec_nr);
}

SEC("tracepoint/block/block_rq_complete")
int on_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	__u32 dev = BPF_CORE_READ(ctx, dev);

	count(&by_disk, &dev);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
