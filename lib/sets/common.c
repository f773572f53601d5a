/* common.c - pieces every ambiguity set's solver shares: the two trivial
 * answers (base and argmax) and the sort of (gap, mass) pairs. */
#include "../internal.h"

static void step_rule(drpo_solution *sol, double c_top, double c_rest, double scale, int divergence)
{
    drpo_qrule r = {.kind = DRPO__Q_STEP, .divergence = divergence, .c_top = c_top,
                    .c_below = c_rest, .c_at = c_rest, .c_above = c_rest, .scale = scale};
    sol->rule = r;
}

void drpo__q_base(const drpo_problem *pb, drpo_solution *sol)
{
    step_rule(sol, 1.0, 1.0, 1.0, DRPO__DIV_NONE);
    sol->divergence = 0.0;
    sol->value = -pb->mean_d;
}

void drpo__q_on_top(const drpo_problem *pb, drpo_solution *sol, int divergence)
{
    step_rule(sol, 1.0, 0.0, 1.0 / pb->p_top, divergence);
    sol->value = 0.0;
}

/* Introsort: quicksort with median-of-three, insertion sort below 16
 * elements, heapsort past 2 log2 n levels, so O(n log n) in the worst case
 * and no allocation (glibc's qsort may allocate behind our allocator). */

static void insertion_sort(drpo_pair *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        drpo_pair x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].d > x.d) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void sift_down(drpo_pair *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1].d > a[child].d)
            child++;
        if (!(a[child].d > a[root].d))
            return;
        drpo_pair t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heap_sort(drpo_pair *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        drpo_pair t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static void swap_pairs(drpo_pair *x, drpo_pair *y)
{
    drpo_pair t = *x;
    *x = *y;
    *y = t;
}

static void intro_sort(drpo_pair *a, size_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort(a, n);
            return;
        }
        size_t mid = n / 2;
        if (a[mid].d < a[0].d)
            swap_pairs(&a[mid], &a[0]);
        if (a[n - 1].d < a[0].d)
            swap_pairs(&a[n - 1], &a[0]);
        if (a[n - 1].d < a[mid].d)
            swap_pairs(&a[n - 1], &a[mid]);
        double pivot = a[mid].d;
        size_t i = 0, j = n - 1;
        for (;;) { /* Hoare partition: equal keys split evenly */
            while (a[i].d < pivot)
                i++;
            while (a[j].d > pivot)
                j--;
            if (i >= j)
                break;
            swap_pairs(&a[i], &a[j]);
            i++;
            j--;
        }
        /* [0, j] <= pivot <= [j + 1, n): recurse on the smaller side */
        size_t left = j + 1;
        if (left < n - left) {
            intro_sort(a, left, depth);
            a += left;
            n -= left;
        } else {
            intro_sort(a + left, n - left, depth);
            n = left;
        }
    }
    insertion_sort(a, n);
}

void drpo__pairs_sort(drpo_pair *a, size_t n)
{
    int depth = 0;
    for (size_t k = n; k > 1; k >>= 1)
        depth += 2;
    intro_sort(a, n, depth);
}

/* Before b in the scan order (ascending, or descending gaps). */
static int before(double a, double b, int descending) { return descending ? a > b : a < b; }

/* g's sums (about the same centre) added to *s. */
static void sums_merge(drpo_scan_sums *s, const drpo_scan_sums *g)
{
    drpo__ksum_add(&s->mass, g->mass.s);
    drpo__ksum_add(&s->mass, g->mass.c);
    s->s1 += g->s1;
    s->s2 += g->s2;
}

/* drpo__ksum_add for x >= 0 and a sum >= 0 (the same bits): the larger by
 * value is the larger in magnitude (maxsd and minsd, not a compare and
 * blend per term). */
DRPO__INLINE void mass_add(drpo_ksum *k, double x)
{
    double t = k->s + x;
    double big = k->s > x ? k->s : x, small = k->s > x ? x : k->s;
    k->c += (big - t) + small;
    k->s = t;
}

/* The sums of a[0, n) added to *s (the masses alone unless `moments`), the
 * mass compensated at every pair (two running sums, even and odd pairs, for
 * a shorter dependency chain): its rounding then hardly depends on the
 * order of the pairs, so that the same units in another order (a
 * data-parallel merge) cross at the same group even when a mass lands on
 * the target to the last bits. */
