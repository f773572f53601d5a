/*
 * csv.c - preference pairs from CSV (see csv.h for the format).
 *
 * The whole file is mapped (or read) into memory and scanned once.  A scanner splits it
 * into records of unescaped fields (RFC 4180 quoting), remembering the line
 * on which each field starts; the header decides which field is which; each
 * data row then adds one pair.  All output arrays grow geometrically.
 */
#include "csv.h"
#include "decimal.h"

#include <drpo.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#define DRPO_CSV_MMAP 1
#include <sys/mman.h>
#include <sys/stat.h>
#else
#define DRPO_CSV_MMAP 0
#endif

#define NO_COL SIZE_MAX
/* The largest feature index accepted in a header (chosen_K, K < this). */
#define MAX_FEATURES 1000000

/* ---- small utilities ----------------------------------------------------- */

/* Resize the array *ptr to n elements of elem bytes.  Returns 0 or -1. */
static int resize(void *ptr, size_t n, size_t elem)
{
    if (n > SIZE_MAX / elem)
        return -1;
    void *p = realloc(*(void **)ptr, n * elem);
    if (!p)
        return -1;
    *(void **)ptr = p;
    return 0;
}

static int grow_to(void *ptr, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return -1;
        c *= 2;
    }
    if (resize(ptr, c, elem))
        return -1;
    *cap = c;
    return 0;
}

/* Make room for `need` elements of `elem` bytes in *ptr (capacity *cap);
 * inline where there is room, as there nearly always is. */
static inline int grow(void *ptr, size_t *cap, size_t need, size_t elem)
{
    return need <= *cap ? 0 : grow_to(ptr, cap, need, elem);
}

/* The blanks a number may have around it. */
static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Where an error happened, and the message it writes. */
typedef struct errsink {
    const char *name;
    char *buf;
    size_t size;
} errsink;

