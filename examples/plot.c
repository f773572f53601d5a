/*
 * plot.c - a small SVG chart writer (see plot.h).
 *
 * Layout of one panel (SVG pixels, y downwards):
 *
 *     +---------------------------------------------+
 *     |                  title                      |
 *     |  y  +---------------------------+  legend   |
 *     |  l  |        plot area          |  -- name  |
 *     |  a  |                           |  -- name  |
 *     |  b  +---------------------------+           |
 *     |       ticks / category labels               |
 *     |                x label                      |
 *     +---------------------------------------------+
 */
#include "plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL_LINES, PANEL_BARS };

/* Thinning: a line with more points than this is reduced to BUCKETS
 * buckets, each keeping its lowest and highest point. */
#define THIN_ABOVE 2000
#define BUCKETS 1000

/* Colour-blind-safe palette (Okabe and Ito), then a few more. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000", "#7F7F7F",
                                      "#8C564B", "#BCBD22"};
#define N_COLOURS (sizeof palette / sizeof palette[0])

typedef struct series {
    char *name;
    size_t n;
    double *x, *y; /* lines: n points; bars: y holds one value per category */
} series;

struct plot_panel {
    int kind;
    char *title, *xlabel, *ylabel, *note;
    char *bar_format; /* NULL: no value labels */
    series *s;
    size_t ns;
    char **cat;
    size_t ncat;
    int fixed_y;
    double ylo, yhi;
};

struct plot_doc {
    char *title;
    int columns;
    double pw, ph;
    plot_panel **p;
    size_t np;
};

/* ---- construction ---------------------------------------------------------- */

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Copy a string argument into *dst; -1 when s was given but not copied. */
static int set_str(char **dst, const char *s)
{
    char *d = dup_str(s);
    if (s && !d)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

plot_doc *plot_create(const char *title, int columns)
{
    plot_doc *d = calloc(1, sizeof *d);
    if (!d || set_str(&d->title, title)) {
        free(d);
        return NULL;
    }
    d->columns = columns < 1 ? 1 : columns;
    d->pw = 560;
    d->ph = 320;
    return d;
}

void plot_panel_size(plot_doc *d, double width, double height)
{
    d->pw = width > 200 ? width : 200;
    d->ph = height > 150 ? height : 150;
}

static plot_panel *add_panel(plot_doc *d, int kind, const char *title, const char *xlabel,
                             const char *ylabel)
{
    plot_panel **arr = realloc(d->p, (d->np + 1) * sizeof *arr);
    if (!arr)
        return NULL;
    d->p = arr;
    plot_panel *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->kind = kind;
    if (set_str(&p->title, title) || set_str(&p->xlabel, xlabel) ||
        set_str(&p->ylabel, ylabel) || (kind == PANEL_BARS && set_str(&p->bar_format, "%.3g"))) {
        free(p->title);
        free(p->xlabel);
        free(p->ylabel);
        free(p);
        return NULL;
    }
    d->p[d->np++] = p;
    return p;
}

plot_panel *plot_add_lines(plot_doc *d, const char *title, const char *xlabel,
                           const char *ylabel)
{
    return add_panel(d, PANEL_LINES, title, xlabel, ylabel);
}

plot_panel *plot_add_bars(plot_doc *d, const char *title, const char *ylabel, size_t n,
                          const char *const *categories)
{
    plot_panel *p = add_panel(d, PANEL_BARS, title, NULL, ylabel);
    if (!p)
        return NULL;
    /* on failure the panel stays, without categories; plot_free frees it */
    p->cat = calloc(n ? n : 1, sizeof *p->cat);
    if (!p->cat)
        return NULL;
    p->ncat = n;
    for (size_t i = 0; i < n; i++)
        if (set_str(&p->cat[i], categories[i] ? categories[i] : "")) {
            p->ncat = 0;
            for (size_t k = 0; k < i; k++)
                free(p->cat[k]);
            return NULL;
        }
    return p;
}

/* Append a series; x and y are copied (x may be NULL). */
static int add_series(plot_panel *p, const char *name, size_t n, const double *x,
                      const double *y)
{
    series *arr = realloc(p->s, (p->ns + 1) * sizeof *arr);
    if (!arr)
        return -1;
    p->s = arr;
    series s = {dup_str(name ? name : ""), n, malloc((n ? n : 1) * sizeof(double)),
                malloc((n ? n : 1) * sizeof(double))};
    if (!s.name || !s.x || !s.y) {
        free(s.name);
        free(s.x);
        free(s.y);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        s.x[i] = x ? x[i] : (double)i;
        s.y[i] = y[i];
    }
    p->s[p->ns++] = s;
    return 0;
}

int plot_line(plot_panel *p, const char *name, size_t n, const double *x, const double *y)
{
    if (!p || p->kind != PANEL_LINES)
        return -1;
    return add_series(p, name, n, x, y);
}

int plot_bars(plot_panel *p, const char *name, const double *values)
{
    if (!p || p->kind != PANEL_BARS)
        return -1;
    return add_series(p, name, p->ncat, NULL, values);
}

int plot_bar_labels(plot_panel *p, const char *format)
{
    return p ? set_str(&p->bar_format, format) : -1;
}

void plot_y_range(plot_panel *p, double lo, double hi)
{
    if (p && isfinite(lo) && isfinite(hi) && lo < hi) {
        p->fixed_y = 1;
        p->ylo = lo;
        p->yhi = hi;
    }
}

int plot_note(plot_panel *p, const char *text) { return p ? set_str(&p->note, text) : -1; }

void plot_free(plot_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->np; i++) {
        plot_panel *p = d->p[i];
        for (size_t k = 0; k < p->ns; k++) {
            free(p->s[k].name);
            free(p->s[k].x);
            free(p->s[k].y);
        }
        for (size_t k = 0; k < p->ncat; k++)
            free(p->cat[k]);
        free(p->cat);
        free(p->s);
        free(p->title);
        free(p->xlabel);
        free(p->ylabel);
        free(p->note);
        free(p->bar_format);
        free(p);
    }
    free(d->p);
    free(d->title);
    free(d);
}

