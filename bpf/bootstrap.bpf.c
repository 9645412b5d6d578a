// SPDX-License-Identifier: GPL-2.0
/*
 * bootstrap: one event per exec and per process exit, with the exit code and
 * the time since exec. tp_btf only, no raw_tp flavour: ring buffers (5.8)
 * came after tp_btf (5.5), so no kernel this can run on lacks it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "bootstrap.h"
#include "max_entries.h"
#define STATS_ENUM bootstrap_stat
#define STATS_MAX BOOTSTRAP_STAT_MAX
#include "stats.bpf.h"

/* Report only exits at least this long after exec, and no execs (0: all). */
const volatile __u64 min_duration_ns = 0;

/* Exec time by tgid, deleted at the exit of the process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} exec_start SEC(".maps");

/* No __type(value): libbpf 1.1 rejects it on ring buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Keeps struct bootstrap_event in the object's BTF for user space. */
const struct bootstrap_event *const unused_event __attribute__((unused));

/* A zeroed record for task p, or NULL (counted) when the ring is full. */
static __always_inline struct bootstrap_event *reserve(struct task_struct *p)
{
	struct bootstrap_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(BOOTSTRAP_STAT_LOST);
		return NULL;
	}
	/* the record lands in user space whole: leave no stale ring bytes */
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = BPF_CORE_READ(p, tgid);
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	return e;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u64 now = bpf_ktime_get_ns();
	struct bootstrap_event *e;

	/* an exec of a process already known restarts its lifetime */
	if (bpf_map_update_elem(&exec_start, &tgid, &now, BPF_ANY))
		stat_inc(BOOTSTRAP_STAT_START_FULL);
	if (min_duration_ns)
		return 0;
	e = reserve(p);
	if (!e)
		return 0;
	/* filename is a pointer: read it, then the string it points to */
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				  BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u64 duration_ns = 0, *start;
	struct bootstrap_event *e;

	/* a thread's exit is not the process's */
	if (tgid != BPF_CORE_READ(p, pid))
		return 0;
	start = bpf_map_lookup_elem(&exec_start, &tgid);
	if (start) {
		duration_ns = bpf_ktime_get_ns() - *start;
		bpf_map_delete_elem(&exec_start, &tgid);
	}
	/* with a minimum, a lifetime not known (exec before we started) is
	 * not known to be long enough */
	if (min_duration_ns && (!start || duration_ns < min_duration_ns))
		return 0;
	e = reserve(p);
	if (!e)
		return 0;
	e->exit_event = 1;
	e->duration_ns = duration_ns;
	e->exit_code = (BPF_CORE_READ(p, exit_code) >> 8) & 0xff;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
