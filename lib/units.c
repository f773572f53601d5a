/* units.c - the units (prompts) of a step: unit losses and base weights,
 * group sums and the mean loss, either from the batch alone or, with a
 * host-supplied collective, merged over every rank of a data-parallel job.
 *
 * Each rank sends one record per local unit (key, loss sum, pair count);
 * every rank receives all records in rank order and merges them by key in
 * that order, so all ranks build the same global units, in the same order,
 * with the same sums: the worst case they solve is identical, and exact. */
#include "trainer.h"

#include <string.h>

/* A unit's loss sum travels as a compensated pair (sum, error), and is
 * merged the same way, so the global unit loss is (all but always) the
 * correctly rounded sum of its pairs' losses: the same bits however the
 * pairs are split over ranks, and the same as a single process gets.  A
 * loss a rounding apart would otherwise flip a threshold (CVaR, TV) from
 * one run to another. */
typedef struct unit_record {
    uint64_t key;
    double loss_sum, loss_err;
    uint64_t pairs;
} unit_record;

static drpo_status collective_failed(drpo_trainer *t, int rc, const char *which)
{
    t->diag[DRPO_TDIAG_CALLBACK_CODE] = rc;
    t->diag_set |= 1u << DRPO_TDIAG_CALLBACK_CODE;
    return drpo__fail(t->err, DRPO_ERR_CALLBACK, "collective %s returned %d", which, rc);
}

drpo_status drpo__units_allreduce(drpo_trainer *t, const drpo_objective_config *cfg, double *v,
                                  size_t n)
{
    if (!cfg->coll || n == 0)
        return DRPO_OK;
    int rc = cfg->coll->allreduce_sum(cfg->coll_user, v, (uint64_t)n);
    return rc ? collective_failed(t, rc, "allreduce_sum") : DRPO_OK;
}

/* Local sums: unit loss sums into unit_loss, group sums; returns the loss total. */
static double local_sums(drpo_trainer *t, const drpo_batch *b, const double *loss)
{
    double total = 0.0;
    for (size_t u = 0; u < b->n_units; u++)
        t->unit_loss[u] = t->unit_comp[u] = 0.0;
    for (size_t g = 0; g < t->G; g++) {
        t->group_sum[g] = 0.0;
        t->group_pairs[g] = 0;
    }
    for (size_t j = 0; j < b->n; j++) {
        drpo_ksum k = {t->unit_loss[b->unit[j]], t->unit_comp[b->unit[j]]};
        drpo__ksum_add(&k, loss[j]);
        t->unit_loss[b->unit[j]] = k.s;
        t->unit_comp[b->unit[j]] = k.c;
        total += loss[j];
        int32_t g = b->group[j];
        if (g >= 0 && (size_t)g < t->G) {
            t->group_sum[g] += loss[j];
            t->group_pairs[g]++;
        }
    }
    return total;
}

static drpo_status local_units(drpo_trainer *t, const drpo_batch *b, double total,
                               drpo_units *u)
{
    /* (a unit of one pair, the usual case, needs neither division: the
     * quotients by 1 and 1 / n are the same bits) */
    const double one_pair = 1.0 / (double)b->n;
    for (size_t k = 0; k < b->n_units; k++) {
        size_t c = b->unit_pairs[k];
        double sum = t->unit_loss[k] + t->unit_comp[k];
        t->unit_loss[k] = c == 1 ? sum : sum / (double)c;
        t->unit_base[k] = c == 1 ? one_pair : (double)c / (double)b->n;
    }
    u->U = b->n_units;
    u->N = (double)b->n;
    u->pair_unit = b->unit;
    u->count = b->unit_pairs;
    u->mean = total / (double)b->n;
    return DRPO_OK;
}

static drpo_status reserve(drpo_trainer *t, void **buf, size_t *cap, size_t need, size_t size)
{
    if (drpo__reserve(&t->alloc, buf, cap, need, size) != DRPO_OK)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate data-parallel scratch");
    return DRPO_OK;
}

