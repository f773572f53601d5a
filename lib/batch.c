/* batch.c - preference pairs grouped into units (one unit per prompt key).
 * Units are kept up to date on every add through a hash table from key to
 * unit, so a batch is never modified by a reader and needs no "finish". */
#include "batch.h"

#include <stdint.h>
#include <string.h>
#include <xxhash.h>

uint64_t drpo_prompt_key(const void *prompt, size_t prompt_len)
{
    return XXH3_64bits(prompt_len ? prompt : "", prompt_len);
}

drpo_status drpo_batch_create_with_allocator(drpo_batch **out, const drpo_allocator *alloc)
{
    if (!out)
        return DRPO_ERR_NULL;
    *out = NULL;
    drpo_batch *b;
    drpo_status st = drpo__handle_new(alloc, sizeof *b, (void **)&b);
    if (st != DRPO_OK)
        return st;
    b->max_group = -1;
    *out = b;
    return DRPO_OK;
}

drpo_status drpo_batch_create(drpo_batch **out)
{
    return drpo_batch_create_with_allocator(out, NULL);
}

void drpo_batch_free(drpo_batch *b)
{
    if (!b)
        return;
    drpo_allocator a = b->alloc;
    drpo__free(&a, b->key); /* one block holds every per-pair array */
    drpo__keytable_free(&b->units, &a);
    drpo__free(&a, b);
}

void drpo_batch_clear(drpo_batch *b)
{
    if (!b)
        return;
    b->n = 0;
    b->n_units = 0;
    b->max_group = -1;
    drpo__keytable_clear(&b->units);
}

/* Make room for one more pair (and unit); on failure nothing changes. */
static drpo_status grow(drpo_batch *b)
{
    if (b->n < b->cap)
        return DRPO_OK;
    size_t cap = b->cap ? 2 * b->cap : 64;
    size_t per_pair = 2 * sizeof(uint64_t) + sizeof(int64_t) + 2 * sizeof(size_t) + sizeof(int32_t);
    unsigned char *block = drpo__malloc_array(&b->alloc, cap, per_pair);
    if (!block)
        return DRPO_ERR_NOMEM;
    /* 8-byte members first keep every array aligned */
    uint64_t *key = (uint64_t *)block;
    uint64_t *unit_key = key + cap;
    int64_t *host = (int64_t *)(unit_key + cap);
    size_t *unit = (size_t *)(host + cap);
    size_t *unit_pairs = unit + cap;
    int32_t *group = (int32_t *)(unit_pairs + cap);
    if (drpo__keytable_reserve(&b->units, &b->alloc, cap, b->unit_key, b->n_units) != DRPO_OK) {
        drpo__free(&b->alloc, block);
        return DRPO_ERR_NOMEM;
    }
    if (b->n) {
        memcpy(key, b->key, b->n * sizeof *key);
        memcpy(host, b->host, b->n * sizeof *host);
        memcpy(unit, b->unit, b->n * sizeof *unit);
        memcpy(group, b->group, b->n * sizeof *group);
        memcpy(unit_pairs, b->unit_pairs, b->n_units * sizeof *unit_pairs);
        memcpy(unit_key, b->unit_key, b->n_units * sizeof *unit_key);
    }
    drpo__free(&b->alloc, b->key);
    b->key = key;
    b->unit_key = unit_key;
    b->host = host;
    b->unit = unit;
    b->unit_pairs = unit_pairs;
    b->group = group;
    b->cap = cap;
    return DRPO_OK;
}

drpo_status drpo_batch_add_key(drpo_batch *b, uint64_t key, int32_t group, int64_t host_index)
{
    if (!b)
        return DRPO_ERR_NULL;
    if (group < DRPO_GROUP_NONE)
        return DRPO_ERR_PARAM_RANGE;
    drpo_status st = grow(b);
    if (st != DRPO_OK)
        return st;
    size_t slot, u = drpo__keytable_find(&b->units, b->unit_key, key, &slot);
    if (u == SIZE_MAX) {
        u = b->n_units++;
        b->unit_key[u] = key;
        b->unit_pairs[u] = 0;
        drpo__keytable_insert(&b->units, slot, u);
    }
    b->unit_pairs[u]++;
    b->key[b->n] = key;
    b->group[b->n] = group;
    b->host[b->n] = host_index;
    b->unit[b->n] = u;
    b->n++;
    if (group > b->max_group)
        b->max_group = group;
    return DRPO_OK;
}

drpo_status drpo_batch_add(drpo_batch *b, const void *prompt, size_t prompt_len, int32_t group,
                           int64_t host_index)
{
    if (!b || (!prompt && prompt_len))
        return DRPO_ERR_NULL;
    return drpo_batch_add_key(b, drpo_prompt_key(prompt, prompt_len), group, host_index);
}

size_t drpo_batch_size(const drpo_batch *b) { return b ? b->n : 0; }
size_t drpo_batch_units(const drpo_batch *b) { return b ? b->n_units : 0; }

int64_t drpo_batch_host_index(const drpo_batch *b, size_t j)
{
    return b && j < b->n ? b->host[j] : -1;
}

int32_t drpo_batch_group(const drpo_batch *b, size_t j)
{
    return b && j < b->n ? b->group[j] : DRPO_GROUP_NONE;
}

uint64_t drpo_batch_key(const drpo_batch *b, size_t j) { return b && j < b->n ? b->key[j] : 0; }

size_t drpo_batch_unit_of(const drpo_batch *b, size_t j)
{
    return b && j < b->n ? b->unit[j] : (size_t)-1;
}
