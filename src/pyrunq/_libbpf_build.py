"""cffi declarations of the libbpf API pyrunq uses (build time only), and
the little C of pyrunq's own that Python is too slow for (runqlat's per-key
work: ``pyrunq_hists_*``, used by ``pyrunq.bpf.hists``).

API (out-of-line) mode: the extension ``pyrunq._libbpf_cffi`` is compiled
against libbpf's headers and linked to libbpf.so.1, so the C compiler checks
every struct layout (``...;``) and libbpf's ``va_list`` log messages can be
formatted in C. ``build.py`` compiles it; nothing imports this at run time.
"""

from cffi import FFI

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
int bpf_program__type(const struct bpf_program *prog);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
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
int pyrunq_mount_tracefs(const char *target);

extern "Python" int pyrunq_ringbuf_sample(void *ctx, void *data, size_t size);
extern "Python" void pyrunq_perfbuf_sample(void *ctx, int cpu, void *data, __u32 size);
extern "Python" void pyrunq_perfbuf_lost(void *ctx, int cpu, unsigned long long cnt);
extern "Python" void pyrunq_log(int level, const char *msg);
extern "Python" void pyrunq_dump_text(void *ctx, const char *text);
void pyrunq_route_libbpf_log(void);

/* runqlat's per-key work (differences, log2 slots, text): see the C below */
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
const uint64_t *pyrunq_hists_changed(const struct pyrunq_hists *t, size_t *count);
const uint64_t *pyrunq_hists_idle(const struct pyrunq_hists *t, size_t *count);
void pyrunq_hists_forget(struct pyrunq_hists *t, uint64_t key);
size_t pyrunq_hists_len(const struct pyrunq_hists *t);
long pyrunq_hists_render(struct pyrunq_hists *t, int headings, const char *unit, char **names,
                         size_t n_names, const char **text);
"""

SOURCE = r"""
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A software CPU clock on one CPU, sampling every task at freq Hz (what a
 * SEC("perf_event") program of profile or runqlen expects): the perf event's
 * fd, or a negative errno. glibc has no perf_event_open() wrapper. */
