/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What Python has told C about cgroups, by cgroup id: a label (a
 * container's "podman:3f2a3f2a3f2a", or the path) and whether the cgroup is
 * a container's. Only Python reads cgroup paths; C asks once per cgroup.
 * An open-addressing table, at most half full. Included by
 * pyrunq/_libbpf_build.py's source, before culprits.c and blames.c.
 */

struct pyrunq_cgroup_name {
    uint64_t id;
    char *label;               /* NULL: an empty slot */
    int container;
};

struct pyrunq_cgroup_names {
    struct pyrunq_cgroup_name *slot;
    size_t cap, used;
};

static void pyrunq_cgroup_names_clear(struct pyrunq_cgroup_names *n)
{
    size_t i;

    for (i = 0; i < n->cap; i++)
        free(n->slot[i].label);
    free(n->slot);
    memset(n, 0, sizeof(*n));
}

static struct pyrunq_cgroup_name *pyrunq_cgroup_slot(const struct pyrunq_cgroup_names *n, uint64_t id)
{
    size_t mask = n->cap - 1, i = (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & mask;

    while (n->slot[i].label && n->slot[i].id != id)
        i = (i + 1) & mask;
    return &n->slot[i];
}

/* The cgroup's name, or NULL if Python has not given one. */
static const struct pyrunq_cgroup_name *pyrunq_cgroup_lookup(const struct pyrunq_cgroup_names *n, uint64_t id)
{
    const struct pyrunq_cgroup_name *s = n->cap ? pyrunq_cgroup_slot(n, id) : NULL;

    return s && s->label ? s : NULL;
}

/* Name a cgroup (again: the new name wins). 0 or -ENOMEM. */
static int pyrunq_cgroup_set(struct pyrunq_cgroup_names *n, uint64_t id, const char *label, int container)
{
    struct pyrunq_cgroup_name *s;
    char *copy;

    if ((n->used + 1) * 2 > n->cap) {
        struct pyrunq_cgroup_names grown = {NULL, n->cap ? n->cap * 2 : 64, n->used};
        size_t i;

        if (!(grown.slot = calloc(grown.cap, sizeof(*grown.slot))))
            return -ENOMEM;
        for (i = 0; i < n->cap; i++)
            if (n->slot[i].label)
                *pyrunq_cgroup_slot(&grown, n->slot[i].id) = n->slot[i];
        free(n->slot);
        *n = grown;
    }
    if (!(copy = strdup(label)))
        return -ENOMEM;
    s = pyrunq_cgroup_slot(n, id);
    if (!s->label)
        n->used++;
    free(s->label);
    s->id = id;
    s->label = copy;
    s->container = container;
    return 0;
}

/* Forget a cgroup's name (it was removed). Linear probing: the entries
 * after it move back into the hole, so that every lookup still finds them. */
static void pyrunq_cgroup_unset(struct pyrunq_cgroup_names *n, uint64_t id)
{
    size_t mask = n->cap - 1, hole, i, home;
    struct pyrunq_cgroup_name *s;

    if (!n->cap || !(s = pyrunq_cgroup_slot(n, id))->label)
        return;
    free(s->label);
    s->label = NULL;
    n->used--;
    hole = (size_t)(s - n->slot);
    for (i = (hole + 1) & mask; n->slot[i].label; i = (i + 1) & mask) {
        home = (size_t)((n->slot[i].id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
        /* it may fill the hole if its home is not in (hole, i] */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            n->slot[hole] = n->slot[i];
            n->slot[i].label = NULL;
            hole = i;
        }
    }
}
