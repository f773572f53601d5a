/* builtin.h - what the built-in models share (internal). */
#ifndef DRPO_BUILTIN_H
#define DRPO_BUILTIN_H

#include "../batch.h"
#include "../model.h"

/* Error codes the built-in callbacks return (they surface as the step's
 * DRPO_TDIAG_CALLBACK_CODE). */
enum {
    DRPO_BUILTIN_BAD_INDEX = 1, /* a batch host index outside the model's data */
    DRPO_BUILTIN_NOMEM = 2      /* scratch could not grow */
};

/* 0 if every host index of the batch lies in [0, limit), else
 * DRPO_BUILTIN_BAD_INDEX. */
int drpo__builtin_check_indices(const drpo_batch *b, size_t limit);

/* The length of the run of consecutive host indices (h, h + 1, ...) that
 * starts at entry j of the batch's n: rows that follow each other in the
 * data, done by one gemv. */
size_t drpo__builtin_run(const drpo_batch *b, size_t j, size_t n);

/* Wrap user data and callbacks in a model; frees `user` through free_user if
 * the model cannot be created. */
drpo_status drpo__builtin_model(drpo_model **out, size_t n_params, const drpo_model_callbacks *cb,
                                void *user, const drpo_allocator *alloc);

#endif
