/* runner.c - the one Check runner behind `make check`.  Its last line is
 * Check's summary ("100%: Checks: N, Failures: 0, Errors: 0"), which CI reads. */
#include "suites.h"

#include <stdlib.h>

int main(void)
{
    Suite *(*const suites[])(void) = {
        suite_vectors,
        suite_bruteforce,
        suite_objective,
        suite_extremes,
        suite_badinput,
        suite_batch,
        suite_trainer,
        suite_stochastic,
        suite_atomic,
        suite_checkpoint,
        suite_collective,
        suite_losses,
        suite_models,
        suite_csv,
        suite_synth,
        suite_faults,
        suite_numeric,
        suite_threads,
        suite_kernels,
        suite_selection,
        suite_kl_pass,
        suite_scan,
        suite_base_scan,
        suite_weights,
        suite_window,
    };
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
