"""cffi declarations of the libbpf API pyrunq uses (build time only), and of
the little C of pyrunq's own that Python is too slow for, under ``native/``:
runqlat's per-key work (``hists.c``, for ``pyrunq.bpf.hists``) and
runqslower's rows (``rows.c``, for ``pyrunq.bpf.rows``), both writing into
``text.c``'s growing buffer.

API (out-of-line) mode: the extension ``pyrunq._libbpf_cffi`` is compiled
against libbpf's headers and linked to libbpf.so.1, so the C compiler checks
every struct layout (``...;``) and libbpf's ``va_list`` log messages can be
formatted in C. ``build.py`` compiles it; nothing imports this at run time.
"""

import os

from cffi import FFI

# native/ of the source tree (or of the sdist): the C that SOURCE includes
NATIVE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "native")

CDEF = r"""
typedef uint8_t __u8;
typedef uint32_t __u32;
typedef int32_t __s32;
typedef uint64_t __u64;
typedef int64_t __s64;

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
struct ring_buffer;
struct perf_buffer;
struct perf_buffer_opts;
struct btf;

struct bpf_object_open_opts {
    size_t sz;
    const char *object_name;
    const char *btf_custom_path;
    ...;
};
struct bpf_map_batch_opts {
    size_t sz;
    __u64 elem_flags;
    __u64 flags;
    ...;
};

struct bpf_uprobe_opts {
    size_t sz;
    size_t ref_ctr_offset;
    __u64 bpf_cookie;
    bool retprobe;
    const char *func_name;
    ...;
};

struct bpf_usdt_opts {
    size_t sz;
    __u64 usdt_cookie;
    ...;
};

struct bpf_prog_info {
    __u64 run_time_ns;
    __u64 run_cnt;
    __u32 id;
    ...;
};
int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);

struct btf_type {
    __u32 name_off;
    __u32 info;
    union { __u32 size; __u32 type; };
};
struct btf_member { __u32 name_off; __u32 type; __u32 offset; };
struct btf_array { __u32 type; __u32 index_type; __u32 nelems; };
struct btf_enum { __u32 name_off; __s32 val; };
struct btf_var_secinfo { __u32 type; __u32 offset; __u32 size; };

__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);
const char *libbpf_version_string(void);
int libbpf_strerror(int err, char *buf, size_t size);
int libbpf_num_possible_cpus(void);

struct bpf_object *bpf_object__open_file(const char *path,
                                         const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj,
                                     const struct bpf_map *map);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
                                             struct bpf_program *prog);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__fd(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, int pid,
                                                 const char *binary_path, size_t func_offset,
                                                 const struct bpf_uprobe_opts *opts);
struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, int pid,
                                          const char *binary_path, const char *usdt_provider,
                                          const char *usdt_name, const struct bpf_usdt_opts *opts);
int bpf_program__type(const struct bpf_program *prog);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_cgroup(const struct bpf_program *prog, int cgroup_fd);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);
const char *libbpf_bpf_prog_type_str(int t);
const char *libbpf_bpf_attach_type_str(int t);
const char *libbpf_bpf_map_type_str(int t);
int bpf_link__destroy(struct bpf_link *link);
int bpf_link__fd(const struct bpf_link *link);

const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__type(const struct bpf_map *map);
__u32 bpf_map__key_size(const struct bpf_map *map);
__u32 bpf_map__value_size(const struct bpf_map *map);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
int bpf_map__set_key_size(struct bpf_map *map, __u32 size);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
int bpf_map__set_autocreate(struct bpf_map *map, bool autocreate);
__u32 bpf_map__btf_key_type_id(const struct bpf_map *map);
__u32 bpf_map__btf_value_type_id(const struct bpf_map *map);
bool bpf_map__is_internal(const struct bpf_map *map);
const char *bpf_map__pin_path(const struct bpf_map *map);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
__u32 bpf_map__map_flags(const struct bpf_map *map);
void *pyrunq_map_initial_value(struct bpf_map *map, size_t *psize);

int bpf_map__lookup_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                         void *value, size_t value_sz, __u64 flags);
int bpf_map__update_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                         const void *value, size_t value_sz, __u64 flags);
int bpf_map__delete_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                         __u64 flags);
int bpf_map__get_next_key(const struct bpf_map *map, const void *cur_key,
                          void *next_key, size_t key_sz);
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys,
                         void *values, __u32 *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch,
                                    void *keys, void *values, __u32 *count,
                                    const struct bpf_map_batch_opts *opts);

typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn sample_cb,
                                     void *ctx, const void *opts);
int ring_buffer__add(struct ring_buffer *rb, int map_fd,
                     ring_buffer_sample_fn sample_cb, void *ctx);
int ring_buffer__poll(struct ring_buffer *rb, int timeout_ms);
int ring_buffer__consume(struct ring_buffer *rb);
int ring_buffer__epoll_fd(const struct ring_buffer *rb);
void ring_buffer__free(struct ring_buffer *rb);

typedef void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
/* the kernel's __u64 is unsigned long long: a function pointer type must match it */
typedef void (*perf_buffer_lost_fn)(void *ctx, int cpu, unsigned long long cnt);
struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt,
                                     perf_buffer_sample_fn sample_cb,
                                     perf_buffer_lost_fn lost_cb, void *ctx,
                                     const struct perf_buffer_opts *opts);
int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
int perf_buffer__consume(struct perf_buffer *pb);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
void perf_buffer__free(struct perf_buffer *pb);

const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *name, __u32 kind);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
__u32 btf__type_cnt(const struct btf *btf);
const void *btf__raw_data(const struct btf *btf, __u32 *size);

/* a BTF of our own (types from DWARF), and libbpf's C printer of types */
struct btf *btf__new_empty(void);
int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding);
int btf__add_float(struct btf *btf, const char *name, size_t byte_sz);
int btf__add_ptr(struct btf *btf, int ref_type_id);
int btf__add_array(struct btf *btf, int index_type_id, int elem_type_id, __u32 nr_elems);
int btf__add_struct(struct btf *btf, const char *name, __u32 sz);
int btf__add_union(struct btf *btf, const char *name, __u32 sz);
int btf__add_field(struct btf *btf, const char *name, int field_type_id,
                   __u32 bit_offset, __u32 bit_size);
int btf__add_enum(struct btf *btf, const char *name, __u32 bytes_sz);
int btf__add_enum_value(struct btf *btf, const char *name, __s64 value);
int btf__add_enum64(struct btf *btf, const char *name, __u32 bytes_sz, bool is_signed);
int btf__add_enum64_value(struct btf *btf, const char *name, __u64 value);
enum btf_fwd_kind { BTF_FWD_STRUCT, BTF_FWD_UNION, ... };
int btf__add_fwd(struct btf *btf, const char *name, enum btf_fwd_kind fwd_kind);
int btf__add_typedef(struct btf *btf, const char *name, int ref_type_id);
int btf__add_volatile(struct btf *btf, int ref_type_id);
int btf__add_const(struct btf *btf, int ref_type_id);
int btf__add_restrict(struct btf *btf, int ref_type_id);
int btf__add_func_proto(struct btf *btf, int ret_type_id);

struct btf_dump;
struct btf_dump_emit_type_decl_opts {
    size_t sz;
    const char *field_name;
    int indent_level;
    bool strip_mods;
    ...;
};
struct btf_dump *pyrunq_btf_dump_new(const struct btf *btf, void *ctx);
int btf_dump__dump_type(struct btf_dump *d, __u32 id);
int btf_dump__emit_type_decl(struct btf_dump *d, __u32 id,
                             const struct btf_dump_emit_type_decl_opts *opts);
void btf_dump__free(struct btf_dump *d);

int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_map_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_link_get_next_id(__u32 start_id, __u32 *next_id);

int libbpf_probe_bpf_prog_type(int prog_type, const void *opts);
int libbpf_probe_bpf_map_type(int map_type, const void *opts);

/* attaching: iterators, perf events, and the fentry probe */
struct bpf_iter_attach_opts;
struct bpf_link *bpf_program__attach_iter(const struct bpf_program *prog,
                                          const struct bpf_iter_attach_opts *opts);
struct bpf_link *bpf_program__attach_perf_event(const struct bpf_program *prog, int pfd);
int bpf_iter_create(int link_fd);
enum bpf_prog_type { BPF_PROG_TYPE_TRACING, ... };
int bpf_program__set_type(struct bpf_program *prog, enum bpf_prog_type type);
enum bpf_attach_type { BPF_TRACE_FENTRY, ... };
struct bpf_insn;
struct bpf_prog_load_opts {
    size_t sz;
    enum bpf_attach_type expected_attach_type;
    __u32 attach_btf_id;
    __u32 log_size;
    char *log_buf;
    ...;
};
int bpf_prog_load(enum bpf_prog_type prog_type, const char *prog_name, const char *license,
                  const struct bpf_insn *insns, size_t insn_cnt,
                  const struct bpf_prog_load_opts *opts);
int bpf_raw_tracepoint_open(const char *name, int prog_fd);
struct btf *btf__load_vmlinux_btf(void);
struct btf *btf__load_module_btf(const char *module_name, struct btf *vmlinux_btf);
void btf__free(struct btf *btf);
int pyrunq_perf_event_open_cpu_clock(int cpu, unsigned long long freq);
int pyrunq_perf_event_open(unsigned int type, unsigned long long config, int cpu,
                           unsigned long long sample, int freq);
int pyrunq_ringbuf_create(const char *name, unsigned int size);
int pyrunq_mount_tracefs(const char *target);

extern "Python" int pyrunq_ringbuf_sample(void *ctx, void *data, size_t size);
extern "Python" void pyrunq_perfbuf_sample(void *ctx, int cpu, void *data, __u32 size);
extern "Python" void pyrunq_perfbuf_lost(void *ctx, int cpu, unsigned long long cnt);
extern "Python" void pyrunq_log(int level, const char *msg);
extern "Python" void pyrunq_dump_text(void *ctx, const char *text);
void pyrunq_route_libbpf_log(void);

/* runqlat's per-key work (differences, log2 slots, text): see the C below */
#define PYRUNQ_NO_MEMBER ...
#define PYRUNQ_BUCKETS ...
#define PYRUNQ_HEADING_NONE 0
#define PYRUNQ_HEADING_TID 1
#define PYRUNQ_HEADING_PID 2
#define PYRUNQ_HEADING_PIDNS 3
#define PYRUNQ_HEADING_CGROUP 4
struct pyrunq_hists;
struct pyrunq_hists *pyrunq_hists_new(size_t key_size, size_t value_size, size_t buckets_off,
                                      size_t nbuckets, size_t comm_off, size_t comm_len);
void pyrunq_hists_free(struct pyrunq_hists *t);
int pyrunq_hists_diff(struct pyrunq_hists *t, const void *keys, size_t keys_len, const void *values,
                      size_t values_len, size_t count, int clear);
struct pyrunq_key_stats {
    uint64_t key, waits, sum_ns, max;
    double p50, p99;
    uint64_t blame_ns[5];
    char comm[17];
};
int pyrunq_hists_with_stats(struct pyrunq_hists *t, size_t sum_off, size_t blame_off);
const struct pyrunq_key_stats *pyrunq_hists_stats(const struct pyrunq_hists *t, size_t *count,
                                                  const uint64_t **total);
const uint64_t *pyrunq_hists_changed(const struct pyrunq_hists *t, size_t *count);
const uint64_t *pyrunq_hists_idle(const struct pyrunq_hists *t, size_t *count);
void pyrunq_hists_forget(struct pyrunq_hists *t, uint64_t key);
size_t pyrunq_hists_len(const struct pyrunq_hists *t);
#define PYRUNQ_ORDER_KEY 0
#define PYRUNQ_ORDER_WAITS 1
#define PYRUNQ_ORDER_AVG 2
#define PYRUNQ_ORDER_P50 3
#define PYRUNQ_ORDER_P99 4
#define PYRUNQ_ORDER_MAX 5
#define PYRUNQ_ORDER_SUM 6
long pyrunq_stats_order(const struct pyrunq_key_stats *stats, size_t n, int column, double seconds,
                        size_t *out);
long pyrunq_hists_render(struct pyrunq_hists *t, int headings, const char *unit, char **names,
                         size_t n_names, const char **text);

/* runqlat's culprit table per interval (native/blames.c) */
struct pyrunq_blames;
struct pyrunq_blame_entry {
    uint64_t victim, cgroup_id;
    uint32_t culprit, kind;
    uint64_t ns;
    char comm[17];
};
struct pyrunq_victim_blame {
    uint64_t victim, container_ns;
    int64_t top;
};
struct pyrunq_blames *pyrunq_blames_new(size_t key_size, size_t value_size, const size_t *off,
                                        size_t comm_len, uint32_t other);
void pyrunq_blames_free(struct pyrunq_blames *t);
int pyrunq_blames_diff(struct pyrunq_blames *t, const void *keys, size_t keys_len, const void *values,
                       size_t values_len, size_t count, int clear);
const struct pyrunq_blame_entry *pyrunq_blames_changes(const struct pyrunq_blames *t, size_t *count);
const uint64_t *pyrunq_blames_unnamed(struct pyrunq_blames *t, size_t *count);
int pyrunq_blames_name(struct pyrunq_blames *t, uint64_t cgroup_id, int container);
int pyrunq_blames_sum(struct pyrunq_blames *t);
const struct pyrunq_victim_blame *pyrunq_blames_victims(const struct pyrunq_blames *t, size_t *count);
struct pyrunq_row_blame {
    uint64_t container_ns;
    int64_t has_top;
    struct pyrunq_blame_entry top;
};
int pyrunq_blames_join(struct pyrunq_blames *t, const struct pyrunq_key_stats *rows, size_t n,
                       struct pyrunq_row_blame *out, int carry, int clear);
long pyrunq_blames_forget(struct pyrunq_blames *t, uint64_t *victims, size_t n_victims, uint64_t *cgroups,
                          size_t n_cgroups);
const struct pyrunq_blame_entry *pyrunq_blames_forgotten(const struct pyrunq_blames *t, size_t *count);
size_t pyrunq_blames_len(const struct pyrunq_blames *t);
size_t pyrunq_blames_cgroups(const struct pyrunq_blames *t, uint64_t *ids);

/* runqslower's rows (native/rows.c); a ring buffer callback's "budget
 * spent" return (libbpf stops the poll there and returns it) */
#define PYRUNQ_BUDGET_SPENT ...
struct pyrunq_rows;
struct pyrunq_rows *pyrunq_rows_new(const size_t *off, size_t comm_len, size_t record_size, int previous);
void pyrunq_rows_free(struct pyrunq_rows *r);
int pyrunq_rows_sample(void *ctx, void *data, size_t size);
void pyrunq_rows_start(struct pyrunq_rows *r, unsigned budget);
unsigned pyrunq_rows_handled(const struct pyrunq_rows *r);
long pyrunq_rows_take(struct pyrunq_rows *r, const char **text);
/* runqslower --blame's column (native/culprits.c) */
struct pyrunq_culprits;
struct pyrunq_culprits *pyrunq_culprits_new(const size_t *off, size_t comm_len, size_t record_size,
                                            const unsigned char *kinds, size_t n_kinds, char **whys,
                                            size_t n_whys);
void pyrunq_culprits_free(struct pyrunq_culprits *c);
int pyrunq_culprits_name(struct pyrunq_culprits *c, uint64_t id, const char *label, int container);
int pyrunq_rows_blame(struct pyrunq_rows *r, struct pyrunq_culprits *c);
size_t pyrunq_rows_wanted(const struct pyrunq_rows *r, const uint64_t **ids);
struct pyrunq_culprits *pyrunq_rows_culprits(struct pyrunq_rows *r);
void pyrunq_rows_release(struct pyrunq_rows *r);
"""