/* "name:line:col: message"; line 0 means no position.  Returns -1. */
static int fail(const errsink *e, size_t line, size_t col, const char *fmt, ...)
{
    if (!e->buf || !e->size)
        return -1;
    int k = line ? snprintf(e->buf, e->size, "%s:%zu:%zu: ", e->name, line, col)
                 : snprintf(e->buf, e->size, "%s: ", e->name);
    if (k >= 0 && (size_t)k < e->size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf + k, e->size - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A cell's text for a message: at most 40 bytes, non-printing bytes as '?'. */
static void excerpt(const char *s, size_t len, char out[48])
{
    size_t k = len > 40 ? 40 : len, o = 0;
    for (size_t i = 0; i < k; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (len > k) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- the scanner: records of unescaped fields ---------------------------- */

typedef struct field {
    size_t off, len; /* in record.buf */
    size_t line;     /* the line on which the field starts */
} field;

typedef struct record {
    char *buf; /* field contents, each NUL-terminated */
    size_t buf_len, buf_cap;
    field *f;
    size_t n, f_cap;
    size_t line; /* the line on which the record starts */
} record;

typedef struct scanner {
    const char *p, *end;
    size_t line;
    errsink *err;
} scanner;

static int rec_putc(record *r, char c)
{
    if (grow(&r->buf, &r->buf_cap, r->buf_len + 1, 1))
        return -1;
    r->buf[r->buf_len++] = c;
    return 0;
}

/* At the end of a record: LF, CRLF or the end of the data. */
static int at_record_end(const scanner *s)
{
    return s->p == s->end || *s->p == '\n' ||
           (*s->p == '\r' && (s->p + 1 == s->end || s->p[1] == '\n'));
}

static void skip_record_end(scanner *s)
{
    if (s->p < s->end && *s->p == '\r')
        s->p++;
    if (s->p < s->end && *s->p == '\n') {
        s->p++;
        s->line++;
    }
}

/* One field at s->p, appended to r.  Returns 0 or -1 (error written). */
static int scan_field(scanner *s, record *r)
{
    if (grow(&r->f, &r->f_cap, r->n + 1, sizeof *r->f))
        return fail(s->err, 0, 0, "out of memory");
    field *f = &r->f[r->n++];
    f->off = r->buf_len;
    f->line = s->line;
    size_t col = r->n;
    if (s->p < s->end && *s->p == '"') {
        /* quoted: "" is a quote; commas and line breaks are data */
        s->p++;
        for (;;) {
            if (s->p == s->end)
                return fail(s->err, f->line, col, "unterminated quoted field (no closing quote)");
            char c = *s->p++;
            if (c == '"') {
                if (s->p < s->end && *s->p == '"') {
                    s->p++;
                } else {
                    break;
                }
            } else if (c == '\0') {
                return fail(s->err, s->line, col, "NUL byte in a field");
            } else if (c == '\n') {
                s->line++;
            }
            if (rec_putc(r, c))
                return fail(s->err, 0, 0, "out of memory");
        }
        if (!(at_record_end(s) || *s->p == ','))
            return fail(s->err, s->line, col,
                        "unexpected character '%c' after the closing quote of a field",
                        (unsigned char)*s->p >= 0x20 ? *s->p : '?');
    } else {
        /* to the first comma, line end, quote or NUL, then copied at once
         * (a character at a time, the scanner took a fifth of a parse) */
        static const unsigned char stop[256] = {[','] = 1, ['\n'] = 1, ['\r'] = 1, ['"'] = 1,
                                                [0] = 1};
        const char *start = s->p;
        for (;; s->p++) {
            while (s->p < s->end && !stop[(unsigned char)*s->p])
                s->p++;
            if (s->p == s->end || *s->p != '\r' || at_record_end(s))
                break; /* (a CR not ending the record is data) */
        }
        if (s->p < s->end && *s->p == '"')
            return fail(s->err, s->line, col,
                        "quote inside an unquoted field (quote the whole field and "
                        "double the quotes in it)");
        if (s->p < s->end && *s->p == '\0')
            return fail(s->err, s->line, col, "NUL byte in a field");
        size_t k = (size_t)(s->p - start);
        if (k) { /* (an empty field: the buffer may not exist yet) */
            if (grow(&r->buf, &r->buf_cap, r->buf_len + k, 1))
                return fail(s->err, 0, 0, "out of memory");
            memcpy(r->buf + r->buf_len, start, k);
            r->buf_len += k;
        }
    }
    f->len = r->buf_len - f->off;
    if (rec_putc(r, '\0'))
        return fail(s->err, 0, 0, "out of memory");
    return 0;
}

/* The next non-blank record into r: 1 if one was read, 0 at the end of the
 * data, -1 on error. */
static int scan_record(scanner *s, record *r)
{
    r->n = 0;
    r->buf_len = 0;
    while (s->p < s->end && at_record_end(s)) /* blank lines */
        skip_record_end(s);
    if (s->p == s->end)
        return 0;
    r->line = s->line;
    for (;;) {
        if (scan_field(s, r))
            return -1;
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        skip_record_end(s);
        return 1;
    }
}

/* ---- the header ------------------------------------------------------------ */

/* Which field holds what. */
typedef struct layout {
    size_t ncols;           /* fields per row */
    size_t prompt, group;   /* field index or NO_COL */
    size_t dim;
    size_t *chosen, *rejected; /* [dim] field indices */
} layout;

/* Parses "<prefix>K" with K a decimal without leading zeros; returns K, or
 * -1 when name has the prefix but no valid index, -2 when not the prefix. */
static long feature_index(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return -2;
    const char *d = name + n;
    if (!*d || (d[0] == '0' && d[1]) || strspn(d, "0123456789") != strlen(d) || strlen(d) > 7)
        return -1;
    long k = strtol(d, NULL, 10);
    return k < MAX_FEATURES ? k : -1;
}

/* Trim spaces and tabs around a header name, in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* The lowest feature index above k present in either family (for gap
 * messages): its index, and whether it is a chosen_ column. */
static size_t feature_beyond(const layout *lay, size_t top, size_t k, int *is_chosen)
{
    for (size_t i = k + 1; i < top; i++) {
        if (lay->chosen[i] != NO_COL || lay->rejected[i] != NO_COL) {
            *is_chosen = lay->chosen[i] != NO_COL;
            return i;
        }
    }
    return NO_COL; /* not reached: top - 1 is present */
}

static int parse_header(record *r, const csv_options *opt, layout *lay, errsink *e)
{
    size_t cap = 0; /* capacity of the two index arrays, in features */
    size_t top = 0; /* 1 + the highest feature index seen */
    lay->ncols = r->n;
    lay->prompt = lay->group = NO_COL;
    lay->chosen = lay->rejected = NULL;
    for (size_t c = 0; c < r->n; c++) {
        char *name = trim(r->buf + r->f[c].off);
        size_t *slot = NULL;
        const char *family = NULL;
        long k = -2;
        if (!strcmp(name, "prompt")) {
            slot = &lay->prompt;
        } else if (!strcmp(name, "group")) {
            slot = &lay->group;
        } else {
            static const char *const families[2] = {"chosen_", "rejected_"};
            for (int fam = 0; fam < 2 && k == -2; fam++) {
                k = feature_index(name, families[fam]);
                family = families[fam];
            }
            if (k == -1) {
                char ex[48];
                excerpt(name, strlen(name), ex);
                return fail(e, r->f[c].line, c + 1,
                            "unknown column \"%s\" (feature columns are %s0, %s1, ...)", ex,
                            family, family);
            }
            if (k == -2)
                continue; /* another column: ignored */
            size_t need = (size_t)k + 1;
            if (need > cap) {
                size_t c2 = 2 * need;
                if (resize(&lay->chosen, c2, sizeof(size_t)) ||
                    resize(&lay->rejected, c2, sizeof(size_t)))
                    return fail(e, 0, 0, "out of memory");
                for (size_t i = cap; i < c2; i++)
                    lay->chosen[i] = lay->rejected[i] = NO_COL;
                cap = c2;
            }
            top = need > top ? need : top;
            slot = family[0] == 'c' ? &lay->chosen[k] : &lay->rejected[k];
        }
        if (*slot != NO_COL)
            return fail(e, r->f[c].line, c + 1, "duplicate column \"%s\" (first at column %zu)",
                        name, *slot + 1);
        *slot = c;
    }
    size_t line = r->line;
    if (lay->prompt == NO_COL)
        return fail(e, line, 1, "missing required column \"prompt\"");
    if (top == 0)
        return fail(e, line, 1,
                    "missing required columns \"chosen_0\" and \"rejected_0\" (no features)");
    /* every index below the highest one, in both families */
    for (size_t k = 0; k < top; k++) {
        for (int fam = 0; fam < 2; fam++) {
            size_t *mine = fam ? lay->rejected : lay->chosen;
            size_t *other = fam ? lay->chosen : lay->rejected;
            if (mine[k] != NO_COL)
                continue;
            const char *name = fam ? "rejected_" : "chosen_";
            if (other[k] != NO_COL)
                return fail(e, line, other[k] + 1, "missing column \"%s%zu\" to go with \"%s%zu\"",
                            name, k, fam ? "chosen_" : "rejected_", k);
            int is_chosen = 1;
            size_t i = feature_beyond(lay, top, k, &is_chosen);
            size_t at = is_chosen ? lay->chosen[i] : lay->rejected[i];
            return fail(e, line, at + 1,
                        "gap in the feature columns: \"%s%zu\" is missing but \"%s%zu\" "
                        "is present",
                        name, k, is_chosen ? "chosen_" : "rejected_", i);
        }
    }
    lay->dim = top;
    if (opt && opt->expect_dim && opt->expect_dim != top)
        return fail(e, line, lay->chosen[top - 1] + 1,
                    "%zu features (chosen_0..chosen_%zu) but %s has %zu", top, top - 1,
                    opt->expect_from ? opt->expect_from : "the training file", opt->expect_dim);
    return 0;
}

/* ---- rows ------------------------------------------------------------------- */

/* Open-addressing hash set of group names -> ids, keyed by XXH3 of the name. */
typedef struct group_table {
    int32_t *slot; /* -1 empty, else a group id */
    size_t cap;    /* a power of two */
} group_table;

static int32_t group_lookup(group_table *t, csv_pairs *p, size_t *names_cap, const char *name,
                            size_t len)
{
    if (2 * (p->n_groups + 1) > t->cap) { /* keep the load under 1/2 */
        size_t cap = t->cap ? 2 * t->cap : 64;
        int32_t *slot = malloc(cap * sizeof *slot);
        if (!slot)
            return -2;
        for (size_t i = 0; i < cap; i++)
            slot[i] = -1;
        for (size_t g = 0; g < p->n_groups; g++) {
            const char *s = p->group_names[g];
            size_t h = (size_t)drpo_prompt_key(s, strlen(s)) & (cap - 1);
            while (slot[h] >= 0)
                h = (h + 1) & (cap - 1);
            slot[h] = (int32_t)g;
        }
        free(t->slot);
        t->slot = slot;
        t->cap = cap;
    }
    size_t h = (size_t)drpo_prompt_key(name, len) & (t->cap - 1);
    for (; t->slot[h] >= 0; h = (h + 1) & (t->cap - 1)) {
        const char *s = p->group_names[t->slot[h]];
        if (strlen(s) == len && !memcmp(s, name, len))
            return t->slot[h];
    }
    if (p->n_groups >= INT32_MAX || grow(&p->group_names, names_cap, p->n_groups + 1, sizeof(char *)))
        return -2;
    char *copy = malloc(len + 1);
    if (!copy)
        return -2;
    memcpy(copy, name, len + 1);
    p->group_names[p->n_groups] = copy;
    t->slot[h] = (int32_t)p->n_groups;
    return (int32_t)p->n_groups++;
}

/* One numeric cell.  Returns 0 and *v, or -1 (error written). */
static int number(const record *r, size_t c, const char *colname, size_t k, double *v,
                  errsink *e)
{
    const field *f = &r->f[c];
    const char *s = r->buf + f->off;
    const char *start = skip_blanks(s);
    if (start == s + f->len)
        return fail(e, f->line, c + 1, "empty value in column %s%zu", colname, k);
    double x;
    const char *endp = decimal_read_fast(start, &x);
    if (!endp) {
        char *end;
        x = strtod(start, &end);
        endp = end;
    }
    endp = skip_blanks(endp);
    int bad = endp == start || *endp != '\0', inf = !isfinite(x), big = fabs(x) > FLT_MAX;
    if (bad || inf || big) {
        char ex[48];
        excerpt(s, f->len, ex);
        if (bad)
            return fail(e, f->line, c + 1, "non-numeric value \"%s\" in column %s%zu", ex,
                        colname, k);
        if (inf)
            return fail(e, f->line, c + 1, "non-finite value \"%s\" in column %s%zu", ex,
                        colname, k);
        return fail(e, f->line, c + 1, "value \"%s\" in column %s%zu is out of float range", ex,
                    colname, k);
    }
    *v = x;
    return 0;
}

/* Capacities of the growing output arrays (the four per-pair arrays share
 * one), and the bytes of prompt text used. */
typedef struct caps {
    size_t diff, text, text_len, pairs, names;
} caps;

static int add_row(const record *r, const layout *lay, csv_pairs *p, caps *cap,
                   group_table *groups, errsink *e)
{
    if (r->n != lay->ncols) {
        size_t col = r->n < lay->ncols ? r->n + 1 : lay->ncols + 1;
        size_t line = r->n < lay->ncols ? r->f[r->n - 1].line : r->f[lay->ncols].line;
        return fail(e, line, col, "row has %zu field%s but the header has %zu", r->n,
                    r->n == 1 ? "" : "s", lay->ncols);
    }
    size_t i = p->n, d = lay->dim;
    const field *pf = &r->f[lay->prompt];
    if (grow(&p->diff, &cap->diff, (i + 1) * d, sizeof(float)) ||
        grow(&p->text, &cap->text, cap->text_len + pf->len + 1, 1))
        return fail(e, 0, 0, "out of memory");
    if (i + 1 > cap->pairs) {
        size_t c2 = cap->pairs ? 2 * cap->pairs : 256;
        if (resize(&p->prompt_off, c2, sizeof(size_t)) ||
            resize(&p->prompt_len, c2, sizeof(size_t)) ||
            resize(&p->group, c2, sizeof(int32_t)) || resize(&p->line, c2, sizeof(size_t)))
            return fail(e, 0, 0, "out of memory");
        cap->pairs = c2;
    }

    for (size_t k = 0; k < d; k++) {
        double a, b;
        if (number(r, lay->chosen[k], "chosen_", k, &a, e) ||
            number(r, lay->rejected[k], "rejected_", k, &b, e))
            return -1;
        double x = a - b;
        if (fabs(x) > FLT_MAX)
            return fail(e, r->f[lay->chosen[k]].line, lay->chosen[k] + 1,
                        "chosen_%zu - rejected_%zu is out of float range", k, k);
        p->diff[i * d + k] = (float)x;
    }
    memcpy(p->text + cap->text_len, r->buf + pf->off, pf->len + 1);
    p->prompt_off[i] = cap->text_len;
    cap->text_len += pf->len + 1;
    p->prompt_len[i] = pf->len;
    p->group[i] = -1;
    if (lay->group != NO_COL && r->f[lay->group].len) {
        const field *gf = &r->f[lay->group];
        int32_t g = group_lookup(groups, p, &cap->names, r->buf + gf->off, gf->len);
        if (g < 0)
            return fail(e, 0, 0, "out of memory");
        p->group[i] = g;
    }
    p->line[i] = r->line;
    p->n = i + 1;
    return 0;
}

/* ---- entry points ------------------------------------------------------------- */

int csv_parse_pairs(const char *name, const char *data, size_t len, const csv_options *opt,
                    csv_pairs *out, char *err, size_t err_size)
{
    errsink e = {name, err, err_size};
    csv_pairs p;
    memset(&p, 0, sizeof p);
    memset(out, 0, sizeof *out);
    if (err && err_size)
        err[0] = '\0';
    scanner s = {data, data + len, 1, &e};
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) /* UTF-8 byte-order mark */
        s.p += 3;
    record r;
    memset(&r, 0, sizeof r);
    layout lay;
    memset(&lay, 0, sizeof lay);
    group_table groups = {NULL, 0};
    caps cap = {0, 0, 0, 0, 0};
    int rc = scan_record(&s, &r);
    if (rc == 0)
        rc = fail(&e, 1, 1, "empty file (expected a header row)");
    if (rc > 0)
        rc = parse_header(&r, opt, &lay, &e);
    if (rc >= 0) {
        p.dim = lay.dim;
        p.group_col = lay.group == NO_COL ? 0 : lay.group + 1;
        while ((rc = scan_record(&s, &r)) > 0 && (rc = add_row(&r, &lay, &p, &cap, &groups, &e)) == 0)
            ;
        if (rc == 0 && p.n == 0)
            rc = fail(&e, s.line, 1, "no preference pairs after the header");
    }
    free(r.buf);
    free(r.f);
    free(lay.chosen);
    free(lay.rejected);
    free(groups.slot);
    if (rc < 0) {
        csv_pairs_free(&p);
        return -1;
    }
    *out = p;
    return 0;
}

/* The whole file at path in memory: mapped where it is a regular file (the
 * parse reads the page cache itself: reading an 84 MB file into a growing
 * buffer took a third of drpo-train's parse, mapping it a tenth of that),
 * else read.  *mapped says which.  Returns 0, or LOAD_OPEN or LOAD_READ with
 * errno set, or LOAD_NOMEM. */
enum { LOAD_OPEN = 1, LOAD_READ, LOAD_NOMEM };

static int load_file(const char *path, char **data, size_t *len, int *mapped)
{
    *data = NULL;
    *len = 0;
    *mapped = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return LOAD_OPEN;
#if DRPO_CSV_MMAP
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uintmax_t)st.st_size <= SIZE_MAX) {
        int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
        flags |= MAP_POPULATE;
#endif
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, flags, fileno(f), 0);
        if (m != MAP_FAILED) {
            fclose(f);
            *data = m;
            *len = (size_t)st.st_size;
            *mapped = 1;
            return 0;
        }
    }
#endif
    size_t cap = 0;
    for (;;) {
        if (grow(data, &cap, *len + 65536, 1)) {
            free(*data);
            fclose(f);
            return LOAD_NOMEM;
        }
        size_t got = fread(*data + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f), saved = errno;
    fclose(f);
    if (bad) {
        free(*data);
        errno = saved;
        return LOAD_READ;
    }
    return 0;
}

int csv_read_pairs(const char *path, const csv_options *opt, csv_pairs *out, char *err,
                   size_t err_size)
{
    errsink e = {path, err, err_size};
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    int mapped;
    int failed = load_file(path, &data, &len, &mapped);
    if (failed == LOAD_OPEN)
        return fail(&e, 0, 0, "cannot open: %s", strerror(errno));
    if (failed == LOAD_READ)
        return fail(&e, 0, 0, "cannot read: %s", strerror(errno));
    if (failed)
        return fail(&e, 0, 0, "out of memory");
    int rc = csv_parse_pairs(path, data, len, opt, out, err, err_size);
#if DRPO_CSV_MMAP
    if (mapped)
        munmap(data, len);
    else
#endif
        free(data);
    return rc;
}

void csv_pairs_free(csv_pairs *p)
{
    if (!p)
        return;
    for (size_t g = 0; g < p->n_groups; g++)
        free(p->group_names[g]);
    free(p->group_names);
    free(p->diff);
    free(p->text);
    free(p->prompt_off);
    free(p->prompt_len);
    free(p->group);
    free(p->line);
    memset(p, 0, sizeof *p);
}