/* ---- axes -------------------------------------------------------------------- */

/* An axis: the data range mapped onto [pix0, pix1], and its ticks. */
typedef struct axis {
    double lo, hi;     /* data range shown */
    double pix0, pix1; /* pixels of lo and hi */
    double step;       /* tick spacing */
} axis;

static double ax_map(const axis *a, double v)
{
    return a->pix0 + (v - a->lo) / (a->hi - a->lo) * (a->pix1 - a->pix0);
}

/* The "nice" number (1, 2, 2.5 or 5 times a power of ten) closest to x. */
static double nice_step(double x)
{
    double e = pow(10.0, floor(log10(x)));
    double f = x / e;
    double n = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
    return n * e;
}

/* Fit an axis to [lo, hi] with about `ticks` ticks; `extend` widens the
 * range to whole ticks. */
static void ax_fit(axis *a, double lo, double hi, int ticks, int extend)
{
    if (!(lo <= hi)) { /* no finite data */
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-12 * fmax(1.0, fabs(lo))) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
    a->step = nice_step((hi - lo) / ticks);
    if (extend) {
        lo = floor(lo / a->step + 1e-9) * a->step;
        hi = ceil(hi / a->step - 1e-9) * a->step;
    }
    a->lo = lo;
    a->hi = hi;
}

/* A tick label for v on an axis of this step: enough decimals to tell ticks
 * apart, %g for very large or very small numbers, never "-0". */
static void tick_label(double v, double step, char *buf, size_t n)
{
    if (fabs(v) < step * 1e-9)
        v = 0;
    double mag = fmax(fabs(v), step);
    if (mag >= 1e6 || step < 1e-4) {
        snprintf(buf, n, "%.3g", v);
        return;
    }
    int dec = (int)ceil(-log10(step) - 1e-9);
    if (dec < 0)
        dec = 0;
    /* steps such as 2.5 or 0.25 need one decimal more */
    double scaled = step * pow(10.0, dec);
    if (fabs(scaled - round(scaled)) > 1e-6)
        dec++;
    snprintf(buf, n, "%.*f", dec, v);
}

/* ---- SVG output --------------------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

/* <text> at (x, y) with extra attributes and escaped content. */
static void text_at(FILE *f, double x, double y, const char *attrs, const char *s)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" %s>", x, y, attrs);
    xml_text(f, s);
    fputs("</text>\n", f);
}

/* Rough width of a string in a 12px sans-serif font. */
static double text_width(const char *s, double px)
{
    return (s ? (double)strlen(s) : 0.0) * px * 0.58;
}

/* Range of the finite y values (and x values for lines) of a panel. */
static void data_range(const plot_panel *p, int use_x, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t k = 0; k < p->ns; k++)
        for (size_t i = 0; i < p->s[k].n; i++) {
            double v = use_x ? p->s[k].x[i] : p->s[k].y[i];
            if (isfinite(v) && (use_x || isfinite(p->s[k].x[i]))) {
                *lo = fmin(*lo, v);
                *hi = fmax(*hi, v);
            }
        }
}

/* One run of finite points [a, b) of series s as a polyline, thinned to
 * the lowest and highest point of each bucket when long. */
