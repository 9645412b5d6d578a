/* SPDX-License-Identifier: GPL-2.0 */
/*
 * runqslower --blame's column, in C: the culprits of one wait (struct
 * blame_event, bpf/runq.h) as pyrunq.cli.runqslower.blame_text writes them:
 * one per task, largest first, three named, the rest summed, then the
 * unattributed part and its reason. Python per event cost four times the
 * plain row; here it is a few hundred nanoseconds more.
 *
 * A culprit of another cgroup is named after that cgroup ("podman:3f2a..."
 * or its path), which only Python can tell: Python gives the names
 * (pyrunq_culprits_name), and rows.c holds a record that needs a name not
 * given yet until it is. The layout and the enums' values come from the
 * object's BTF. Included by pyrunq/_libbpf_build.py's source, after text.c.
 */

/* Offsets of struct blame_event (and, from CULPRIT_NS on, of struct culprit) */
enum { PYRUNQ_CULPRITS_UNATTRIBUTED_NS, PYRUNQ_CULPRITS_WHY, PYRUNQ_CULPRITS_COUNT, PYRUNQ_CULPRITS_ARRAY,
       PYRUNQ_CULPRIT_SIZE, PYRUNQ_CULPRIT_NS, PYRUNQ_CULPRIT_CGROUP, PYRUNQ_CULPRIT_PID,
       PYRUNQ_CULPRIT_TID, PYRUNQ_CULPRIT_KIND, PYRUNQ_CULPRIT_COMM, PYRUNQ_CULPRITS_FIELDS };

/* What an enum blame_kind value is, as the column names it */
enum { PYRUNQ_KIND_SELF, PYRUNQ_KIND_OTHER, PYRUNQ_KIND_KERNEL, PYRUNQ_KIND_IDLE, PYRUNQ_KIND_UNKNOWN };

#define PYRUNQ_CULPRITS_MAX 64   /* culprits per record: struct blame_event has BLAME_SEGS */
#define PYRUNQ_CULPRITS_SHOWN 3  /* pyrunq.cli.runqslower.SHOWN_CULPRITS */
#define PYRUNQ_KINDS_MAX 8
#define PYRUNQ_WHYS_MAX 8

struct pyrunq_culprits {
    size_t off[PYRUNQ_CULPRITS_FIELDS], comm_len, slots;
    unsigned char kind[PYRUNQ_KINDS_MAX];   /* enum blame_kind value -> PYRUNQ_KIND_* */
    char *why[PYRUNQ_WHYS_MAX];             /* enum blame_why value -> its name ("" for none) */
    struct pyrunq_cgroup_names names;       /* native/cgroups.c */
    uint64_t wanted[PYRUNQ_CULPRITS_MAX];   /* cgroups of the held record without a name */
    size_t n_wanted;
};

/* One task of the wait: the first culprit slot seen of it, and its total. */
struct pyrunq_culprit_total {
    const unsigned char *first;
    uint64_t ns;
};

static void pyrunq_culprits_free(struct pyrunq_culprits *c)
{
    size_t i;

    if (!c)
        return;
    pyrunq_cgroup_names_clear(&c->names);
    for (i = 0; i < PYRUNQ_WHYS_MAX; i++)
        free(c->why[i]);
    free(c);
}

/* The columns for records of record_size bytes laid out as off[] says, with
 * culprit kinds and reasons named by kinds[] and whys[]; NULL if the layout
 * does not fit or memory is short. */
static struct pyrunq_culprits *pyrunq_culprits_new(const size_t *off, size_t comm_len, size_t record_size,
                                                   const unsigned char *kinds, size_t n_kinds,
                                                   char **whys, size_t n_whys)
{
    struct pyrunq_culprits *c;
    size_t i, size = off[PYRUNQ_CULPRIT_SIZE];

    if (!size || comm_len == 0 || comm_len > 16 || n_kinds > PYRUNQ_KINDS_MAX || n_whys > PYRUNQ_WHYS_MAX ||
        off[PYRUNQ_CULPRITS_ARRAY] > record_size || off[PYRUNQ_CULPRIT_COMM] + comm_len > size ||
        off[PYRUNQ_CULPRIT_NS] + 8 > size || off[PYRUNQ_CULPRIT_CGROUP] + 8 > size ||
        off[PYRUNQ_CULPRIT_KIND] + 4 > size || off[PYRUNQ_CULPRIT_PID] + 4 > size ||
        off[PYRUNQ_CULPRIT_TID] + 4 > size || off[PYRUNQ_CULPRITS_UNATTRIBUTED_NS] + 8 > record_size ||
        off[PYRUNQ_CULPRITS_WHY] + 4 > record_size || off[PYRUNQ_CULPRITS_COUNT] + 4 > record_size)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    memcpy(c->off, off, sizeof(c->off));
    c->comm_len = comm_len;
    c->slots = (record_size - off[PYRUNQ_CULPRITS_ARRAY]) / size;
    if (c->slots > PYRUNQ_CULPRITS_MAX)
        c->slots = PYRUNQ_CULPRITS_MAX;
    memset(c->kind, PYRUNQ_KIND_UNKNOWN, sizeof(c->kind));
    memcpy(c->kind, kinds, n_kinds);
    for (i = 0; i < n_whys; i++)
        if (!(c->why[i] = strdup(whys[i]))) {
            pyrunq_culprits_free(c);
            return NULL;
        }
    return c;
}

