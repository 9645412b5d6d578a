/* SPDX-License-Identifier: GPL-2.0 */
/*
 * runqslower's rows, written in C as the ring buffer hands the events over.
 *
 * runqslower.c prints each event with one printf. In Python each event cost
 * a callback, a decoded record and a formatted string: more CPU per event
 * than the C tool. Here the ring buffer's sample callback is C: it formats
 * the row into one growing buffer that Python writes out after each poll.
 * pyrunq.cli.runqslower.Rows stays the reference the tests compare with.
 *
 * The event's layout comes from the object's BTF (offsets given at
 * creation). Included by pyrunq/_libbpf_build.py's source.
 */

enum { PYRUNQ_ROW_TASK, PYRUNQ_ROW_PREV_TASK, PYRUNQ_ROW_DELTA_NS, PYRUNQ_ROW_TID, PYRUNQ_ROW_PREV_TID,
       PYRUNQ_ROW_FIELDS };

#define PYRUNQ_EVENT_ROW_MAX 128 /* the longest row: 8 + 16 + 10 + 20 + 16 + 10, spaces, newline */

struct pyrunq_rows {
    size_t off[PYRUNQ_ROW_FIELDS], comm_len, record_size;
    int previous;              /* -P: the previous task's columns too */
    unsigned budget, handled;  /* this poll's limit (0: none) and its records so far */
    time_t second;             /* the clock's text is made once a second */
    char clock[16];
    struct pyrunq_text out;    /* the rows since the last take (native/text.c) */
    /* --blame: the culprits' column (native/culprits.c), and the record
     * held back until Python names its culprits' cgroups */
    struct pyrunq_culprits *culprits;
    unsigned char *held;
    int holding;
};

static void pyrunq_rows_free(struct pyrunq_rows *r)
{
    if (r) {
        free(r->out.buf);
        free(r->held);
        pyrunq_culprits_free(r->culprits);
    }
    free(r);
}

/* Rows of events of record_size bytes whose fields lie at off[] (in the
 * order of PYRUNQ_ROW_*: two char[comm_len], a u64, two u32). NULL if the
 * offsets do not fit the record or memory is short. */
static struct pyrunq_rows *pyrunq_rows_new(const size_t *off, size_t comm_len, size_t record_size,
                                           int previous)
{
    static const size_t sizes[PYRUNQ_ROW_FIELDS] = {0, 0, 8, 4, 4};
    struct pyrunq_rows *r;
    int i;

    if (comm_len == 0 || comm_len > 16)
        return NULL;
    for (i = 0; i < PYRUNQ_ROW_FIELDS; i++) {
        size_t size = sizes[i] ? sizes[i] : comm_len;

        if (off[i] > record_size || record_size - off[i] < size)
            return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->off, off, sizeof(r->off));
    r->comm_len = comm_len;
    r->record_size = record_size;
    r->previous = previous;
    r->second = (time_t)-1;
    return r;
}

/* "%H:%M:%S" of now, as runqslower.c's strftime of localtime. */
static const char *pyrunq_rows_clock(struct pyrunq_rows *r)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != r->second && localtime_r(&now, &tm)) {
        strftime(r->clock, sizeof(r->clock), "%H:%M:%S", &tm);
        r->second = now;
    }
    return r->clock;
}

/* A comm of the event: char[comm_len], the NUL added when it is missing. */
static void pyrunq_rows_comm(const struct pyrunq_rows *r, const unsigned char *e, int field, char out[17])
{
    memcpy(out, e + r->off[field], r->comm_len);
    out[r->comm_len] = '\0';
}

static unsigned pyrunq_rows_u32(const struct pyrunq_rows *r, const unsigned char *e, int field)
{
    uint32_t v;

    memcpy(&v, e + r->off[field], sizeof(v));
    return v;
}

/* One event's row, as runqslower.c's handle_event prints it (and, with
 * culprits, pyrunq's column after it). */
