/*
 * report.c - atomic output files and a streaming JSON writer (report.h).
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- atomic output files ---------------------------------------------------- */

int out_file_open(out_file *o, const char *path, char *err, size_t err_size)
{
    memset(o, 0, sizeof *o);
    size_t n = strlen(path);
    o->path = malloc(n + 1);
    o->tmp = malloc(n + 8);
    if (!o->path || !o->tmp) {
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    memcpy(o->path, path, n + 1);
    memcpy(o->tmp, path, n);
    memcpy(o->tmp + n, ".XXXXXX", 8);
    /* mkstemp creates the file with mode 0600; widen it to what a plain
     * fopen would give (0666 less the umask). */
    int fd = mkstemp(o->tmp);
    if (fd >= 0) {
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) != 0 || !(o->f = fdopen(fd, "w"))) {
            close(fd);
            unlink(o->tmp);
            fd = -1;
        }
    }
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot create: %s", path, strerror(errno));
        free(o->path);
        free(o->tmp);
        memset(o, 0, sizeof *o);
        return -1;
    }
    return 0;
}

int out_file_commit(out_file *o, char *err, size_t err_size)
{
    if (!o->f)
        return 0;
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int saved = errno;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (!bad && rename(o->tmp, o->path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        snprintf(err, err_size, "%s: cannot write: %s", o->path, strerror(saved));
        unlink(o->tmp);
    }
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
    return bad ? -1 : 0;
}

void out_file_abort(out_file *o)
{
    if (!o || !o->f)
        return;
    fclose(o->f);
    unlink(o->tmp);
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}

/* ---- JSON ----------------------------------------------------------------- */

const char *format_double(double v, char buf[32])
{
    if (isnan(v))
        return strcpy(buf, "nan");
    if (isinf(v))
        return strcpy(buf, v > 0 ? "inf" : "-inf");
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

void json_write_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void json_init(json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

/* Separator, indentation and key before a value. */
static void json_pre(json *j, const char *key)
{
    if (j->depth > 0) {
        fputs(j->count[j->depth - 1]++ ? ",\n" : "\n", j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    if (key) {
        json_write_escaped(j->f, key);
        fputs(": ", j->f);
    }
}

static void json_open(json *j, const char *key, char c)
{
    json_pre(j, key);
    fputc(c, j->f);
    if (j->depth < JSON_MAX_DEPTH)
        j->count[j->depth] = 0;
    j->depth++;
}

static void json_close(json *j, char c)
{
    j->depth--;
    if (j->depth < JSON_MAX_DEPTH && j->count[j->depth]) {
        fputc('\n', j->f);
        for (int i = 0; i < j->depth; i++)
            fputs("  ", j->f);
    }
    fputc(c, j->f);
}

void json_object_begin(json *j, const char *key) { json_open(j, key, '{'); }
void json_object_end(json *j) { json_close(j, '}'); }
void json_array_begin(json *j, const char *key) { json_open(j, key, '['); }
void json_array_end(json *j) { json_close(j, ']'); }

void json_string(json *j, const char *key, const char *s)
{
    json_pre(j, key);
    if (s)
        json_write_escaped(j->f, s);
    else
        fputs("null", j->f);
}

void json_number(json *j, const char *key, double v)
{
    char buf[32];
    json_pre(j, key);
    fputs(isfinite(v) ? format_double(v, buf) : "null", j->f);
}

void json_int(json *j, const char *key, int64_t v)
{
    json_pre(j, key);
    fprintf(j->f, "%lld", (long long)v);
}

void json_uint(json *j, const char *key, uint64_t v)
{
    json_pre(j, key);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_bool(json *j, const char *key, int v)
{
    json_pre(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_null(json *j, const char *key)
{
    json_pre(j, key);
    fputs("null", j->f);
}

void json_finish(json *j) { fputc('\n', j->f); }