SOURCE = r"""
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

static void pyrunq_log(int level, const char *msg);
static void pyrunq_dump_text(void *ctx, const char *text);

/* libbpf hands its log and btf_dump its C text over as a va_list, which
 * Python cannot format: the text, in SMALL or, when it is longer, in a
 * malloc'd buffer that the caller frees (SMALL, cut short, if that fails). */
static char *pyrunq_vformat(char *small, size_t size, const char *fmt, va_list ap)
{
    char *buf = small;
    va_list copy;
    int n;

    va_copy(copy, ap);
    n = vsnprintf(small, size, fmt, ap);
    if (n >= (int)size && !(buf = malloc(n + 1)))
        buf = small;
    else if (buf != small)
        vsnprintf(buf, n + 1, fmt, copy);
    va_end(copy);
    return buf;
}

static int pyrunq_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    char small[512], *text = pyrunq_vformat(small, sizeof(small), fmt, ap);

    pyrunq_log(level, text);
    if (text != small)
        free(text);
    return 0;
}

/* btf_dump prints C a piece at a time: each piece goes to Python as text. */
static void pyrunq_dump_printf(void *ctx, const char *fmt, va_list ap)
{
    char small[256], *text = pyrunq_vformat(small, sizeof(small), fmt, ap);

    pyrunq_dump_text(ctx, text);
    if (text != small)
        free(text);
}

static struct btf_dump *pyrunq_btf_dump_new(const struct btf *btf, void *ctx)
{
    return btf_dump__new(btf, pyrunq_dump_printf, ctx, NULL);
}

static void pyrunq_route_libbpf_log(void)
{
    libbpf_set_print(pyrunq_print);
}

/* Perf event TYPE/CONFIG on one CPU, for every task, sampling every SAMPLE
 * events (or SAMPLE times a second when FREQ): its fd, or a negative errno.
 * glibc has no perf_event_open() wrapper. */
static int pyrunq_perf_event_open(unsigned int type, unsigned long long config, int cpu,
                                  unsigned long long sample, int freq)
{
    struct perf_event_attr attr;
    long fd;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = type;
    attr.config = config;
    attr.freq = freq ? 1 : 0;
    attr.sample_period = sample;  /* a union with sample_freq */
    fd = syscall(__NR_perf_event_open, &attr, -1 /* every task */, cpu, -1,
                 PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

/* A software CPU clock on one CPU, sampling every task at freq Hz (what a
 * SEC("perf_event") program of profile or runqlen expects). */
static int pyrunq_perf_event_open_cpu_clock(int cpu, unsigned long long freq)
{
    return pyrunq_perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, cpu, freq, 1);
}

/* A ring buffer of SIZE bytes without key, value or BTF types: the fd, or a
 * negative errno. */
static int pyrunq_ringbuf_create(const char *name, unsigned int size)
{
    int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, name, 0, 0, size, NULL);
    return fd < 0 ? -errno : fd;
}

/* mount -t tracefs nodev TARGET, as perf does: 0 or a negative errno. */
static int pyrunq_mount_tracefs(const char *target)
{
    return mount("nodev", target, "tracefs", 0, NULL) ? -errno : 0;
}

/* The prototype's constness changed in libbpf 1.3 and 1.4: one stable name. */
static void *pyrunq_map_initial_value(struct bpf_map *map, size_t *psize)
{
    return (void *)bpf_map__initial_value(map, psize);
}

/* pyrunq's own C, where Python is too slow (native/) */
#define PYRUNQ_BUDGET_SPENT (-(1 << 20))  /* not an errno: those are small */
#include "text.c"
#include "hists.c"
#include "cgroups.c"
#include "culprits.c"
#include "blames.c"
#include "rows.c"
"""


def ffibuilder() -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source("pyrunq._libbpf_cffi", SOURCE, libraries=[":libbpf.so.1"], include_dirs=[NATIVE])
    return ffi
