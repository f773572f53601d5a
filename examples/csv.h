/*
 * csv.h - preference pairs from a CSV file, as drpo-train reads them.
 *
 * The file (RFC 4180) has a header row naming its columns, then one
 * preference pair per row:
 *
 *   prompt               the prompt text; pairs with the same text share a
 *                        prompt (one unit of the robust objective)  [required]
 *   group                a group label (domain, task, population); an empty
 *                        cell means "no group"  [optional]
 *   chosen_0..chosen_{d-1}      features phi(x, y_chosen)          [required]
 *   rejected_0..rejected_{d-1}  features phi(x, y_rejected)        [required]
 *
 * Columns may come in any order; d is taken from the header; columns with
 * other names are ignored.  Fields may be quoted ("a, b" and "say ""hi"""),
 * and a quoted field may span lines.  Records end with LF or CRLF; blank
 * lines are skipped; a UTF-8 byte-order mark is skipped; header names are
 * compared after trimming spaces and tabs.  Numbers are read as strtod
 * reads them in the C locale (plain decimals by a fast path with the same
 * result, decimal.h), may be surrounded by spaces, and must be finite and
 * fit a float.
 *
 * Every error names the file, the line and the column (the 1-based field
 * number) where it was found, e.g.
 *     test.csv:12:5: non-numeric value "abc" in column chosen_3
 * and the reader returns nothing on error.
 */
#ifndef DRPO_EXAMPLES_CSV_H
#define DRPO_EXAMPLES_CSV_H

#include <stddef.h>
#include <stdint.h>

/* The pairs of one file.  Pair i's features enter as the difference
 * chosen - rejected, which is all a pairwise linear model needs. */
typedef struct csv_pairs {
    size_t n;            /* pairs (data rows) */
    size_t dim;          /* features d */
    float *diff;         /* n x dim, row-major: chosen_k - rejected_k */
    char *text;          /* prompt strings, each NUL-terminated (prompts
                            cannot hold NUL bytes: the reader rejects them) */
    size_t *prompt_off;  /* [n] offset of pair i's prompt in text */
    size_t *prompt_len;  /* [n] its length in bytes */
    int32_t *group;      /* [n] index into group_names, or -1 for no group */
    char **group_names;  /* [n_groups] in order of first appearance */
    size_t n_groups;
    size_t *line;        /* [n] the line on which pair i's row starts */
    size_t group_col;    /* 1-based column of "group", 0 if the file has none */
} csv_pairs;

/* Pair i's prompt (NUL-terminated; its length is prompt_len[i]). */
static inline const char *csv_prompt(const csv_pairs *p, size_t i)
{
    return p->text + p->prompt_off[i];
}

typedef struct csv_options {
    /* 0: take d from the header; otherwise the header must give exactly this
     * many features (e.g. a test file must match its training file). */
    size_t expect_dim;
    /* the file expect_dim came from, for the message (may be NULL) */
    const char *expect_from;
} csv_options;

/* Read the file at `path`.  opt may be NULL.  On success fills *out and
 * returns 0; on error returns -1, writes a "file:line:col: message" (or
 * "file: message" where there is no position) to err (err_size bytes) and
 * leaves *out zeroed. */
int csv_read_pairs(const char *path, const csv_options *opt, csv_pairs *out, char *err,
                   size_t err_size);

/* The same for `len` bytes in memory; `name` stands for the file name in
 * messages. */
int csv_parse_pairs(const char *name, const char *data, size_t len, const csv_options *opt,
                    csv_pairs *out, char *err, size_t err_size);

/* Free what a successful read allocated and zero *p (NULL is a no-op). */
void csv_pairs_free(csv_pairs *p);

#endif
