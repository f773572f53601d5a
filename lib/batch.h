/* batch.h - the batch's layout, shared by batch.c and the trainer. */
#ifndef DRPO_BATCH_H
#define DRPO_BATCH_H

#include "keytable.h"

struct drpo_batch {
    drpo_allocator alloc; /* first member: made by drpo__handle_new */
    size_t n, cap;       /* pairs */
    uint64_t *key;       /* [cap] prompt key of each pair */
    int32_t *group;      /* [cap] */
    int64_t *host;       /* [cap] */
    size_t *unit;        /* [cap] unit of each pair, in order of first appearance */
    size_t *unit_pairs;  /* [cap] pairs in each unit */
    uint64_t *unit_key;  /* [cap] key of each unit */
    size_t n_units;
    int32_t max_group;   /* largest group id, -1 if none */
    drpo_keytable units; /* unit_key -> unit */
};

#endif
