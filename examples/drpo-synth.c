/*
 * drpo-synth.c - write the shifted-preference benchmark (synth.h) as CSV
 * files that drpo-train reads.
 *
 *     drpo-synth --out data --seed 7 --pairs 20000
 *     drpo-train --train data/train.csv --test data/test-ood.csv ...
 *
 * Files: train.csv, val.csv, test-id.csv, test-ood.csv and one
 * test-<domain>.csv per domain.  Each has a header row
 *     prompt,group,chosen_0..chosen_15,rejected_0..rejected_15
 * and one preference pair per row: the prompt's text (pairs of one prompt
 * share it), its domain as the group, and the features of the preferred and
 * the other response.  Numbers are written with 9 significant digits, so
 * they read back as the same floats.
 */
#include "synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: drpo-synth [--out DIR] [--seed S] [--pairs N] [--help]\n"
               "  --out DIR   directory for the CSV files (default synth-data)\n"
               "  --seed S    seed of the generator (default 20250101)\n"
               "  --pairs N   training pairs (default 20000); the validation and test\n"
               "              sets keep their sizes (20000 validation; 8000 per test\n"
               "              mixture; 3000 per domain)\n");
}

/* One split as CSV; written to a temporary name, then renamed, so that no
 * half-written file is left behind. */
static int write_split(const char *dir, const synth_split *s)
{
    char path[4096], tmp[4200], prompt[64];
    snprintf(path, sizeof path, "%s/%s.csv", dir, s->name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "drpo-synth: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "prompt,group");
    for (int side = 0; side < 2; side++)
        for (int j = 0; j < SYNTH_DIM; j++)
            fprintf(f, ",%s_%d", side ? "rejected" : "chosen", j);
    fputc('\n', f);
    for (size_t h = 0; h < s->n_pairs; h++) {
        size_t i = s->pair_prompt[h];
        synth_prompt_text(s, i, prompt, sizeof prompt);
        fprintf(f, "%s,%s", prompt, synth_domain_name(s->domain[i]));
        const float *rows[2] = {s->features + (s->offsets[i] + s->chosen[h]) * SYNTH_DIM,
                                s->features + (s->offsets[i] + s->rejected[h]) * SYNTH_DIM};
        for (int side = 0; side < 2; side++)
            for (int j = 0; j < SYNTH_DIM; j++)
                fprintf(f, ",%.9g", (double)rows[side][j]);
        fputc('\n', f);
    }
    int bad = ferror(f) | fclose(f);
    if (bad || rename(tmp, path)) {
        fprintf(stderr, "drpo-synth: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    printf("%-24s %6zu pairs, %6zu prompts\n", path, s->n_pairs, s->n_prompts);
    return 0;
}

/* A whole non-negative number, or -1. */
static long long parse_count(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || *s == '\0' || *end != '\0' || v < 0 ? -1 : v;
}

int main(int argc, char **argv)
{
    const char *dir = "synth-data";
    synth_config cfg;
    synth_default_config(&cfg);
    for (int i = 1; i < argc; i++) {
        long long v = 0;
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc &&
                   (v = parse_count(argv[++i])) >= 0) {
            cfg.seed = (uint64_t)v;
        } else if (!strcmp(argv[i], "--pairs") && i + 1 < argc &&
                   (v = parse_count(argv[++i])) > 0) {
            cfg.train_pairs = (size_t)v;
        } else {
            fprintf(stderr, "drpo-synth: bad argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "drpo-synth: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    synth_bench b;
    if (synth_generate(&cfg, &b)) {
        fprintf(stderr, "drpo-synth: cannot generate the data (out of memory?)\n");
        return 1;
    }
    printf("drpo-synth: seed %llu, %zu candidates per prompt, %zu pairs per prompt\n",
           (unsigned long long)cfg.seed, cfg.candidates, cfg.pairs_per_prompt);
    int rc = write_split(dir, &b.train) || write_split(dir, &b.val) ||
             write_split(dir, &b.test_id) || write_split(dir, &b.test_ood);
    for (int g = 0; g < SYNTH_DOMAINS && !rc; g++)
        rc = write_split(dir, &b.test_domain[g]);
    synth_free(&b);
    return rc ? 1 : 0;
}
