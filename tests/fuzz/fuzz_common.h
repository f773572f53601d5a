/* fuzz_common.h - pieces the libFuzzer targets share: a counting allocator
 * that can fail a chosen allocation, a small callback model, and a file
 * in memory (memfd) whose /proc path the checkpoint functions can open. */
#ifndef DRPO_FUZZ_COMMON_H
#define DRPO_FUZZ_COMMON_H

#include "drpo.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_alloc {
    long count;   /* allocations so far */
    long fail_at; /* fail this one (0: never) */
    long live;
} fz_alloc;
drpo_allocator fz_allocator(fz_alloc *a);

/* Linear Bradley-Terry over 16 fixed feature rows (host index mod 16).
 * mode: 0 normal, 1 NaN loss, 2 +Inf loss, 3 loss 1e300, 4 denormal
 * losses, 5 forward fails, 6 NaN gradient, 7 backward fails,
 * 8 gradient 1e30 (float), 9 denormal gradient. */
#define FZ_D 4
typedef struct fz_model {
    int mode;
} fz_model;
drpo_model_callbacks fz_callbacks(void);

/* A file in memory; path is "/proc/self/fd/N".  fz_file_write replaces its
 * contents.  Returns 0 on success. */
typedef struct fz_file {
    int fd;
    char path[64];
} fz_file;
int fz_file_open(fz_file *f);
int fz_file_write(fz_file *f, const void *data, size_t n);
void fz_file_close(fz_file *f);

/* A byte stream: next byte / f64 (0 when exhausted). */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;
unsigned fz_u8(fz_in *in);
double fz_f64(fz_in *in);
/* A double from a table of awkward values (NaN, +-Inf, denormals, +-1e300,
 * 0, -0, 1, huge and tiny) or, for the last entries, raw bytes. */
double fz_value(fz_in *in);

/* 1 if s is a status the header defines. */
int fz_status_known(drpo_status s);

#endif
