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

/* Append printf's text; as pyrunq_text_put, nothing after a failure. */
static void pyrunq_text_printf(struct pyrunq_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = t->failed ? -1 : vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n < t->cap - t->len) {
        if (n > 0)
            t->len += (size_t)n;
        return;
    }
    if (pyrunq_text_reserve(t, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    t->len += (size_t)vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
}
