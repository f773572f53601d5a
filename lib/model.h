/* model.h - the model's layout, shared by model.c and the trainer. */
#ifndef DRPO_MODEL_H
#define DRPO_MODEL_H

#include "internal.h"

struct drpo_model {
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    size_t n_params;
    float *params;
    drpo_model_callbacks cb; /* copied; fields past the caller's struct_size are NULL */
    void *user;
    /* a built-in model (models/builtin.c): its callbacks' DRPO_BUILTIN_NOMEM
     * is an allocation failure, reported as DRPO_ERR_NOMEM (issue 7) */
    int builtin;
};

#endif