static int pyrunq_perf_event_open_cpu_clock(int cpu, unsigned long long freq)
{
    struct perf_event_attr attr;
    long fd;

    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = freq;
    fd = syscall(__NR_perf_event_open, &attr, -1 /* every task */, cpu, -1,
                 PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
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

/* ---- runqlat: the per-key work of one interval, in C ---------------------
 *
 * runqlat's kernel side keeps a cumulative struct hist per key (bpf/runq.h:
 * fine buckets, never cleared). Each interval, user space subtracts the
 * counts it saw last time, folds the fine buckets into libbpf-tools' log2
 * slots and prints them as runqlat.c does. With thousands of threads
 * (`runqlat -L`) that per-key work was most of pyrunq's CPU in Python, so it
 * is done here, on the raw bytes of a batch read. The Python version
 * (pyrunq.tools.runqlat, pyrunq.hist) stays the reference: the tests compare
 * the two byte for byte. One thread at a time uses a table.
 *
 * The value's layout comes from the object's BTF (offsets given at creation);
 * the bucket count and the folding into slots are pyrunq.hist's.
 */
#define PYRUNQ_HEADING_NONE 0
#define PYRUNQ_HEADING_TID 1
#define PYRUNQ_HEADING_PID 2
#define PYRUNQ_HEADING_PIDNS 3
#define PYRUNQ_HEADING_CGROUP 4

#define PYRUNQ_BUCKETS 100     /* pyrunq.hist.HIST_BUCKETS */
#define PYRUNQ_SLOTS 26        /* pyrunq.hist.LOG2_SLOTS: libbpf-tools' MAX_SLOTS */
#define PYRUNQ_SUB 4           /* pyrunq.hist.SUB: fine buckets per power of two */
#define PYRUNQ_COMM_MAX 16     /* TASK_COMM_LEN */
#define PYRUNQ_STARS 40        /* the bar's width in print_log2_hist */
#define PYRUNQ_ROW_MAX 32      /* "%*lld -> %-*lld : " of a slot, with room to spare */

enum { BASE_EMPTY, BASE_USED, BASE_GONE };

/* One key's counts as of the last interval. */
struct pyrunq_base {
    uint64_t key;
    uint32_t state;            /* BASE_GONE: forgotten; probes go on past it */
    uint32_t buckets[PYRUNQ_BUCKETS];
};

/* One key with new samples this interval: what its section prints. */
struct pyrunq_change {
    uint32_t slots[PYRUNQ_SLOTS];
    char comm[PYRUNQ_COMM_MAX + 1];
};

struct pyrunq_hists {
    size_t key_size, value_size, buckets_off, comm_off, comm_len;
    /* the baselines: open addressing, linear probing, at most half full */
    struct pyrunq_base *base;
    size_t cap, used, gone;
    unsigned shift;            /* 64 - log2(cap), for the multiplicative hash */
    /* the last diff, in map order: keys with new samples (and their slots),
     * keys without; room for lists_cap entries each */
    uint64_t *changed_keys, *idle_keys;
    struct pyrunq_change *changes;
    size_t n_changed, n_idle, lists_cap;
    /* the last text; out_failed: an allocation failed, the text is cut short */
    char *text;
    size_t len, text_cap;
    int out_failed;
    /* the fixed start of each row, made once */
    char rows[PYRUNQ_SLOTS][PYRUNQ_ROW_MAX];
    size_t row_len[PYRUNQ_SLOTS];
};

static size_t pyrunq_base_home(const struct pyrunq_hists *t, uint64_t key)
{
    /* Fibonacci hashing: consecutive tids spread over the whole table */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> t->shift);
}

/* The slot holding key, or the empty slot where it would go. The table is
 * never more than half full (used + gone), so the probe ends. */
static size_t pyrunq_base_find(const struct pyrunq_hists *t, uint64_t key)
{
    size_t mask = t->cap - 1, i = pyrunq_base_home(t, key);

    while (t->base[i].state != BASE_EMPTY) {
        if (t->base[i].state == BASE_USED && t->base[i].key == key)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

/* Rebuild the table, if needed, so that one more key keeps it at most half
 * full: twice as large, or as large with the forgotten entries dropped. */
static int pyrunq_base_reserve(struct pyrunq_hists *t)
{
    struct pyrunq_base *old = t->base;
    size_t old_cap = t->cap, cap = 64, i;
    unsigned shift = 64 - 6;

    if (old && t->used + t->gone + 1 <= t->cap / 2)
        return 0;
    while (cap / 2 < t->used + 1) {
        if (cap > SIZE_MAX / 4 / sizeof(*old))
            return -ENOMEM;
        cap *= 2;
        shift--;
    }
    t->base = calloc(cap, sizeof(*old));
    if (!t->base) {
        t->base = old;
        return -ENOMEM;
    }
    t->cap = cap;
    t->shift = shift;
    t->gone = 0;
    for (i = 0; i < old_cap; i++)
        if (old[i].state == BASE_USED)
            t->base[pyrunq_base_find(t, old[i].key)] = old[i];
    free(old);
    return 0;
}

/* "%*lld -> %-*lld : " for each slot, as print_log2_hist computes them. */
static void pyrunq_make_rows(struct pyrunq_hists *t)
{
    int i, n;

    for (i = 0; i < PYRUNQ_SLOTS; i++) {
        long long low = (1LL << (i + 1)) >> 1, high = (1LL << (i + 1)) - 1;

        if (low == high)
            low -= 1;
        n = snprintf(t->rows[i], sizeof(t->rows[i]), "%*lld -> %-*lld : ", 10, low, 10, high);
        t->row_len[i] = n < 0 ? 0 : (size_t)n < sizeof(t->rows[i]) ? (size_t)n : sizeof(t->rows[i]) - 1;
    }
}

static void pyrunq_hists_free(struct pyrunq_hists *t)
{
    if (!t)
        return;
    free(t->base);
    free(t->changed_keys);
    free(t->idle_keys);
    free(t->changes);
    free(t->text);
    free(t);
}

/* A table for map values of value_size bytes whose nbuckets u32 counters
 * start at buckets_off and comm (char[comm_len]) at comm_off; keys of 4 or 8
 * bytes. NULL if the layout is not runqlat's or memory is short. */
static struct pyrunq_hists *pyrunq_hists_new(size_t key_size, size_t value_size, size_t buckets_off,
                                             size_t nbuckets, size_t comm_off, size_t comm_len)
{
    struct pyrunq_hists *t;

    if ((key_size != 4 && key_size != 8) || nbuckets != PYRUNQ_BUCKETS || comm_len > PYRUNQ_COMM_MAX
        || buckets_off > value_size || value_size - buckets_off < sizeof(uint32_t) * PYRUNQ_BUCKETS
        || comm_off > value_size || value_size - comm_off < comm_len)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->key_size = key_size;
    t->value_size = value_size;
    t->buckets_off = buckets_off;
    t->comm_off = comm_off;
    t->comm_len = comm_len;
    pyrunq_make_rows(t);
    if (pyrunq_base_reserve(t)) {
        pyrunq_hists_free(t);
        return NULL;
    }
    return t;
}

/* Room for n entries in each of the diff's lists. */
static int pyrunq_lists_reserve(struct pyrunq_hists *t, size_t n)
{
    void *p;

    if (n <= t->lists_cap)
        return 0;
    if (n > SIZE_MAX / sizeof(struct pyrunq_change))
        return -ENOMEM;
    if (!(p = realloc(t->changed_keys, n * sizeof(uint64_t))))
        return -ENOMEM;
    t->changed_keys = p;
    if (!(p = realloc(t->idle_keys, n * sizeof(uint64_t))))
        return -ENOMEM;
    t->idle_keys = p;
    if (!(p = realloc(t->changes, n * sizeof(struct pyrunq_change))))
        return -ENOMEM;
    t->changes = p;
    t->lists_cap = n;
    return 0;
}

static uint64_t pyrunq_key_at(const struct pyrunq_hists *t, const unsigned char *p)
{
    uint32_t k32;
    uint64_t k64;

    if (t->key_size == 4) {
        memcpy(&k32, p, sizeof(k32));
        return k32;
    }
    memcpy(&k64, p, sizeof(k64));
    return k64;
}

/* The log2 slots of the counts since base (NULL: since the start), folded as
 * pyrunq.hist.Histogram.slots does. In u32 arithmetic: a counter that
 * wrapped since base still gives its difference, as Histogram.__sub__ does. */
static void pyrunq_fold(uint32_t slots[PYRUNQ_SLOTS], const uint32_t *now, const uint32_t *base)
{
    int i;

    memset(slots, 0, sizeof(uint32_t) * PYRUNQ_SLOTS);
    for (i = 0; i < PYRUNQ_BUCKETS; i++)
        slots[i < PYRUNQ_SUB ? i / 2 : i / PYRUNQ_SUB + 1] += now[i] - (base ? base[i] : 0);
}

/* Make key's baseline now: 0 or -ENOMEM. */
static int pyrunq_base_set(struct pyrunq_hists *t, size_t slot, uint64_t key, const uint32_t *now)
{
    struct pyrunq_base *b = &t->base[slot];

    if (b->state != BASE_USED) {
        if (t->used + t->gone + 1 > t->cap / 2) {
            if (pyrunq_base_reserve(t))
                return -ENOMEM;
            b = &t->base[pyrunq_base_find(t, key)];
        }
        b->key = key;
        b->state = BASE_USED;
        t->used++;
    }
    memcpy(b->buckets, now, sizeof(b->buckets));
    return 0;
}

/* One map entry: idle (the same counts as last time) or a change. Only the
 * buckets are compared, as RunqLat.snapshot does. */
static int pyrunq_diff_one(struct pyrunq_hists *t, const unsigned char *key_p, const unsigned char *value,
                           int clear)
{
    uint64_t key = pyrunq_key_at(t, key_p);
    size_t slot = pyrunq_base_find(t, key);
    const struct pyrunq_base *b = &t->base[slot];
    uint32_t now[PYRUNQ_BUCKETS];
    struct pyrunq_change *c;

    memcpy(now, value + t->buckets_off, sizeof(now));
    if (b->state == BASE_USED && !memcmp(b->buckets, now, sizeof(now))) {
        t->idle_keys[t->n_idle++] = key;
        return 0;
    }
    c = &t->changes[t->n_changed];
    t->changed_keys[t->n_changed++] = key;
    pyrunq_fold(c->slots, now, b->state == BASE_USED ? b->buckets : NULL);
    memcpy(c->comm, value + t->comm_off, t->comm_len);
    c->comm[t->comm_len] = '\0';   /* %s stops at the first NUL, or at the array's end */
    return clear ? pyrunq_base_set(t, slot, key, now) : 0;
}

/* The differences of count entries of a batch read (keys and values packed
 * as libbpf returns them) from the baselines, which move to these counts
 * when clear is set. 0, -EINVAL (buffers shorter than count entries) or
 * -ENOMEM. */
static int pyrunq_hists_diff(struct pyrunq_hists *t, const void *keys, size_t keys_len, const void *values,
                             size_t values_len, size_t count, int clear)
{
    const unsigned char *k = keys, *v = values;
    size_t i;
    int err;

    t->n_changed = t->n_idle = 0;
    if (count > keys_len / t->key_size || count > values_len / t->value_size)
        return -EINVAL;
    if ((err = pyrunq_lists_reserve(t, count)))
        return err;
    for (i = 0; i < count; i++)
        if ((err = pyrunq_diff_one(t, k + i * t->key_size, v + i * t->value_size, clear)))
            return err;
    return 0;
}

static const uint64_t *pyrunq_hists_changed(const struct pyrunq_hists *t, size_t *count)
{
    *count = t->n_changed;
    return t->changed_keys;
}

static const uint64_t *pyrunq_hists_idle(const struct pyrunq_hists *t, size_t *count)
{
    *count = t->n_idle;
    return t->idle_keys;
}

/* How many keys have a baseline. */
static size_t pyrunq_hists_len(const struct pyrunq_hists *t)
{
    return t->used;
}

static void pyrunq_hists_forget(struct pyrunq_hists *t, uint64_t key)
{
    struct pyrunq_base *b = &t->base[pyrunq_base_find(t, key)];

    if (b->state == BASE_USED) {
        b->state = BASE_GONE;
        t->used--;
        t->gone++;
    }
}

/* ---- the text of the last diff ---- */

/* Append n bytes to the text, growing it; on failure only out_failed is set
 * (the caller checks it once at the end). */
static void pyrunq_put(struct pyrunq_hists *t, const char *s, size_t n)
{
    size_t cap = t->text_cap ? t->text_cap : 65536;
    char *p;

    if (t->out_failed)
        return;
    if (n > t->text_cap - t->len) {
        while (cap - t->len < n) {
            if (cap > SIZE_MAX / 2) {
                t->out_failed = 1;
                return;
            }
            cap *= 2;
        }
        if (!(p = realloc(t->text, cap))) {
            t->out_failed = 1;
            return;
        }
        t->text = p;
        t->text_cap = cap;
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
}

static void pyrunq_puts(struct pyrunq_hists *t, const char *s)
{
    pyrunq_put(t, s, strlen(s));
}

/* n spaces (n may be 0). */
static void pyrunq_pad(struct pyrunq_hists *t, size_t n)
{
    static const char spaces[] = "                                        ";

    while (n) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

        pyrunq_put(t, spaces, k);
        n -= k;
    }
}

/* The decimal digits of v, with a '-' if negative, as a string that ends
 * at the end of buf[24]; returns where it starts. */
static char *pyrunq_digits(char buf[24], long long v)
{
    unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = buf + 23;

    *p = '\0';
    do
        *--p = (char)('0' + m % 10);
    while (m /= 10);
    if (v < 0)
        *--p = '-';
    return p;
}

/* printf("%-8d", val) of an unsigned int, as print_log2_hist passes it. */
static void pyrunq_count(struct pyrunq_hists *t, uint32_t val)
{
    char buf[24], *p = pyrunq_digits(buf, (int32_t)val);
    size_t n = (size_t)(buf + 23 - p);

    pyrunq_put(t, p, n);
    pyrunq_pad(t, n < 8 ? 8 - n : 0);
}

/* trace_helpers.c print_stars(val, val_max, 40) between "|"s: the product
 * is unsigned int, so it wraps for large counts (kept on purpose); never a
 * '+', since val <= val_max here. */
static void pyrunq_bar(struct pyrunq_hists *t, uint32_t val, uint32_t val_max)
{
    static const char stars[] = "****************************************";
    uint32_t n = (val < val_max ? val : val_max) * (uint32_t)PYRUNQ_STARS / val_max;

    if (n > PYRUNQ_STARS)   /* cannot happen; keeps the copy in bounds */
        n = PYRUNQ_STARS;
    pyrunq_put(t, " |", 2);
    pyrunq_put(t, stars, n);
    pyrunq_pad(t, PYRUNQ_STARS - n);
    pyrunq_put(t, "|\n", 2);
}

/* trace_helpers.c print_log2_hist(slots, PYRUNQ_SLOTS, unit): nothing when
 * every slot is zero. */
static void pyrunq_log2(struct pyrunq_hists *t, const uint32_t *slots, const char *unit)
{
    int i, last = -1;
    uint32_t val_max = 0;
    size_t ulen = strlen(unit);

    for (i = 0; i < PYRUNQ_SLOTS; i++) {
        if (slots[i])
            last = i;
        if (slots[i] > val_max)
            val_max = slots[i];
    }
    if (last < 0)
        return;
    pyrunq_pad(t, 5);   /* "%*s%-*s : count    distribution\n", 5, "", 19, unit */
    pyrunq_put(t, unit, ulen);
    pyrunq_pad(t, ulen < 19 ? 19 - ulen : 0);
    pyrunq_puts(t, " : count    distribution\n");
    for (i = 0; i <= last; i++) {
        pyrunq_put(t, t->rows[i], t->row_len[i]);
        pyrunq_count(t, slots[i]);
        pyrunq_bar(t, slots[i], val_max);
    }
}

/* "\n<what> = [<id> ]<name>\n": the line runqlat.c prints above a key's
 * histogram (id NULL: none). */
static void pyrunq_heading(struct pyrunq_hists *t, const char *what, const char *id, const char *name)
{
    pyrunq_put(t, "\n", 1);
    pyrunq_puts(t, what);
    pyrunq_put(t, " = ", 3);
    if (id) {
        pyrunq_puts(t, id);
        pyrunq_put(t, " ", 1);
    }
    pyrunq_puts(t, name);
    pyrunq_put(t, "\n", 1);
}

/* The heading of the i-th changed key: tids and pids signed ("%d" of the
 * u32 key), pidns unsigned ("%u"), both with the comm; cgroups by path. */
static void pyrunq_key_heading(struct pyrunq_hists *t, int headings, size_t i, char **names)
{
    static const char *const what[] = {"", "tid", "pid", "pidns", "cgroup"};
    uint32_t id = (uint32_t)t->changed_keys[i];
    char buf[24];

    if (headings == PYRUNQ_HEADING_TID || headings == PYRUNQ_HEADING_PID)
        pyrunq_heading(t, what[headings], pyrunq_digits(buf, (int32_t)id), t->changes[i].comm);
    else if (headings == PYRUNQ_HEADING_PIDNS)
        pyrunq_heading(t, what[headings], pyrunq_digits(buf, id), t->changes[i].comm);
    else if (headings == PYRUNQ_HEADING_CGROUP)
        pyrunq_heading(t, what[headings], NULL, names[i]);
}

/* The sections of the last diff's changed keys, in map order, as
 * runqlat.c's print_log2_hists prints them: a heading (PYRUNQ_HEADING_*;
 * for cgroups, names[i] is the path of the i-th changed key, n_names of
 * them), then the histogram. Returns the text's length and sets *text
 * (valid until the next call), or -EINVAL / -ENOMEM. */
static long pyrunq_hists_render(struct pyrunq_hists *t, int headings, const char *unit, char **names,
                                size_t n_names, const char **text)
{
    size_t i;

    if (headings < PYRUNQ_HEADING_NONE || headings > PYRUNQ_HEADING_CGROUP
        || (headings == PYRUNQ_HEADING_CGROUP && (!names || n_names != t->n_changed)))
        return -EINVAL;
    t->len = 0;
    t->out_failed = 0;
    for (i = 0; i < t->n_changed; i++) {
        pyrunq_key_heading(t, headings, i, names);
        pyrunq_log2(t, t->changes[i].slots, unit);
    }
    if (t->out_failed)
        return -ENOMEM;
    *text = t->text ? t->text : "";
    return (long)t->len;
}
"""


def ffibuilder() -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source("pyrunq._libbpf_cffi", SOURCE, libraries=[":libbpf.so.1"])
    return ffi