DRPO__INLINE void add_pairs(drpo_scan_sums *s, const drpo_pair *a, size_t n, int moments)
{
    drpo_ksum even = {0.0, 0.0}, odd = {0.0, 0.0};
    double s1 = 0.0, s2 = 0.0, c = s->centre;
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        mass_add(&even, a[j].p);
        mass_add(&odd, a[j + 1].p);
        if (moments) {
            double x0 = a[j].d - c, x1 = a[j + 1].d - c;
            s1 += a[j].p * x0 + a[j + 1].p * x1;
            s2 += a[j].p * x0 * x0 + a[j + 1].p * x1 * x1;
        }
    }
    if (j < n) {
        double x = a[j].d - c;
        mass_add(&even, a[j].p);
        if (moments) {
            s1 += a[j].p * x;
            s2 += a[j].p * x * x;
        }
    }
    drpo_scan_sums e = {even, s1, s2, c}, o = {odd, 0.0, 0.0, c};
    sums_merge(s, &e);
    sums_merge(s, &o);
}

/* The sorted fallback: the groups of equal gaps in scan order. */
static int scan_sorted(drpo_pair *a, size_t n, drpo_scan_sums *sums, int descending,
                       drpo_scan_stop stop, const void *ctx, double *gap)
{
    drpo__pairs_sort(a, n);
    for (size_t i = 0; i < n;) { /* the group of a[i, j) in scan order */
        size_t j = i;
        double v = a[descending ? n - 1 - i : i].d;
        while (j < n && a[descending ? n - 1 - j : j].d == v)
            j++;
        drpo_scan_sums g = {{0.0, 0.0}, 0.0, 0.0, sums->centre};
        add_pairs(&g, descending ? a + n - j : a + i, j - i, 1);
        if (stop(sums, v, &g, ctx)) {
            *gap = v;
            return 1;
        }
        sums_merge(sums, &g);
        i = j;
    }
    return 0;
}

/* Move the pairs of a[0, n) before the pivot in scan order to the front
 * (branchless Lomuto), returning how many. */
DRPO__INLINE size_t lomuto(drpo_pair *a, size_t n, double pivot, int descending)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        drpo_pair x = a[i];
        size_t take = before(x.d, pivot, descending);
        a[i] = a[k];
        a[k] = x;
        k += take;
    }
    return k;
}

#define PBLOCK 64

/* Move the pairs of a[0, n) before the pivot in scan order to the front, in
 * blocks without a branch per pair (they lie at random either side: a
 * branch mispredicts half the time): from both ends, the places of the
 * misplaced pairs of a block each are listed, then swapped in pairs
 * (block partition, as in BlockQuicksort and pdqsort).  Then adds their
 * sums to *s (masses alone unless `moments`); returns how many. */
DRPO__INLINE size_t partition_by(drpo_pair *a, size_t n, double pivot, int descending,
                                 int moments, drpo_scan_sums *s)
{
    unsigned char off_l[PBLOCK], off_r[PBLOCK];
    size_t first = 0, last = n, nl = 0, nr = 0, sl = 0, sr = 0;
    while (last - first >= 2 * PBLOCK) {
        if (nl == 0) {
            sl = 0;
            for (size_t i = 0; i < PBLOCK; i++) {
                off_l[nl] = (unsigned char)i;
                nl += !before(a[first + i].d, pivot, descending);
            }
        }
        if (nr == 0) {
            sr = 0;
            for (size_t i = 0; i < PBLOCK; i++) {
                off_r[nr] = (unsigned char)i;
                nr += before(a[last - 1 - i].d, pivot, descending);
            }
        }
        size_t m = nl < nr ? nl : nr;
        for (size_t j = 0; j < m; j++)
            swap_pairs(&a[first + off_l[sl + j]], &a[last - 1 - off_r[sr + j]]);
        nl -= m, nr -= m, sl += m, sr += m;
        if (nl == 0)
            first += PBLOCK;
        if (nr == 0)
            last -= PBLOCK;
    }
    size_t k = first + lomuto(a + first, last - first, pivot, descending);
    add_pairs(s, a, k, moments);
    return k;
}

