/* suites.h - every Check suite the single runner (runner.c) executes. */
#ifndef DRPO_TEST_SUITES_H
#define DRPO_TEST_SUITES_H

#include <check.h>

Suite *suite_vectors(void);
Suite *suite_bruteforce(void);
Suite *suite_objective(void);
Suite *suite_extremes(void);
Suite *suite_badinput(void);
Suite *suite_batch(void);
Suite *suite_trainer(void);
Suite *suite_stochastic(void);
Suite *suite_atomic(void);
Suite *suite_checkpoint(void);
Suite *suite_collective(void);
Suite *suite_losses(void);
Suite *suite_models(void);
Suite *suite_csv(void);
Suite *suite_synth(void);
Suite *suite_faults(void);
Suite *suite_numeric(void);
Suite *suite_threads(void);
Suite *suite_kernels(void);
Suite *suite_selection(void);
Suite *suite_kl_pass(void);
Suite *suite_scan(void);
Suite *suite_base_scan(void);
Suite *suite_weights(void);
Suite *suite_window(void);

#endif
