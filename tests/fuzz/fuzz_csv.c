/* fuzz_csv.c - libFuzzer target: the CSV preference reader of drpo-train
 * (examples/csv.c) on arbitrary bytes.
 *
 * The first byte picks the expected dimension (0: from the header), the rest
 * is the file.  On success every pair must be well formed (prompt offsets
 * inside the text and NUL-terminated, group ids in range, finite features);
 * on failure the output must be zeroed and the message non-empty. */
#include "csv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    csv_options opt = {(size_t)(data[0] % 4), "fuzz-train.csv"};
    csv_pairs p;
    char err[256];
    memset(&p, 0xA5, sizeof p); /* the reader must overwrite it either way */
    int rc = csv_parse_pairs("fuzz.csv", (const char *)data + 1, size - 1,
                             opt.expect_dim ? &opt : NULL, &p, err, sizeof err);
    if (rc != 0) {
        csv_pairs zero;
        memset(&zero, 0, sizeof zero);
        if (rc != -1 || memcmp(&p, &zero, sizeof p) != 0 || err[0] == '\0' ||
            memchr(err, '\0', sizeof err) == NULL)
            abort();
        return 0;
    }
    if (p.n == 0 || p.dim == 0 || (opt.expect_dim && p.dim != opt.expect_dim))
        abort();
    for (size_t i = 0; i < p.n; i++) {
        const char *s = csv_prompt(&p, i);
        if (strlen(s) != p.prompt_len[i])
            abort();
        if (p.group[i] < -1 || (p.group[i] >= 0 && (size_t)p.group[i] >= p.n_groups))
            abort();
        for (size_t k = 0; k < p.dim; k++)
            if (!isfinite(p.diff[i * p.dim + k]))
                abort();
    }
    for (size_t g = 0; g < p.n_groups; g++)
        if (!p.group_names[g])
            abort();
    csv_pairs_free(&p);
    return 0;
}
