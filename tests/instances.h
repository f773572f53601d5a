/* instances.h - for the tests that compile a kernel's file to reach its
 * instances (name_base, name_avx2, name_avx512: lib/vec.h): which of them
 * this build has and this CPU runs.  Include after the kernel's file. */
#ifndef DRPO_TEST_INSTANCES_H
#define DRPO_TEST_INSTANCES_H

/* A kernel's instances in the order baseline, AVX2, AVX-512 (NULL where
 * the build has none). */
#if defined(DRPO__HAVE_AVX512_CLONE)
#define TU_INSTANCES(name) {name##_base, name##_avx2, name##_avx512}
#elif defined(DRPO__HAVE_AVX2_CLONE)
#define TU_INSTANCES(name) {name##_base, name##_avx2, NULL}
#else
#define TU_INSTANCES(name) {name, NULL, NULL}
#endif

/* Whether instance i (0 the baseline, 1 AVX2, 2 AVX-512) runs on this CPU. */
static inline int tu_instance_runs(int i)
{
#if defined(DRPO__HAVE_AVX512_CLONE)
    if (i == 2)
        return drpo__cpu_avx512();
#endif
#if defined(DRPO__HAVE_AVX2_CLONE)
    if (i == 1)
        return drpo__cpu_avx2();
#endif
    return i == 0;
}

#endif
