/* SPDX-License-Identifier: GPL-2.0 */
/*
 * runqlat's per-key work of one interval, in C.
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
 * the bucket count and the folding into slots are pyrunq.hist's. Included by
 * pyrunq/_libbpf_build.py's source.
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
#define PYRUNQ_BLAME_KINDS 5   /* enum blame_kind's BLAME_KINDS: struct hist's blame_ns */
#define PYRUNQ_NO_MEMBER SIZE_MAX

enum { BASE_EMPTY, BASE_USED, BASE_GONE };

/* One key's counts as of the last interval. */
struct pyrunq_base {
    uint64_t key;
    uint32_t state;            /* BASE_GONE: forgotten; probes go on past it */
    uint32_t buckets[PYRUNQ_BUCKETS];
    uint64_t sum_ns, blame_ns[PYRUNQ_BLAME_KINDS];
};

/* One changed key's interval as pyrunq top shows it (pyrunq.tools.top.
 * quantiles, in the histogram's unit): with stats only. */
struct pyrunq_key_stats {
    uint64_t key, waits, sum_ns, max;
    double p50, p99;
    uint64_t blame_ns[PYRUNQ_BLAME_KINDS];   /* 0 without them in the value */
    char comm[PYRUNQ_COMM_MAX + 1];
};

/* One key with new samples this interval: what its section prints. */
struct pyrunq_change {
    uint32_t slots[PYRUNQ_SLOTS];
    char comm[PYRUNQ_COMM_MAX + 1];
};

struct pyrunq_hists {
    size_t key_size, value_size, buckets_off, comm_off, comm_len;
    size_t sum_off, blame_off;  /* with stats (PYRUNQ_NO_MEMBER: none) */
    int stats;
    struct pyrunq_key_stats *stats_of; /* per changed key, as changes */
    uint64_t total[PYRUNQ_BUCKETS];    /* every changed key's new counts together */
    /* the baselines: open addressing, linear probing, at most half full */
    struct pyrunq_base *base;
    size_t cap, used, gone;
    unsigned shift;            /* 64 - log2(cap), for the multiplicative hash */
    /* the last diff, in map order: keys with new samples (and their slots),
     * keys without; room for lists_cap entries each */
    uint64_t *changed_keys, *idle_keys;
    struct pyrunq_change *changes;
    size_t n_changed, n_idle, lists_cap;
    struct pyrunq_text out; /* the last text */
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
    free(t->stats_of);
    free(t->out.buf);
    free(t);
}

/* A table for map values of value_size bytes whose nbuckets u32 counters
 * start at buckets_off and comm (char[comm_len]) at comm_off; keys of 4 or 8
 * bytes. NULL if the layout is not runqlat's or memory is short. Stats per
 * changed key: pyrunq_hists_with_stats. */
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
    t->sum_off = t->blame_off = PYRUNQ_NO_MEMBER;
    pyrunq_make_rows(t);
    if (pyrunq_base_reserve(t)) {
        pyrunq_hists_free(t);
        return NULL;
    }
    return t;
}

/* Also each changed key's stats (pyrunq_hists_stats), from the u64 sum_ns
 * and blame_ns[PYRUNQ_BLAME_KINDS] at these offsets (PYRUNQ_NO_MEMBER: not
 * in the value). Before the first diff; 0 or -EINVAL. */
