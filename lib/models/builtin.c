/* builtin.c - wrapping the built-in models' data into a drpo_model. */
#include "builtin.h"

int drpo__builtin_check_indices(const drpo_batch *b, size_t limit)
{
    for (size_t j = 0; j < b->n; j++) {
        int64_t h = b->host[j];
        if (h < 0 || (uint64_t)h >= limit)
            return DRPO_BUILTIN_BAD_INDEX;
    }
    return 0;
}

size_t drpo__builtin_run(const drpo_batch *b, size_t j, size_t n)
{
    const int64_t *host = b->host;
    size_t k = 1;
    while (j + k < n && host[j + k] == host[j] + (int64_t)k)
        k++;
    return k;
}

drpo_status drpo__builtin_model(drpo_model **out, size_t n_params, const drpo_model_callbacks *cb,
                                void *user, const drpo_allocator *alloc)
{
    drpo_status st = drpo_model_create_with_allocator(out, n_params, cb, user, alloc);
    if (st != DRPO_OK)
        cb->free_user(user);
    else
        (*out)->builtin = 1;
    return st;
}