static void polyline(FILE *f, const series *s, size_t a, size_t b, const axis *ax,
                     const axis *ay, const char *colour)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" "
               "stroke-linejoin=\"round\" points=\"",
            colour);
    size_t n = b - a;
    if (n <= THIN_ABOVE) {
        for (size_t i = a; i < b; i++)
            fprintf(f, "%.2f,%.2f ", ax_map(ax, s->x[i]), ax_map(ay, s->y[i]));
    } else {
        for (size_t k = 0; k < BUCKETS; k++) {
            size_t i0 = a + n * k / BUCKETS, i1 = a + n * (k + 1) / BUCKETS;
            size_t lo = i0, hi = i0;
            for (size_t i = i0; i < i1; i++) {
                lo = s->y[i] < s->y[lo] ? i : lo;
                hi = s->y[i] > s->y[hi] ? i : hi;
            }
            size_t first = lo < hi ? lo : hi, second = lo < hi ? hi : lo;
            fprintf(f, "%.2f,%.2f ", ax_map(ax, s->x[first]), ax_map(ay, s->y[first]));
            if (second != first)
                fprintf(f, "%.2f,%.2f ", ax_map(ax, s->x[second]), ax_map(ay, s->y[second]));
        }
    }
    fputs("\"/>\n", f);
}

/* Horizontal grid lines and y tick labels. */
static void y_ticks(FILE *f, const axis *ay, double left, double right)
{
    char buf[48];
    for (double v = ceil(ay->lo / ay->step - 1e-9) * ay->step; v <= ay->hi + ay->step * 1e-9;
         v += ay->step) {
        double y = ax_map(ay, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                left, y, right, y);
        tick_label(v, ay->step, buf, sizeof buf);
        text_at(f, left - 6, y + 4, "text-anchor=\"end\" font-size=\"11\"", buf);
    }
}

/* The legend: one entry per series, right of the plot area. */
static void legend(FILE *f, const plot_panel *p, double x, double y)
{
    for (size_t k = 0; k < p->ns; k++, y += 18) {
        const char *c = palette[k % N_COLOURS];
        if (p->kind == PANEL_LINES)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"3\"/>\n",
                    x, y - 4, x + 20, y - 4, c);
        else
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
                    x + 4, y - 10, c);
        text_at(f, x + 26, y, "font-size=\"12\"", p->s[k].name);
    }
}

