/* SPDX-License-Identifier: GPL-2.0 */
/*
 * runqlat's culprit table, one interval at a time, in C (pyrunq top with
 * thousands of keys: 40,960 entries decoded in Python took most of a
 * refresh).
 *
 * The `blames` map (struct blame_key -> struct blame_val, bpf/runq.h) is
 * cumulative. Each interval C subtracts each entry's nanoseconds at the last
 * interval (kept here) and keeps the entries that grew; per victim it sums
 * what top's row needs: the part of other cgroups that are containers', and
 * the culprit that took the most. Whether a
 * cgroup is a container's only Python can tell (native/cgroups.c). The
 * Python version (pyrunq.tools.blame.Attributions) is the reference the
 * tests compare with. Layouts come from the object's BTF.
 */

/* Offsets of struct blame_key's and struct blame_val's members */
enum { PYRUNQ_BLAME_VICTIM, PYRUNQ_BLAME_CGROUP, PYRUNQ_BLAME_CULPRIT, PYRUNQ_BLAME_KIND, PYRUNQ_BLAME_NS,
       PYRUNQ_BLAME_COMM, PYRUNQ_BLAME_FIELDS };

enum { BLAME_BASE_EMPTY, BLAME_BASE_USED, BLAME_BASE_GONE };

/* One entry of the table: its key, and its ns at the last interval. */
struct pyrunq_blame_entry {
    uint64_t victim, cgroup_id;
    uint32_t culprit, kind;
    uint64_t ns;
    char comm[PYRUNQ_COMM_MAX + 1];
};

struct pyrunq_blame_base {
    struct pyrunq_blame_entry e;
    int state;
};

/* Containers' ns of a victim that its histogram has not shown yet. */
struct pyrunq_pending {
    uint64_t victim, ns;
    int state;                 /* BLAME_BASE_*: GONE, a deleted slot probes go on past */
};

/* One victim's interval: the part of container cgroups, and the index of
 * its largest culprit in the changes (-1: none). */
struct pyrunq_victim_blame {
    uint64_t victim, container_ns;
    int64_t top;
};

struct pyrunq_blames {
    size_t key_size, value_size, off[PYRUNQ_BLAME_FIELDS], comm_len;
    uint32_t other;             /* enum blame_kind's BLAME_OTHER */
    struct pyrunq_blame_base *base;  /* open addressing, at most half full */
    size_t cap, used, gone;
    struct pyrunq_blame_entry *changes;  /* the last diff's grown entries: ns is the growth */
    size_t n_changes, changes_cap;
    struct pyrunq_victim_blame *victims;
    size_t n_victims;
    size_t *at, at_cap;         /* the victims by key (pyrunq_blames_sum): SIZE_MAX, an empty slot */
    unsigned char *joined;      /* per victim: a row had it (pyrunq_blames_join) */
    struct pyrunq_pending *pending;  /* victims' carried ns: open addressing, at most half full */
    size_t pending_cap, pending_used, pending_gone;
    int summed;                 /* victims and at are the last diff's */
    uint64_t *asked;            /* cgroups to name */
    size_t n_asked;
    struct pyrunq_blame_entry *forgotten;  /* by the last pyrunq_blames_forget */
    size_t n_forgotten;
    struct pyrunq_cgroup_names names;
};

static void pyrunq_blames_free(struct pyrunq_blames *t)
{
    if (!t)
        return;
    free(t->base);
    free(t->changes);
    free(t->victims);
    free(t->at);
    free(t->joined);
    free(t->pending);
    free(t->asked);
    free(t->forgotten);
    pyrunq_cgroup_names_clear(&t->names);
    free(t);
}

/* For keys of key_size and values of value_size bytes with their members at
 * off[] (PYRUNQ_BLAME_*: three u64, two u32, a u64, a char[comm_len]); other
 * is BLAME_OTHER's value. NULL if the layout does not fit or memory is short. */