static uint64_t pyrunq_u64_at(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t pyrunq_u32_at(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Name a cgroup: its label and whether it is a container's. 0 or -ENOMEM. */
static int pyrunq_culprits_name(struct pyrunq_culprits *c, uint64_t id, const char *label, int container)
{
    return pyrunq_cgroup_set(&c->names, id, label, container);
}

static const unsigned char *pyrunq_culprit_at(const struct pyrunq_culprits *c, const unsigned char *e, size_t i)
{
    return e + c->off[PYRUNQ_CULPRITS_ARRAY] + i * c->off[PYRUNQ_CULPRIT_SIZE];
}

static size_t pyrunq_culprits_count(const struct pyrunq_culprits *c, const unsigned char *e)
{
    size_t n = pyrunq_u32_at(e + c->off[PYRUNQ_CULPRITS_COUNT]);

    return n < c->slots ? n : c->slots;
}

static int pyrunq_culprit_kind(const struct pyrunq_culprits *c, const unsigned char *p)
{
    uint32_t raw = pyrunq_u32_at(p + c->off[PYRUNQ_CULPRIT_KIND]);

    return raw < PYRUNQ_KINDS_MAX ? c->kind[raw] : PYRUNQ_KIND_UNKNOWN;
}

/* Whether a culprit is named after its cgroup: another cgroup's task, or a
 * task without a comm (named by its cgroup alone). */
static int pyrunq_culprit_needs_name(const struct pyrunq_culprits *c, const unsigned char *p)
{
    int kind = pyrunq_culprit_kind(c, p);

    return kind != PYRUNQ_KIND_IDLE && (kind == PYRUNQ_KIND_OTHER || !p[c->off[PYRUNQ_CULPRIT_COMM]]);
}

/* Collect the cgroups of record e that need a name and have none; their
 * number. */
static size_t pyrunq_culprits_want(struct pyrunq_culprits *c, const unsigned char *e)
{
    size_t i, j, n = pyrunq_culprits_count(c, e);

    c->n_wanted = 0;
    for (i = 0; i < n; i++) {
        const unsigned char *p = pyrunq_culprit_at(c, e, i);
        uint64_t id = pyrunq_u64_at(p + c->off[PYRUNQ_CULPRIT_CGROUP]);

        if (!pyrunq_culprit_needs_name(c, p) || pyrunq_cgroup_lookup(&c->names, id))
            continue;
        for (j = 0; j < c->n_wanted && c->wanted[j] != id; j++)
            ;
        if (j == c->n_wanted)
            c->wanted[c->n_wanted++] = id;
    }
    return c->n_wanted;
}

/* As pyrunq.cli.runqslower.duration: 7.9ms, 350us, 80ns. */
static void pyrunq_put_duration(struct pyrunq_text *t, uint64_t ns)
{
    if (ns >= 1000000)
        pyrunq_text_printf(t, "%.1fms", (double)ns / 1e6);
    else if (ns >= 1000)
        pyrunq_text_printf(t, "%lluus", (unsigned long long)(ns / 1000));
    else
        pyrunq_text_printf(t, "%lluns", (unsigned long long)ns);
}

/* As pyrunq.tools.blame.Culprit.label(). */
static void pyrunq_put_label(const struct pyrunq_culprits *c, struct pyrunq_text *t, const unsigned char *p)
{
    const struct pyrunq_cgroup_name *cg = pyrunq_cgroup_lookup(&c->names, pyrunq_u64_at(p + c->off[PYRUNQ_CULPRIT_CGROUP]));
    const char *label = cg ? cg->label : "<cgroup not named>";
    int kind = pyrunq_culprit_kind(c, p);
    uint32_t tid = pyrunq_u32_at(p + c->off[PYRUNQ_CULPRIT_TID]);
    char comm[17];

    memcpy(comm, p + c->off[PYRUNQ_CULPRIT_COMM], c->comm_len);
    comm[c->comm_len] = '\0';
    if (kind == PYRUNQ_KIND_IDLE) {
        pyrunq_text_printf(t, "idle");
        return;
    }
    if (!comm[0]) {
        pyrunq_text_printf(t, "%s", label);
        return;
    }
    if (kind == PYRUNQ_KIND_OTHER && cg && cg->container)
        pyrunq_text_printf(t, "%s ", label);
    pyrunq_text_printf(t, "%s[%u]", comm, tid ? tid : pyrunq_u32_at(p + c->off[PYRUNQ_CULPRIT_PID]));
    if (kind == PYRUNQ_KIND_OTHER && !(cg && cg->container))
        pyrunq_text_printf(t, " %s", label);
}

/* One total per task (pyrunq.tools.blame.merged): the same thread, cgroup
 * and kind; every idle slot together. Largest first, ties in slot order.
 * Their number. */
static size_t pyrunq_culprits_merge(const struct pyrunq_culprits *c, const unsigned char *e,
                                    struct pyrunq_culprit_total *out)
{
    size_t i, j, n = 0, count = pyrunq_culprits_count(c, e);

    for (i = 0; i < count; i++) {
        const unsigned char *p = pyrunq_culprit_at(c, e, i);
        uint64_t ns = pyrunq_u64_at(p + c->off[PYRUNQ_CULPRIT_NS]);
        int idle = pyrunq_culprit_kind(c, p) == PYRUNQ_KIND_IDLE;

        for (j = 0; j < n; j++) {
            const unsigned char *q = out[j].first;

            if (idle ? pyrunq_culprit_kind(c, q) == PYRUNQ_KIND_IDLE
                     : pyrunq_culprit_kind(c, q) != PYRUNQ_KIND_IDLE &&
                           !memcmp(p + c->off[PYRUNQ_CULPRIT_TID], q + c->off[PYRUNQ_CULPRIT_TID], 4) &&
                           !memcmp(p + c->off[PYRUNQ_CULPRIT_CGROUP], q + c->off[PYRUNQ_CULPRIT_CGROUP], 8) &&
                           !memcmp(p + c->off[PYRUNQ_CULPRIT_KIND], q + c->off[PYRUNQ_CULPRIT_KIND], 4))
                break;
        }
        if (j == n)
            out[n++] = (struct pyrunq_culprit_total){p, 0};
        out[j].ns += ns;
    }
    for (i = 1; i < n; i++) { /* insertion sort: stable, and n is small */
        struct pyrunq_culprit_total x = out[i];

        for (j = i; j > 0 && out[j - 1].ns < x.ns; j--)
            out[j] = out[j - 1];
        out[j] = x;
    }
    return n;
}

/* The column of record e (pyrunq.cli.runqslower.blame_text). */
static void pyrunq_culprits_put(const struct pyrunq_culprits *c, struct pyrunq_text *t, const unsigned char *e)
{
    struct pyrunq_culprit_total total[PYRUNQ_CULPRITS_MAX];
    size_t i, n = pyrunq_culprits_merge(c, e, total), shown = 0;
    uint64_t rest = 0, unattributed = pyrunq_u64_at(e + c->off[PYRUNQ_CULPRITS_UNATTRIBUTED_NS]);
    uint32_t why = pyrunq_u32_at(e + c->off[PYRUNQ_CULPRITS_WHY]);

    for (i = 0; i < n && i < PYRUNQ_CULPRITS_SHOWN; i++, shown++) {
        pyrunq_text_put(t, ", ", i ? 2 : 0);
        pyrunq_put_label(c, t, total[i].first);
        pyrunq_text_put(t, " ", 1);
        pyrunq_put_duration(t, total[i].ns);
    }
    for (; i < n; i++)
        rest += total[i].ns;
    if (n > PYRUNQ_CULPRITS_SHOWN) {
        pyrunq_text_printf(t, ", %zu more ", n - PYRUNQ_CULPRITS_SHOWN);
        pyrunq_put_duration(t, rest);
    }
    if (unattributed) {
        pyrunq_text_put(t, ", ", shown ? 2 : 0);
        if (why < PYRUNQ_WHYS_MAX && c->why[why])
            pyrunq_text_printf(t, "unattributed (%s) ", c->why[why]);
        else
            pyrunq_text_printf(t, "unattributed (%u) ", why);
        pyrunq_put_duration(t, unattributed);
    }
}