drpo_status drpo__units_build(drpo_trainer *t, const drpo_batch *b, const double *loss,
                              const drpo_objective_config *cfg, drpo_units *u)
{
    double total = local_sums(t, b, loss);
    if (!cfg->coll)
        return local_units(t, b, total, u);

    const drpo_collective *c = cfg->coll;
    size_t R = (size_t)c->size, mine = b->n_units;
    drpo_status st;
    if ((st = reserve(t, (void **)&t->rank_words, &t->rank_cap, 2 * R, sizeof(uint64_t))) ||
        (st = reserve(t, (void **)&t->l2g, &t->l2g_cap, mine, sizeof(size_t))) ||
        (st = reserve(t, (void **)&t->gpair_unit, &t->gpair_cap, b->n, sizeof(size_t))) ||
        (st = reserve(t, (void **)&t->reduce, &t->reduce_cap, 2 * t->G + 2, sizeof(double))))
        return st;
    uint64_t *units_of = t->rank_words, *bytes_of = t->rank_words + R;
    int rc = c->allgather_u64(cfg->coll_user, (uint64_t)mine, units_of);
    if (rc)
        return collective_failed(t, rc, "allgather_u64");
    size_t all = 0, offset = 0;
    for (size_t r = 0; r < R; r++) {
        if (r == (size_t)c->rank)
            offset = all;
        all += (size_t)units_of[r];
        bytes_of[r] = units_of[r] * sizeof(unit_record);
    }
    /* records: [0, all) received, then this rank's own at the end to send */
    if ((st = reserve(t, (void **)&t->records, &t->records_cap, all + mine, sizeof(unit_record))))
        return st;
    unsigned char *recv = t->records, *send = t->records + all * sizeof(unit_record);
    for (size_t k = 0; k < mine; k++) {
        unit_record r = {b->unit_key[k], t->unit_loss[k], t->unit_comp[k], b->unit_pairs[k]};
        memcpy(send + k * sizeof r, &r, sizeof r);
    }
    rc = c->allgatherv(cfg->coll_user, send, mine * sizeof(unit_record), recv, bytes_of);
    if (rc)
        return collective_failed(t, rc, "allgatherv");

    /* merge by key in rank order */
    size_t per_unit = sizeof(uint64_t) + sizeof(size_t) + 2 * sizeof(double);
    if ((st = reserve(t, &t->gunits, &t->gunit_cap, all, per_unit)) != DRPO_OK)
        return st;
    t->gkey = t->gunits;
    t->gcount = (size_t *)(t->gkey + t->gunit_cap);
    t->gsum = (double *)(t->gcount + t->gunit_cap);
    t->gerr = t->gsum + t->gunit_cap;
    if (drpo__keytable_reserve(&t->gtable, &t->alloc, all, NULL, 0) != DRPO_OK)
        return drpo__fail(t->err, DRPO_ERR_NOMEM, "cannot allocate data-parallel scratch");
    drpo__keytable_clear(&t->gtable);
    size_t U = 0;
    double N = 0.0;
    for (size_t i = 0; i < all; i++) {
        unit_record r;
        memcpy(&r, recv + i * sizeof r, sizeof r);
        size_t slot, g = drpo__keytable_find(&t->gtable, t->gkey, r.key, &slot);
        if (g == SIZE_MAX) {
            g = U++;
            t->gkey[g] = r.key;
            t->gsum[g] = t->gerr[g] = 0.0;
            t->gcount[g] = 0;
            drpo__keytable_insert(&t->gtable, slot, g);
        }
        drpo_ksum k = {t->gsum[g], t->gerr[g]};
        drpo__ksum_add(&k, r.loss_sum);
        drpo__ksum_add(&k, r.loss_err);
        t->gsum[g] = k.s;
        t->gerr[g] = k.c;
        t->gcount[g] += (size_t)r.pairs;
        N += (double)r.pairs;
        if (i >= offset && i < offset + mine)
            t->l2g[i - offset] = g;
    }
    if (U == 0)
        return drpo__fail(t->err, DRPO_ERR_SIZE, "the batch is empty on every rank");
    if ((st = drpo__trainer_unit_scratch(t, U)) != DRPO_OK)
        return st;
    for (size_t g = 0; g < U; g++) {
        t->unit_loss[g] = (t->gsum[g] + t->gerr[g]) / (double)t->gcount[g];
        t->unit_base[g] = (double)t->gcount[g] / N;
    }
    for (size_t j = 0; j < b->n; j++)
        t->gpair_unit[j] = t->l2g[b->unit[j]];

    /* group sums and counts, and the loss total, over all ranks */
    double *v = t->reduce;
    for (size_t g = 0; g < t->G; g++) {
        v[g] = t->group_sum[g];
        v[t->G + g] = (double)t->group_pairs[g];
    }
    v[2 * t->G] = total;
    v[2 * t->G + 1] = (double)b->n;
    if ((st = drpo__units_allreduce(t, cfg, v, 2 * t->G + 2)) != DRPO_OK)
        return st;
    for (size_t g = 0; g < t->G; g++) {
        t->group_sum[g] = v[g];
        t->group_pairs[g] = (size_t)v[t->G + g];
    }
    u->U = U;
    u->N = N;
    u->pair_unit = t->gpair_unit;
    u->count = t->gcount;
    u->mean = v[2 * t->G] / N;
    return DRPO_OK;
}

void drpo__units_free(drpo_trainer *t)
{
    drpo__free(&t->alloc, t->rank_words);
    drpo__free(&t->alloc, t->records);
    drpo__free(&t->alloc, t->gunits);
    drpo__free(&t->alloc, t->l2g);
    drpo__free(&t->alloc, t->gpair_unit);
    drpo__free(&t->alloc, t->reduce);
    drpo__keytable_free(&t->gtable, &t->alloc);
}