static void pyrunq_rows_write(struct pyrunq_rows *r, const unsigned char *e)
{
    char task[17], prev[17];
    unsigned long long delta_ns;
    int n;

    if (pyrunq_text_reserve(&r->out, PYRUNQ_EVENT_ROW_MAX))
        return;
    pyrunq_rows_comm(r, e, PYRUNQ_ROW_TASK, task);
    memcpy(&delta_ns, e + r->off[PYRUNQ_ROW_DELTA_NS], sizeof(delta_ns));
    n = snprintf(r->out.buf + r->out.len, r->out.cap - r->out.len, "%-8s %-16s %-6u %14llu",
                 pyrunq_rows_clock(r), task, pyrunq_rows_u32(r, e, PYRUNQ_ROW_TID), delta_ns / 1000);
    if (n > 0)
        r->out.len += (size_t)n;
    if (r->previous) {
        pyrunq_rows_comm(r, e, PYRUNQ_ROW_PREV_TASK, prev);
        n = snprintf(r->out.buf + r->out.len, r->out.cap - r->out.len, " %-16s %-6u", prev,
                     pyrunq_rows_u32(r, e, PYRUNQ_ROW_PREV_TID));
        if (n > 0)
            r->out.len += (size_t)n;
    }
    if (r->culprits) {
        pyrunq_text_put(&r->out, " ", 1);
        pyrunq_culprits_put(r->culprits, &r->out, e);
    }
    pyrunq_text_put(&r->out, "\n", 1);
}

/* The held record's row, with the names given since (or none). */
static void pyrunq_rows_release(struct pyrunq_rows *r)
{
    if (r->holding) {
        r->holding = 0;
        pyrunq_rows_write(r, r->held);
    }
}

/* libbpf's ring_buffer_sample_fn: one event's row. Returns
 * PYRUNQ_BUDGET_SPENT when the poll's budget is spent, or when the record
 * is held for names (libbpf stops there); -EINVAL for a record too short. */
static int pyrunq_rows_sample(void *ctx, void *data, size_t size)
{
    struct pyrunq_rows *r = ctx;
    const unsigned char *e = data;

    if (size < r->record_size)
        return -EINVAL;
    pyrunq_rows_release(r); /* never left behind nor out of order, named or not */
    r->handled++;
    if (r->culprits && pyrunq_culprits_want(r->culprits, e)) {
        memcpy(r->held, e, r->record_size);
        r->holding = 1;
        return PYRUNQ_BUDGET_SPENT;
    }
    pyrunq_rows_write(r, e);
    return r->handled == r->budget ? PYRUNQ_BUDGET_SPENT : 0;
}

/* With culprits (owned from now on, freed with the rows): 0 or -ENOMEM. */
static int pyrunq_rows_blame(struct pyrunq_rows *r, struct pyrunq_culprits *c)
{
    if (!(r->held = malloc(r->record_size))) {
        pyrunq_culprits_free(c);
        return -ENOMEM;
    }
    r->culprits = c;
    return 0;
}

/* The cgroups the held record's culprits need names for (none when nothing
 * is held): give them with pyrunq_culprits_name, then release. */
static size_t pyrunq_rows_wanted(const struct pyrunq_rows *r, const uint64_t **ids)
{
    *ids = r->culprits ? r->culprits->wanted : NULL;
    return r->holding ? r->culprits->n_wanted : 0;
}

static struct pyrunq_culprits *pyrunq_rows_culprits(struct pyrunq_rows *r)
{
    return r->culprits;
}

/* Before a poll: at most budget records (0: no limit). */
static void pyrunq_rows_start(struct pyrunq_rows *r, unsigned budget)
{
    r->budget = budget;
    r->handled = 0;
}

static unsigned pyrunq_rows_handled(const struct pyrunq_rows *r)
{
    return r->handled;
}

/* The rows written since the last take, and their length (valid until the
 * next poll); -ENOMEM if some were dropped for want of memory. */
static long pyrunq_rows_take(struct pyrunq_rows *r, const char **text)
{
    long len = (long)r->out.len;

    *text = r->out.buf ? r->out.buf : "";
    r->out.len = 0;
    if (r->out.failed) {
        r->out.failed = 0;
        return -ENOMEM;
    }
    return len;
}
