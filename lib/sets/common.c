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

/* Before x in the scan order (ascending, or descending gaps). */
static int before(double a, double b, int descending) { return descending ? a > b : a < b; }

int drpo__pairs_crossing(drpo_pair *a, size_t n, double start, double target, int descending,
                         double *gap)
{
    drpo_ksum base = {start, 0.0}; /* mass of everything before a[0, n) in the scan */
    int depth = 0;
    for (size_t k = n; k > 1; k >>= 1)
        depth += 2;
    while (n > 0) {
        if (depth-- == 0) { /* bad pivots: sort what is left and scan it */
            drpo__pairs_sort(a, n);
            for (size_t i = 0; i < n; i++) {
                size_t j = descending ? n - 1 - i : i;
                drpo__ksum_add(&base, a[j].p);
                if (drpo__ksum_value(&base) >= target) {
                    *gap = a[j].d;
                    return 1;
                }
            }
            return 0;
        }
        /* pivot: the median of three; three-way partition [before | equal | after] */
        double x = a[0].d, y = a[n / 2].d, z = a[n - 1].d;
        double pivot = (x < y) == (y < z) ? y : (y < x) == (x < z) ? x : z;
        size_t lt = 0, i = 0, gt = n;
        while (i < gt) {
            if (before(a[i].d, pivot, descending))
                swap_pairs(&a[i++], &a[lt++]);
            else if (a[i].d == pivot)
                i++;
            else
                swap_pairs(&a[i], &a[--gt]);
        }
        drpo_ksum b = base;
        for (size_t j = 0; j < lt; j++)
            drpo__ksum_add(&b, a[j].p);
        if (drpo__ksum_value(&b) >= target) {
            n = lt;
            continue;
        }
        for (size_t j = lt; j < gt; j++)
            drpo__ksum_add(&b, a[j].p);
        if (drpo__ksum_value(&b) >= target) {
            *gap = pivot;
            return 1;
        }
        base = b;
        a += gt;
        n -= gt;
    }
    return 0;
}
