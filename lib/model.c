/* model.c - a flat float32 parameter vector and the host's callbacks. */
#include "model.h"

#include <string.h>

drpo_status drpo_model_create_with_allocator(drpo_model **out, size_t n_params,
                                             const drpo_model_callbacks *cb, void *user,
                                             const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    if (!cb)
        return DRPO_ERR_NULL;
    /* the table may grow: accept any size that reaches backward */
    size_t min_size = offsetof(drpo_model_callbacks, backward) + sizeof cb->backward;
    if (n_params == 0 || cb->struct_size < min_size)
        return DRPO_ERR_SIZE;
    if (!cb->forward || !cb->backward)
        return DRPO_ERR_NULL;
    drpo_model *m;
    drpo_status st = drpo__handle_new(alloc, sizeof *m, (void **)&m);
    if (st != DRPO_OK)
        return st;
    float *params = drpo__malloc_array(&m->alloc, n_params, sizeof(float));
    if (!params) {
        drpo_allocator a = m->alloc;
        drpo__free(&a, m);
        return DRPO_ERR_NOMEM;
    }
    memset(params, 0, n_params * sizeof(float));
    m->n_params = n_params;
    m->params = params;
    size_t copy = cb->struct_size < sizeof m->cb ? cb->struct_size : sizeof m->cb;
    memcpy(&m->cb, cb, copy);
    m->cb.struct_size = sizeof m->cb;
    m->user = user;
    *out = m;
    return DRPO_OK;
}

drpo_status drpo_model_create(drpo_model **out, size_t n_params, const drpo_model_callbacks *cb,
                              void *user)
{
    return drpo_model_create_with_allocator(out, n_params, cb, user, NULL);
}

float *drpo_model_params(drpo_model *m) { return m ? m->params : NULL; }
size_t drpo_model_n_params(const drpo_model *m) { return m ? m->n_params : 0; }

void drpo_model_free(drpo_model *m)
{
    if (!m)
        return;
    if (m->cb.free_user)
        m->cb.free_user(m->user);
    drpo_allocator a = m->alloc;
    drpo__free(&a, m->params);
    drpo__free(&a, m);
}
