/* alloc.c - every allocation the library makes goes through a handle's allocator. */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *default_malloc(void *user, size_t size)
{
    (void)user;
    return malloc(size);
}

static void *default_realloc(void *user, void *ptr, size_t size)
{
    (void)user;
    return realloc(ptr, size);
}

static void default_free(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

drpo_status drpo__allocator_init(drpo_allocator *dst, const drpo_allocator *src)
{
    if (!src) {
        dst->struct_size = sizeof *dst;
        dst->malloc_fn = default_malloc;
        dst->realloc_fn = default_realloc;
        dst->free_fn = default_free;
        dst->user = NULL;
        return DRPO_OK;
    }
    if (src->struct_size < sizeof *dst || !src->malloc_fn || !src->realloc_fn || !src->free_fn)
        return DRPO_ERR_PARAM_RANGE;
    *dst = *src;
    dst->struct_size = sizeof *dst;
    return DRPO_OK;
}

drpo_status drpo__handle_new(const drpo_allocator *user, size_t size, void **out)
{
    drpo_allocator a;
    drpo_status st = drpo__allocator_init(&a, user);
    if (st != DRPO_OK)
        return st;
    void *h = drpo__malloc(&a, size);
    if (!h)
        return DRPO_ERR_NOMEM;
    memset(h, 0, size);
    memcpy(h, &a, sizeof a);
    *out = h;
    return DRPO_OK;
}

void *drpo__malloc(const drpo_allocator *a, size_t size)
{
    return a->malloc_fn(a->user, size ? size : 1);
}

void drpo__free(const drpo_allocator *a, void *ptr)
{
    if (ptr)
        a->free_fn(a->user, ptr);
}

void *drpo__malloc_array(const drpo_allocator *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return drpo__malloc(a, n * size);
}

drpo_status drpo__reserve(const drpo_allocator *a, void **buf, size_t *cap, size_t need,
                          size_t size)
{
    if (need <= *cap && *buf)
        return DRPO_OK;
    size_t want = need > 2 * *cap ? need : 2 * *cap;
    void *p = drpo__malloc_array(a, want, size);
    if (!p)
        return DRPO_ERR_NOMEM;
    drpo__free(a, *buf);
    *buf = p;
    *cap = want;
    return DRPO_OK;
}