static struct pyrunq_blames *pyrunq_blames_new(size_t key_size, size_t value_size, const size_t *off,
                                               size_t comm_len, uint32_t other)
{
    struct pyrunq_blames *t;

    if (comm_len > PYRUNQ_COMM_MAX || off[PYRUNQ_BLAME_VICTIM] + 8 > key_size ||
        off[PYRUNQ_BLAME_CGROUP] + 8 > key_size || off[PYRUNQ_BLAME_CULPRIT] + 4 > key_size ||
        off[PYRUNQ_BLAME_KIND] + 4 > key_size || off[PYRUNQ_BLAME_NS] + 8 > value_size ||
        off[PYRUNQ_BLAME_COMM] + comm_len > value_size)
        return NULL;
    if (!(t = calloc(1, sizeof(*t))))
        return NULL;
    t->key_size = key_size;
    t->value_size = value_size;
    memcpy(t->off, off, sizeof(t->off));
    t->comm_len = comm_len;
    t->other = other;
    return t;
}

static size_t pyrunq_blame_hash(const struct pyrunq_blame_entry *e)
{
    uint64_t h = e->victim * 0x9E3779B97F4A7C15ull;

    h = (h ^ e->cgroup_id) * 0x9E3779B97F4A7C15ull;
    h = (h ^ (((uint64_t)e->culprit << 32) | e->kind)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32);
}

static int pyrunq_blame_same(const struct pyrunq_blame_entry *a, const struct pyrunq_blame_entry *b)
{
    return a->victim == b->victim && a->cgroup_id == b->cgroup_id && a->culprit == b->culprit &&
           a->kind == b->kind;
}

