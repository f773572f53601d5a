/*
 * report.h - what the example programs need to write results safely:
 *
 *  - out_file: an output file that appears only when complete.  Writing
 *    goes to a temporary file next to the target; out_file_commit flushes,
 *    syncs and renames it over the target, out_file_abort removes it.  A
 *    program that fails (or is interrupted and aborts its files) leaves no
 *    half-written output behind.
 *
 *  - json: a small streaming JSON writer with proper string escaping,
 *    indentation, and numbers printed in their shortest round-trip form
 *    (NaN and infinities, which JSON cannot hold, become null).
 */
#ifndef DRPO_EXAMPLES_REPORT_H
#define DRPO_EXAMPLES_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- atomic output files ---------------------------------------------------- */

typedef struct out_file {
    char *path; /* the target */
    char *tmp;  /* the temporary file being written ("<path>.XXXXXX") */
    FILE *f;    /* write here between open and commit */
} out_file;

/* Create the temporary file for `path`.  Returns 0, or -1 with a message
 * ("path: cannot create ...") in err. */
int out_file_open(out_file *o, const char *path, char *err, size_t err_size);
/* Flush, fsync and close the temporary file, then rename it to the target.
 * On failure removes the temporary file and returns -1 with a message. */
int out_file_commit(out_file *o, char *err, size_t err_size);
/* Close and remove the temporary file; a no-op on a file not open (or
 * already committed), so it is safe to call on every exit path. */
void out_file_abort(out_file *o);

/* ---- JSON ----------------------------------------------------------------- */

#define JSON_MAX_DEPTH 32

typedef struct json {
    FILE *f;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written at each level */
} json;

/* Start writing to f (nothing is written yet). */
void json_init(json *j, FILE *f);

/* Every value takes a key: the member name inside an object, NULL inside an
 * array or at the top level.  Containers nest up to JSON_MAX_DEPTH. */
void json_object_begin(json *j, const char *key);
void json_object_end(json *j);
void json_array_begin(json *j, const char *key);
void json_array_end(json *j);
void json_string(json *j, const char *key, const char *s); /* NULL: null */
void json_number(json *j, const char *key, double v);      /* non-finite: null */
void json_int(json *j, const char *key, int64_t v);
void json_uint(json *j, const char *key, uint64_t v);
void json_bool(json *j, const char *key, int v);
void json_null(json *j, const char *key);
/* End the document with a newline. */
void json_finish(json *j);

/* Write s as a JSON string literal (quotes, backslashes and control
 * characters escaped; other bytes, UTF-8 included, as they are). */
void json_write_escaped(FILE *f, const char *s);

/* The shortest "%.Ng" form of v (N = 1..17) that reads back as v exactly;
 * buf needs 32 bytes.  Non-finite values give "nan", "inf" or "-inf". */
const char *format_double(double v, char buf[32]);

#endif