static void write_panel(FILE *f, const plot_panel *p, size_t idx, double ox, double oy, double w,
                        double h)
{
    /* the legend's width sets the right margin */
    double lw = 0;
    for (size_t k = 0; k < p->ns; k++)
        lw = fmax(lw, text_width(p->s[k].name, 12) + 40);
    lw = fmin(lw, w * 0.35);
    /* long category labels are drawn slanted and need a deeper margin */
    double catw = 0;
    for (size_t i = 0; i < p->ncat; i++)
        catw = fmax(catw, text_width(p->cat[i], 11));
    double left = ox + 66, right = ox + w - 14 - lw, top = oy + 34;
    double group_w = p->ncat ? (right - left) / (double)p->ncat : 0;
    int slant = p->kind == PANEL_BARS && catw > group_w - 4;
    double bottom = oy + h - (p->kind == PANEL_LINES ? 46 : slant ? fmin(28 + catw * 0.55, h * 0.4) : 34);

    fprintf(f, "<g>\n");
    text_at(f, ox + w / 2, oy + 20, "text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\"",
            p->title);

    /* axes */
    axis ax = {0, 1, left, right, 1}, ay = {0, 1, bottom, top, 1};
    double lo, hi;
    if (p->fixed_y) {
        ax_fit(&ay, p->ylo, p->yhi, 5, 0);
    } else {
        data_range(p, 0, &lo, &hi);
        if (p->kind == PANEL_BARS && lo <= hi) {
            lo = fmin(lo, 0);
            hi = fmax(hi, 0);
        }
        ax_fit(&ay, lo, hi, 5, 1);
    }
    ay.pix0 = bottom;
    ay.pix1 = top;
    y_ticks(f, &ay, left, right);

    char buf[64];
    if (p->kind == PANEL_LINES) {
        data_range(p, 1, &lo, &hi);
        ax_fit(&ax, lo, hi, 6, 0);
        ax.pix0 = left;
        ax.pix1 = right;
        for (double v = ceil(ax.lo / ax.step - 1e-9) * ax.step; v <= ax.hi + ax.step * 1e-9;
             v += ax.step) {
            double x = ax_map(&ax, v);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                    x, top, x, bottom);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                    x, bottom, x, bottom + 4);
            tick_label(v, ax.step, buf, sizeof buf);
            text_at(f, x, bottom + 16, "text-anchor=\"middle\" font-size=\"11\"", buf);
        }
        /* the data, clipped to the plot area */
        fprintf(f, "<clipPath id=\"clip%zu\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                   "height=\"%.1f\"/></clipPath>\n<g clip-path=\"url(#clip%zu)\">\n",
                idx, left, top, right - left, bottom - top, idx);
        for (size_t k = 0; k < p->ns; k++) {
            const series *s = &p->s[k];
            for (size_t i = 0; i < s->n;) {
                while (i < s->n && !(isfinite(s->x[i]) && isfinite(s->y[i])))
                    i++;
                size_t a = i;
                while (i < s->n && isfinite(s->x[i]) && isfinite(s->y[i]))
                    i++;
                if (i - a == 1) /* a lone point: a dot */
                    fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2\" fill=\"%s\"/>\n",
                            ax_map(&ax, s->x[a]), ax_map(&ay, s->y[a]), palette[k % N_COLOURS]);
                else if (i > a)
                    polyline(f, s, a, i, &ax, &ay, palette[k % N_COLOURS]);
            }
        }
        fputs("</g>\n", f);
        if (p->xlabel)
            text_at(f, (left + right) / 2, bottom + 36, "text-anchor=\"middle\" font-size=\"12\"",
                    p->xlabel);
    } else {
        double base = ax_map(&ay, fmin(fmax(0.0, ay.lo), ay.hi));
        double bw = p->ns ? group_w * 0.8 / (double)p->ns : 0;
        for (size_t i = 0; i < p->ncat; i++) {
            double gx = left + group_w * (double)i + group_w * 0.1;
            for (size_t k = 0; k < p->ns; k++) {
                double v = p->s[k].y[i], x = gx + bw * (double)k;
                if (!isfinite(v)) {
                    text_at(f, x + bw / 2, base - 3,
                            "text-anchor=\"middle\" font-size=\"9\" fill=\"#888\"", "n/a");
                    continue;
                }
                double y = ax_map(&ay, fmin(fmax(v, ay.lo), ay.hi));
                fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                           "fill=\"%s\"><title>",
                        x + 0.5, fmin(y, base), fmax(bw - 1, 0.5), fabs(base - y),
                        palette[k % N_COLOURS]);
                xml_text(f, p->s[k].name);
                fprintf(f, " / ");
                xml_text(f, p->cat[i]);
                fprintf(f, ": %g</title></rect>\n", v);
                if (p->bar_format && bw >= 14) {
                    snprintf(buf, sizeof buf, p->bar_format, v);
                    text_at(f, x + bw / 2, v >= 0 ? y - 3 : y + 11,
                            "text-anchor=\"middle\" font-size=\"10\"", buf);
                }
            }
            double cx = left + group_w * ((double)i + 0.5);
            if (slant) {
                fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-35)\" "
                           "text-anchor=\"end\" font-size=\"11\">",
                        cx, bottom + 14);
                xml_text(f, p->cat[i]);
                fputs("</text>\n", f);
            } else {
                text_at(f, cx, bottom + 16, "text-anchor=\"middle\" font-size=\"11\"", p->cat[i]);
            }
        }
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                left, base, right, base);
    }
    /* frame, y label, legend, note */
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#444\"/>\n",
            left, top, right - left, bottom - top);
    if (p->ylabel) {
        fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" "
                   "font-size=\"12\">",
                ox + 16, (top + bottom) / 2);
        xml_text(f, p->ylabel);
        fputs("</text>\n", f);
    }
    legend(f, p, right + 12, top + 12);
    if (p->note)
        text_at(f, (left + right) / 2, (top + bottom) / 2,
                "text-anchor=\"middle\" font-size=\"13\" fill=\"#666\"", p->note);
    fputs("</g>\n", f);
}

int plot_write(const plot_doc *d, FILE *f)
{
    size_t cols = (size_t)d->columns, rows = (d->np + cols - 1) / cols;
    if (rows == 0)
        rows = 1;
    double head = d->title ? 40 : 0;
    double W = d->pw * (double)(d->np < cols ? (d->np ? d->np : 1) : cols);
    double H = head + d->ph * (double)rows;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" "
               "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, "
               "sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    if (d->title)
        text_at(f, W / 2, 26, "text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\"",
                d->title);
    for (size_t i = 0; i < d->np; i++)
        write_panel(f, d->p[i], i, d->pw * (double)(i % cols), head + d->ph * (double)(i / cols),
                    d->pw, d->ph);
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
