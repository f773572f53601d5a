/* keytable.h - an open-addressing map from 64-bit keys to dense indices in
 * order of first appearance.  The keys themselves live in the owner's array
 * (keys[index]); the table holds index + 1 per slot, 0 meaning empty. */
#ifndef DRPO_KEYTABLE_H
#define DRPO_KEYTABLE_H

#include "internal.h"

typedef struct drpo_keytable {
    size_t *slots;
    size_t mask; /* slots has mask + 1 entries, a power of two; 0 if none */
} drpo_keytable;

/* Make room for `capacity` keys at load <= 1/2, re-inserting keys[0, n);
 * on failure the table is unchanged. */
drpo_status drpo__keytable_reserve(drpo_keytable *t, const drpo_allocator *a, size_t capacity,
                                   const uint64_t *keys, size_t n);
/* The index of `key`, or SIZE_MAX if absent; *slot gets the slot to insert at. */
size_t drpo__keytable_find(const drpo_keytable *t, const uint64_t *keys, uint64_t key,
                           size_t *slot);
/* Record keys[index] at a slot drpo__keytable_find returned. */
static inline void drpo__keytable_insert(drpo_keytable *t, size_t slot, size_t index)
{
    t->slots[slot] = index + 1;
}
void drpo__keytable_clear(drpo_keytable *t);
void drpo__keytable_free(drpo_keytable *t, const drpo_allocator *a);

#endif