/* (the order and the sums chosen once, not per pair) */
static size_t partition(drpo_pair *a, size_t n, double pivot, int descending, int moments,
                        drpo_scan_sums *s)
{
    if (moments)
        return descending ? partition_by(a, n, pivot, 1, 1, s)
                          : partition_by(a, n, pivot, 0, 1, s);
    return descending ? partition_by(a, n, pivot, 1, 0, s)
                      : partition_by(a, n, pivot, 0, 0, s);
}

/* Move the pairs of a[0, n) at the pivot to the front; returns how many.
 * Ties are rare: two gaps are compared at a time, with a branch that is
 * nearly always not taken. */
static size_t gather_equal(drpo_pair *a, size_t n, double pivot)
{
    typedef double v2d __attribute__((vector_size(16)));
    typedef int64_t v2i __attribute__((vector_size(16)));
    size_t k = 0, i = 0;
    for (; i + 2 <= n; i += 2) {
        v2d d = {a[i].d, a[i + 1].d};
        v2i eq = d == pivot;
        if (eq[0] | eq[1])
            for (size_t j = i; j < i + 2; j++)
                if (a[j].d == pivot)
                    swap_pairs(&a[k++], &a[j]);
    }
    if (i < n && a[i].d == pivot)
        swap_pairs(&a[k++], &a[i]);
    return k;
}

/* drpo__pairs_scan; `moments` 0: the stop reads the masses alone, whose
 * sums are all that is kept (s1 and s2 stay as they came). */
DRPO__INLINE int pairs_scan(drpo_pair *a, size_t n, drpo_scan_sums *sums, int descending,
                             drpo_scan_stop stop, const void *ctx, double *gap, int moments)
{
    int found = 0, depth = 0;
    drpo_scan_sums at_found = *sums;
    for (size_t k = n; k > 1; k >>= 1)
        depth += 2;
    while (n > 0) {
        if (depth-- == 0) { /* bad pivots: sort what is left and scan it */
            if (scan_sorted(a, n, sums, descending, stop, ctx, gap))
                return 1;
            break; /* (*sums: everything, unless a stop was found further up) */
        }
        /* pivot: the median of three at scattered places (the ends of a part
         * that a partition left behind are not a fair draw: pivots taken
         * there ran out the depth budget), moved to the end; three-way
         * partition [before | equal | after] */
        uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull;
        size_t ix = (h >> 20) % n, iy = (h >> 30) % n, iz = (h >> 40) % n;
        double x = a[ix].d, y = a[iy].d, z = a[iz].d;
        size_t ip = (x < y) == (y < z) ? iy : (y < x) == (x < z) ? ix : iz;
        double pivot = a[ip].d;
        swap_pairs(&a[ip], &a[n - 1]);
        drpo_scan_sums b = *sums, g = {{0.0, 0.0}, 0.0, 0.0, sums->centre};
        size_t lt = partition(a, n - 1, pivot, descending, moments, &b);
        swap_pairs(&a[lt], &a[n - 1]);
        size_t gt = lt + 1 + gather_equal(a + lt + 1, n - lt - 1, pivot);
        add_pairs(&g, a + lt, gt - lt, moments);
        if (stop(&b, pivot, &g, ctx)) { /* here or before: the pivot unless a part before stops */
            found = 1;
            *gap = pivot;
            at_found = b;
            n = lt;
            continue;
        }
        sums_merge(&b, &g);
        *sums = b;
        a += gt;
        n -= gt;
    }
    if (found)
        *sums = at_found;
    return found;
}

int drpo__pairs_scan(drpo_pair *a, size_t n, drpo_scan_sums *sums, int descending,
                     drpo_scan_stop stop, const void *ctx, double *gap)
{
    return pairs_scan(a, n, sums, descending, stop, ctx, gap, 1);
}

static int mass_reached(const drpo_scan_sums *before, double gap, const drpo_scan_sums *group,
                        const void *ctx)
{
    (void)gap;
    drpo_scan_sums through = *before;
    sums_merge(&through, group);
    return drpo__ksum_value(&through.mass) >= *(const double *)ctx;
}

int drpo__pairs_crossing(drpo_pair *a, size_t n, double start, double target, int descending,
                         double *gap)
{
    drpo_scan_sums sums = {{start, 0.0}, 0.0, 0.0, 0.0};
    return pairs_scan(a, n, &sums, descending, mass_reached, &target, gap, 0);
}