/* The slot holding e's key, or the empty slot where it would go. */
static size_t pyrunq_blame_find(const struct pyrunq_blames *t, const struct pyrunq_blame_entry *e)
{
    size_t mask = t->cap - 1, i = pyrunq_blame_hash(e) & mask;

    while (t->base[i].state != BLAME_BASE_EMPTY) {
        if (t->base[i].state == BLAME_BASE_USED && pyrunq_blame_same(&t->base[i].e, e))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

/* Room for one more key, the table at most half full: 0 or -ENOMEM. */
static int pyrunq_blame_reserve(struct pyrunq_blames *t)
{
    struct pyrunq_blame_base *old = t->base;
    size_t old_cap = t->cap, cap = 64, i;

    if (old && t->used + t->gone + 1 <= t->cap / 2)
        return 0;
    while (cap / 2 < t->used + 1) {
        if (cap > SIZE_MAX / 4 / sizeof(*old))
            return -ENOMEM;
        cap *= 2;
    }
    if (!(t->base = calloc(cap, sizeof(*old)))) {
        t->base = old;
        return -ENOMEM;
    }
    t->cap = cap;
    t->gone = 0;
    for (i = 0; i < old_cap; i++)
        if (old[i].state == BLAME_BASE_USED)
            t->base[pyrunq_blame_find(t, &old[i].e)] = old[i];
    free(old);
    return 0;
}

static int pyrunq_blame_room(struct pyrunq_blames *t, size_t n)
{
    void *p;

    if (n <= t->changes_cap)
        return 0;
    if (n > SIZE_MAX / sizeof(struct pyrunq_blame_entry) || !(p = realloc(t->changes, n * sizeof(*t->changes))))
        return -ENOMEM;
    t->changes = p;
    if (!(p = realloc(t->victims, n * sizeof(*t->victims))))
        return -ENOMEM;
    t->victims = p;
    if (!(p = realloc(t->joined, n)))
        return -ENOMEM;
    t->joined = p;
    if (!(p = realloc(t->asked, n * sizeof(*t->asked))))
        return -ENOMEM;
    t->asked = p;
    t->changes_cap = n;
    return 0;
}

/* One raw entry as a struct pyrunq_blame_entry (ns: the cumulative count). */
static void pyrunq_blame_decode(const struct pyrunq_blames *t, const unsigned char *k, const unsigned char *v,
                                struct pyrunq_blame_entry *e)
{
    memset(e, 0, sizeof(*e));
    memcpy(&e->victim, k + t->off[PYRUNQ_BLAME_VICTIM], 8);
    memcpy(&e->cgroup_id, k + t->off[PYRUNQ_BLAME_CGROUP], 8);
    memcpy(&e->culprit, k + t->off[PYRUNQ_BLAME_CULPRIT], 4);
    memcpy(&e->kind, k + t->off[PYRUNQ_BLAME_KIND], 4);
    memcpy(&e->ns, v + t->off[PYRUNQ_BLAME_NS], 8);
    memcpy(e->comm, v + t->off[PYRUNQ_BLAME_COMM], t->comm_len);
}

/* The growth of count raw entries of a batch read since the baselines,
 * which move to these counts when clear is set. 0, -EINVAL (buffers
 * shorter than count entries) or -ENOMEM. */
static int pyrunq_blames_diff(struct pyrunq_blames *t, const void *keys, size_t keys_len, const void *values,
                              size_t values_len, size_t count, int clear)
{
    const unsigned char *k = keys, *v = values;
    size_t i, slot;
    int err;

    t->n_changes = t->n_victims = t->n_asked = 0;
    t->summed = 0;
    if (count > keys_len / t->key_size || count > values_len / t->value_size)
        return -EINVAL;
    if ((err = pyrunq_blame_room(t, count)) || (err = pyrunq_blame_reserve(t)))
        return err;
    for (i = 0; i < count; i++) {
        struct pyrunq_blame_entry e;
        struct pyrunq_blame_base *b;
        uint64_t before;

        pyrunq_blame_decode(t, k + i * t->key_size, v + i * t->value_size, &e);
        slot = pyrunq_blame_find(t, &e);
        before = t->base[slot].state == BLAME_BASE_USED ? t->base[slot].e.ns : 0;
        if (e.ns != before) {
            t->changes[t->n_changes] = e;
            t->changes[t->n_changes++].ns -= before;
        }
        if (!clear)
            continue;
        if (t->base[slot].state != BLAME_BASE_USED) {
            if ((err = pyrunq_blame_reserve(t)))
                return err;
            slot = pyrunq_blame_find(t, &e);
            t->base[slot].state = BLAME_BASE_USED;
            t->used++;
        }
        b = &t->base[slot];
        b->e = e;
    }
    return 0;
}

/* The last diff's grown entries, in map order. */
static const struct pyrunq_blame_entry *pyrunq_blames_changes(const struct pyrunq_blames *t, size_t *count)
{
    *count = t->n_changes;
    return t->changes;
}

/* The cgroups of the last diff's other-cgroup culprits that Python has not
 * named yet: name them (pyrunq_blames_name) before pyrunq_blames_sum. */
static const uint64_t *pyrunq_blames_unnamed(struct pyrunq_blames *t, size_t *count)
{
    size_t i, j;

    t->n_asked = 0;
    for (i = 0; i < t->n_changes; i++) {
        uint64_t id = t->changes[i].cgroup_id;

        if (t->changes[i].kind != t->other || pyrunq_cgroup_lookup(&t->names, id))
            continue;
        for (j = 0; j < t->n_asked && t->asked[j] != id; j++)
            ;
        if (j == t->n_asked)
            t->asked[t->n_asked++] = id;
    }
    *count = t->n_asked;
    return t->asked;
}

static int pyrunq_blames_name(struct pyrunq_blames *t, uint64_t cgroup_id, int container)
{
    return pyrunq_cgroup_set(&t->names, cgroup_id, "", container);
}

/* The slot of victim in the index at (SIZE_MAX there: not a victim of the
 * last diff). */
static size_t pyrunq_victim_slot(const struct pyrunq_blames *t, uint64_t victim)
{
    size_t mask = t->at_cap - 1, j = (size_t)((victim * 0x9E3779B97F4A7C15ull) >> 32) & mask;

    while (t->at[j] != SIZE_MAX && t->victims[t->at[j]].victim != victim)
        j = (j + 1) & mask;
    return j;
}

/* Sum per victim of the last diff, in the order first seen: the part of
 * container cgroups, and its largest culprit (the first of equals, as
 * Attribution.culprits sorts them); another cgroup's part that is not a
 * container's is the host's (an unnamed one too). 0 or -ENOMEM. */
static int pyrunq_blames_sum(struct pyrunq_blames *t)
{
    size_t cap = 16, i, j;

    while (cap < 2 * t->n_changes)
        cap *= 2;
    t->n_victims = 0;
    if (cap > t->at_cap) {
        free(t->at);
        t->at_cap = 0;
        if (!(t->at = malloc(cap * sizeof(*t->at))))
            return -ENOMEM;
        t->at_cap = cap;
    }
    memset(t->at, 0xff, t->at_cap * sizeof(*t->at));
    for (i = 0; i < t->n_changes; i++) {
        const struct pyrunq_blame_entry *c = &t->changes[i];
        struct pyrunq_victim_blame *v;

        j = pyrunq_victim_slot(t, c->victim);
        if (t->at[j] == SIZE_MAX) {
            t->at[j] = t->n_victims++;
            t->victims[t->at[j]] = (struct pyrunq_victim_blame){c->victim, 0, -1};
        }
        v = &t->victims[t->at[j]];
        if (c->kind == t->other) {
            const struct pyrunq_cgroup_name *n = pyrunq_cgroup_lookup(&t->names, c->cgroup_id);

            if (n && n->container)
                v->container_ns += c->ns;
        }
        if (v->top < 0 || c->ns > t->changes[v->top].ns)
            v->top = (int64_t)i;
    }
    t->summed = 1;
    return 0;
}

/* One row of pyrunq top (a struct pyrunq_key_stats): its victim's sums of
 * the last pyrunq_blames_sum, and a copy of its largest culprit (a row
 * outlives the table's next diff). */
struct pyrunq_row_blame {
    uint64_t container_ns;
    int64_t has_top;           /* 0: no culprit of it grew */
    struct pyrunq_blame_entry top;
};

static size_t pyrunq_pending_find(const struct pyrunq_blames *t, uint64_t victim)
{
    size_t mask = t->pending_cap - 1, i = (size_t)((victim * 0x9E3779B97F4A7C15ull) >> 32) & mask;

    while (t->pending[i].state != BLAME_BASE_EMPTY &&
           !(t->pending[i].state == BLAME_BASE_USED && t->pending[i].victim == victim))
        i = (i + 1) & mask;
    return i;
}

/* Set a victim's carried ns (0: none kept). 0 or -ENOMEM. */
static int pyrunq_pending_set(struct pyrunq_blames *t, uint64_t victim, uint64_t ns)
{
    struct pyrunq_pending *old = t->pending, *p;
    size_t old_cap = t->pending_cap, cap = 16, i;

    if (t->pending_cap && (p = &t->pending[pyrunq_pending_find(t, victim)])->state == BLAME_BASE_USED) {
        if (!ns) {
            p->state = BLAME_BASE_GONE;
            t->pending_used--;
            t->pending_gone++;
        }
        p->ns = ns;
        return 0;
    }
    if (!ns)
        return 0;
    if (!old || t->pending_used + t->pending_gone + 1 > t->pending_cap / 2) {
        while (cap / 2 < t->pending_used + 1)
            cap *= 2;
        if (!(t->pending = calloc(cap, sizeof(*old)))) {
            t->pending = old;
            return -ENOMEM;
        }
        t->pending_cap = cap;
        t->pending_gone = 0;
        for (i = 0; i < old_cap; i++)
            if (old[i].state == BLAME_BASE_USED)
                t->pending[pyrunq_pending_find(t, old[i].victim)] = old[i];
        free(old);
    }
    p = &t->pending[pyrunq_pending_find(t, victim)];
    *p = (struct pyrunq_pending){victim, ns, BLAME_BASE_USED};
    t->pending_used++;
    return 0;
}

static uint64_t pyrunq_pending_of(const struct pyrunq_blames *t, uint64_t victim)
{
    const struct pyrunq_pending *p;

    if (!t->pending_cap)
        return 0;
    p = &t->pending[pyrunq_pending_find(t, victim)];
    return p->state == BLAME_BASE_USED ? p->ns : 0;
}

/*
 * For each of n rows, its victim's sums, into out (room for n): 0, -EINVAL
 * before pyrunq_blames_sum, or -ENOMEM. Only the rows shown need Python
 * objects: the join is here.
 *
 * With carry, each row's containers' part is at most its histogram's
 * other cgroups' (blame_ns[other]), as Attributions.attribution takes it:
 * the histogram is read before the culprit table, and a wait that ended
 * between the two reads is in the table and not yet in the histogram (the
 * kernel adds to the table first). What the histogram has not shown yet
 * is carried to the victim's next interval (with clear), also for victims
 * with no row now (their only wait ended between the reads). Without it,
 * that containers' part was lost, and the histogram's showed as the
 * host's an interval later.
 */
static int pyrunq_blames_join(struct pyrunq_blames *t, const struct pyrunq_key_stats *rows, size_t n,
                              struct pyrunq_row_blame *out, int carry, int clear)
{
    size_t i, at, v;
    uint64_t available, other;
    int err;

    if (!t->summed || t->other >= PYRUNQ_BLAME_KINDS)
        return -EINVAL;
    memset(t->joined, 0, t->n_victims);
    for (i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        at = t->at_cap ? t->at[pyrunq_victim_slot(t, rows[i].key)] : SIZE_MAX;
        if (at != SIZE_MAX) {
            t->joined[at] = 1;
            out[i].container_ns = t->victims[at].container_ns;
            if (t->victims[at].top >= 0) {
                out[i].has_top = 1;
                out[i].top = t->changes[t->victims[at].top];
            }
        }
        if (!carry)
            continue;
        available = out[i].container_ns + pyrunq_pending_of(t, rows[i].key);
        other = rows[i].blame_ns[t->other];
        out[i].container_ns = available < other ? available : other;
        if (clear && (err = pyrunq_pending_set(t, rows[i].key, available - out[i].container_ns)))
            return err;
    }
    if (!carry || !clear)
        return 0;
    for (v = 0; v < t->n_victims; v++) {  /* victims without a row: all of theirs is carried */
        const struct pyrunq_victim_blame *vb = &t->victims[v];

        if (vb->container_ns && !t->joined[v] &&
            (err = pyrunq_pending_set(t, vb->victim, pyrunq_pending_of(t, vb->victim) + vb->container_ns)))
            return err;
    }
    return 0;
}

/* The sums of pyrunq_blames_sum. */
static const struct pyrunq_victim_blame *pyrunq_blames_victims(const struct pyrunq_blames *t, size_t *count)
{
    *count = t->n_victims;
    return t->victims;
}

static int pyrunq_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static int pyrunq_u64_in(uint64_t v, const uint64_t *sorted, size_t n)
{
    return n && bsearch(&v, sorted, n, sizeof(v), pyrunq_u64_cmp) != NULL;
}

/* Forget the entries of these victims, and of culprits in these cgroups
 * (gone: nothing more is added to them); both arrays are sorted here. Their
 * number, or -ENOMEM; their keys in pyrunq_blames_forgotten, for the
 * caller to delete from the map. */
static long pyrunq_blames_forget(struct pyrunq_blames *t, uint64_t *victims, size_t n_victims,
                                 uint64_t *cgroups, size_t n_cgroups)
{
    size_t i, n = 0;

    free(t->forgotten);
    t->n_forgotten = 0;
    if (!(t->forgotten = malloc((t->used + 1) * sizeof(*t->forgotten))))
        return -ENOMEM;
    qsort(victims, n_victims, sizeof(*victims), pyrunq_u64_cmp);
    qsort(cgroups, n_cgroups, sizeof(*cgroups), pyrunq_u64_cmp);
    for (i = 0; i < n_victims; i++)
        pyrunq_pending_set(t, victims[i], 0);  /* dropping never allocates */
    for (i = 0; i < t->cap; i++) {
        struct pyrunq_blame_base *b = &t->base[i];

        if (b->state != BLAME_BASE_USED || !(pyrunq_u64_in(b->e.victim, victims, n_victims) ||
                                             pyrunq_u64_in(b->e.cgroup_id, cgroups, n_cgroups)))
            continue;
        t->forgotten[n++] = b->e;
        b->state = BLAME_BASE_GONE;
        t->used--;
        t->gone++;
    }
    t->n_forgotten = n;
    return (long)n;
}

static const struct pyrunq_blame_entry *pyrunq_blames_forgotten(const struct pyrunq_blames *t, size_t *count)
{
    *count = t->n_forgotten;
    return t->forgotten;
}

/* How many entries have a baseline. */
static size_t pyrunq_blames_len(const struct pyrunq_blames *t)
{
    return t->used;
}

/* The distinct cgroups of the culprits kept, into ids (room for
 * pyrunq_blames_len of them): how many. */
static size_t pyrunq_blames_cgroups(const struct pyrunq_blames *t, uint64_t *ids)
{
    size_t i, j, n = 0;

    for (i = 0; i < t->cap; i++) {
        if (t->base[i].state != BLAME_BASE_USED)
            continue;
        for (j = 0; j < n && ids[j] != t->base[i].e.cgroup_id; j++)
            ;
        if (j == n)
            ids[n++] = t->base[i].e.cgroup_id;
    }
    return n;
}
