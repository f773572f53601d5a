/* keytable.c - key -> index map for prompt units (batches, global units). */
#include "keytable.h"

#include <stdint.h>
#include <string.h>

static size_t slot_of(uint64_t key, size_t mask)
{
    /* host keys may be small integers: mix before masking */
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

drpo_status drpo__keytable_reserve(drpo_keytable *t, const drpo_allocator *a, size_t capacity,
                                   const uint64_t *keys, size_t n)
{
    size_t want = 16;
    while (want < 2 * capacity)
        want *= 2;
    if (t->slots && want <= t->mask + 1)
        return DRPO_OK;
    size_t *slots = drpo__malloc_array(a, want, sizeof *slots);
    if (!slots)
        return DRPO_ERR_NOMEM;
    memset(slots, 0, want * sizeof *slots);
    for (size_t i = 0; i < n; i++) {
        size_t s = slot_of(keys[i], want - 1);
        while (slots[s])
            s = (s + 1) & (want - 1);
        slots[s] = i + 1;
    }
    drpo__free(a, t->slots);
    t->slots = slots;
    t->mask = want - 1;
    return DRPO_OK;
}

size_t drpo__keytable_find(const drpo_keytable *t, const uint64_t *keys, uint64_t key,
                           size_t *slot)
{
    size_t s = slot_of(key, t->mask);
    while (t->slots[s] && keys[t->slots[s] - 1] != key)
        s = (s + 1) & t->mask;
    *slot = s;
    return t->slots[s] ? t->slots[s] - 1 : SIZE_MAX;
}

void drpo__keytable_clear(drpo_keytable *t)
{
    if (t->slots)
        memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
}

void drpo__keytable_free(drpo_keytable *t, const drpo_allocator *a)
{
    drpo__free(a, t->slots);
    t->slots = NULL;
    t->mask = 0;
}
