/* builtin.c - wrapping the built-in models' data into a drpo_model. */
#include "builtin.h"

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
