/*
 * plot.h - a small SVG chart writer for the example programs.
 *
 * A document is a title over a grid of panels.  A panel is either
 *   - a line chart: several named series of (x, y) points, or
 *   - a bar chart: labelled categories, each with one bar per named series
 *     (grouped bars; with one series, simple labelled bars).
 * Every panel gets a title, axes with "nice" ticks, grid lines, axis labels
 * and a legend that names each series by its colour (drawn beside the plot
 * area, never over the data).  Bars carry their values as text.  Colours
 * come from a fixed palette that stays distinguishable for colour-blind
 * readers; series are coloured in the order they are added.
 *
 * The output is plain SVG 1.1 (no scripts, no external fonts) and renders
 * in any browser.  Long series are thinned when written: each of ~1000
 * buckets keeps its lowest and highest point, so spikes survive.  NaN
 * values leave gaps in a line and leave a bar out ("n/a").
 *
 *     plot_doc *d = plot_create("Training", 2);         two panels per row
 *     plot_panel *p = plot_add_lines(d, "Loss", "step", "loss");
 *     plot_line(p, "robust", n, steps, robust);
 *     plot_line(p, "mean", n, steps, mean);
 *     const char *groups[] = {"chat", "math"};
 *     plot_panel *b = plot_add_bars(d, "Accuracy", "accuracy", 2, groups);
 *     plot_bars(b, "test", acc);                       acc[2]
 *     plot_y_range(b, 0.0, 1.0);
 *     plot_write(d, stdout);
 *     plot_free(d);
 *
 * Strings are copied; the data arrays are copied too, so callers may free
 * them at once.  Functions that can fail return 0 or -1 (out of memory, or
 * a series added to a panel of the other kind); plot_write returns -1 when
 * the stream reports an error.
 */
#ifndef DRPO_EXAMPLES_PLOT_H
#define DRPO_EXAMPLES_PLOT_H

#include <stddef.h>
#include <stdio.h>

typedef struct plot_doc plot_doc;
typedef struct plot_panel plot_panel;

/* A document titled `title` (NULL for none) laying its panels out in
 * `columns` columns (>= 1), row by row.  NULL when out of memory. */
plot_doc *plot_create(const char *title, int columns);
/* Size of each panel in SVG pixels (default 560 x 320). */
void plot_panel_size(plot_doc *d, double width, double height);

/* Add a line chart.  NULL when out of memory. */
plot_panel *plot_add_lines(plot_doc *d, const char *title, const char *xlabel,
                           const char *ylabel);
/* Add a series of n points; x may be NULL for 0, 1, ..., n-1. */
int plot_line(plot_panel *p, const char *name, size_t n, const double *x, const double *y);

/* Add a bar chart with n labelled categories along the x axis. */
plot_panel *plot_add_bars(plot_doc *d, const char *title, const char *ylabel, size_t n,
                          const char *const *categories);
/* Add a series: one value per category (NaN: no bar). */
int plot_bars(plot_panel *p, const char *name, const double *values);
/* printf format of the value printed on each bar (default "%.3g"; NULL: none). */
int plot_bar_labels(plot_panel *p, const char *format);

/* Fix the y axis to [lo, hi] (default: fitted to the data, with 0 included
 * for bar charts). */
void plot_y_range(plot_panel *p, double lo, double hi);
/* A note printed in the middle of the plot area (e.g. "no data"). */
int plot_note(plot_panel *p, const char *text);

/* Write the document as SVG. */
int plot_write(const plot_doc *d, FILE *f);
void plot_free(plot_doc *d);

#endif
