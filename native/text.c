/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A growing text buffer: where hists.c and rows.c write their output for
 * Python to take in one piece. Included by pyrunq/_libbpf_build.py's source,
 * before them.
 */

struct pyrunq_text {
    char *buf;
    size_t len, cap;
    int failed; /* an allocation failed: text was dropped */
};

/* Room for n more bytes: 0, or -ENOMEM with failed set. */
static int pyrunq_text_reserve(struct pyrunq_text *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 65536;
    char *p;

    if (n <= t->cap - t->len)
        return 0;
    while (cap - t->len < n) {
        if (cap > SIZE_MAX / 2) {
            t->failed = 1;
            return -ENOMEM;
        }
        cap *= 2;
    }
    if (!(p = realloc(t->buf, cap))) {
        t->failed = 1;
        return -ENOMEM;
    }
    t->buf = p;
    t->cap = cap;
    return 0;
}

/* Append n bytes; after a failure nothing more, so the caller checks failed
 * once at the end. */
static void pyrunq_text_put(struct pyrunq_text *t, const char *s, size_t n)
{
    if (t->failed || pyrunq_text_reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}