static int pyrunq_hists_with_stats(struct pyrunq_hists *t, size_t sum_off, size_t blame_off)
{
    if (t->lists_cap || (sum_off != PYRUNQ_NO_MEMBER && sum_off + 8 > t->value_size) ||
        (blame_off != PYRUNQ_NO_MEMBER && blame_off + 8 * PYRUNQ_BLAME_KINDS > t->value_size))
        return -EINVAL;
    t->stats = 1;
    t->sum_off = sum_off;
    t->blame_off = blame_off;
    return 0;
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
    if (t->stats) {
        if (!(p = realloc(t->stats_of, n * sizeof(struct pyrunq_key_stats))))
            return -ENOMEM;
        t->stats_of = p;
    }
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

static uint64_t pyrunq_u64_member(const unsigned char *value, size_t off, size_t i)
{
    uint64_t v = 0;

    if (off != PYRUNQ_NO_MEMBER)
        memcpy(&v, value + off + i * sizeof(v), sizeof(v));
    return v;
}

/* Make key's baseline now (the value's buckets, and sums with stats): 0 or
 * -ENOMEM. */
static int pyrunq_base_set(struct pyrunq_hists *t, size_t slot, uint64_t key, const uint32_t *now,
                           const unsigned char *value)
{
    struct pyrunq_base *b = &t->base[slot];
    int i;

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
    b->sum_ns = pyrunq_u64_member(value, t->sum_off, 0);
    for (i = 0; i < PYRUNQ_BLAME_KINDS; i++)
        b->blame_ns[i] = pyrunq_u64_member(value, t->blame_off, i);
    return 0;
}

/* Inclusive bounds of fine bucket i (pyrunq.hist.bucket_bounds); the last
 * bucket is open: *open set, high meaningless. */
static void pyrunq_bucket_bounds(int i, uint64_t *low, uint64_t *high, int *open)
{
    int m = i / PYRUNQ_SUB + 1, k = i % PYRUNQ_SUB;

    *open = i == PYRUNQ_BUCKETS - 1;
    if (i < PYRUNQ_SUB) {
        *low = *high = (uint64_t)i;
        return;
    }
    *low = (1ull << m) + (uint64_t)k * (1ull << (m - 2));
    *high = *low + (1ull << (m - 2)) - 1;
}

/* The q-th percentile of d (total > 0 counts), as pyrunq.hist.percentiles:
 * the rank's place within its bucket, linearly. */
static double pyrunq_percentile(const uint32_t *d, uint64_t total, unsigned q)
{
    uint64_t rank = (q * total + 99) / 100, cum = 0, low, high;
    int i, open;

    if (rank < 1)
        rank = 1;
    for (i = 0; i < PYRUNQ_BUCKETS - 1 && cum + d[i] < rank; i++)
        cum += d[i];
    pyrunq_bucket_bounds(i, &low, &high, &open);
    if (open)
        return (double)low;
    return (double)low + (double)((high - low) * (rank - cum)) / (double)d[i];
}

/* A changed key's interval: counts since base (NULL: since the start). */
static void pyrunq_key_stats(struct pyrunq_hists *t, struct pyrunq_key_stats *s, const unsigned char *value,
                             const struct pyrunq_base *base, const uint32_t *now)
{
    uint32_t d[PYRUNQ_BUCKETS];
    uint64_t low, high;
    int i, open;

    s->waits = s->max = 0;
    for (i = 0; i < PYRUNQ_BUCKETS; i++) {
        d[i] = now[i] - (base ? base->buckets[i] : 0);
        s->waits += d[i];
        t->total[i] += d[i];
        if (d[i]) {
            pyrunq_bucket_bounds(i, &low, &high, &open);
            s->max = open ? low : high;
        }
    }
    s->sum_ns = pyrunq_u64_member(value, t->sum_off, 0) - (base ? base->sum_ns : 0);
    for (i = 0; i < PYRUNQ_BLAME_KINDS; i++)
        s->blame_ns[i] = pyrunq_u64_member(value, t->blame_off, i) - (base ? base->blame_ns[i] : 0);
    s->p50 = s->waits ? pyrunq_percentile(d, s->waits, 50) : 0;
    s->p99 = s->waits ? pyrunq_percentile(d, s->waits, 99) : 0;
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
    if (t->stats) {
        struct pyrunq_key_stats *s = &t->stats_of[t->n_changed];

        s->key = key;
        pyrunq_key_stats(t, s, value, b->state == BASE_USED ? b : NULL, now);
        memcpy(s->comm, value + t->comm_off, t->comm_len);
        s->comm[t->comm_len] = '\0';
    }
    t->changed_keys[t->n_changed++] = key;
    pyrunq_fold(c->slots, now, b->state == BASE_USED ? b->buckets : NULL);
    memcpy(c->comm, value + t->comm_off, t->comm_len);
    c->comm[t->comm_len] = '\0';   /* %s stops at the first NUL, or at the array's end */
    return clear ? pyrunq_base_set(t, slot, key, now, value) : 0;
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
    memset(t->total, 0, sizeof(t->total));
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

/* The last diff's changed keys' stats (with stats), in map order, and
 * their new counts together (PYRUNQ_BUCKETS of them). */
static const struct pyrunq_key_stats *pyrunq_hists_stats(const struct pyrunq_hists *t, size_t *count,
                                                         const uint64_t **total)
{
    *count = t->stats ? t->n_changed : 0;
    *total = t->total;
    return t->stats_of;
}

static const uint64_t *pyrunq_hists_idle(const struct pyrunq_hists *t, size_t *count)
{
    *count = t->n_idle;
    return t->idle_keys;
}

/* ---- the order of an interval's rows (pyrunq top) ---- */

/* What pyrunq top sorts its rows by (pyrunq.tools.top.SORTS but the name):
 * the largest first; ties: more waits first, then the smaller key.
 * PYRUNQ_ORDER_KEY: the smaller key first. */
#define PYRUNQ_ORDER_KEY 0
#define PYRUNQ_ORDER_WAITS 1   /* waits per second */
#define PYRUNQ_ORDER_AVG 2     /* the mean wait */
#define PYRUNQ_ORDER_P50 3
#define PYRUNQ_ORDER_P99 4
#define PYRUNQ_ORDER_MAX 5
#define PYRUNQ_ORDER_SUM 6     /* the share of the interval spent waiting */

struct pyrunq_order_item {
    double v;                  /* the column's value, as Python computes it */
    uint64_t waits, key;
    size_t i;
};

static int pyrunq_order_cmp(const void *pa, const void *pb)
{
    const struct pyrunq_order_item *a = pa, *b = pb;

    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    if (a->waits != b->waits)
        return a->waits > b->waits ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

/* The column's value of a row (waits > 0), the same double as the Row's
 * field in pyrunq.tools.top: the same operations in the same order. */
static double pyrunq_order_value(const struct pyrunq_key_stats *s, int column, double seconds)
{
    switch (column) {
    case PYRUNQ_ORDER_WAITS:
        return (double)s->waits / seconds;
    case PYRUNQ_ORDER_AVG:
        return (double)s->sum_ns / (double)s->waits / 1000;
    case PYRUNQ_ORDER_P50:
        return s->p50;
    case PYRUNQ_ORDER_P99:
        return s->p99;
    case PYRUNQ_ORDER_MAX:
        return (double)s->max;
    case PYRUNQ_ORDER_SUM:
        return (double)s->sum_ns / seconds / 1e7;
    default:
        return 0;
    }
}

/* The indices of the rows of stats[0..n) that have waits, in column's
 * order, into out (room for n): how many; -EINVAL (an unknown column) or
 * -ENOMEM. Sorting 10,000 rows of a refresh in Python needed an object
 * per row. */
static long pyrunq_stats_order(const struct pyrunq_key_stats *stats, size_t n, int column, double seconds,
                               size_t *out)
{
    struct pyrunq_order_item *items;
    size_t i, m = 0;

    if (column < PYRUNQ_ORDER_KEY || column > PYRUNQ_ORDER_SUM || !(seconds > 0))
        return -EINVAL;
    if (!(items = malloc((n ? n : 1) * sizeof(*items))))
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (!stats[i].waits)
            continue;  /* a key made but not yet counted in: no row */
        items[m].v = column == PYRUNQ_ORDER_KEY ? 0 : pyrunq_order_value(&stats[i], column, seconds);
        items[m].waits = column == PYRUNQ_ORDER_KEY ? 0 : stats[i].waits;
        items[m].key = stats[i].key;
        items[m++].i = i;
    }
    qsort(items, m, sizeof(*items), pyrunq_order_cmp);
    for (i = 0; i < m; i++)
        out[i] = items[i].i;
    free(items);
    return (long)m;
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

/* Append n bytes to the text (native/text.c: on failure only out.failed is
 * set, and the caller checks it once at the end). */
static void pyrunq_put(struct pyrunq_hists *t, const char *s, size_t n)
{
    pyrunq_text_put(&t->out, s, n);
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
    t->out.len = 0;
    t->out.failed = 0;
    for (i = 0; i < t->n_changed; i++) {
        pyrunq_key_heading(t, headings, i, names);
        pyrunq_log2(t, t->changes[i].slots, unit);
    }
    if (t->out.failed)
        return -ENOMEM;
    *text = t->out.buf ? t->out.buf : "";
    return (long)t->out.len;
}
