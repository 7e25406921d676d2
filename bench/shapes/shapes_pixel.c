/* The pixel judge of shapes_eval.h: an edited image read against the
 * renderer's ground truth (colours, backgrounds, positions and shape
 * outlines of tools/shapes/shapes.py), with no network. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shapes_eval.h"

/* ---- the renderer's numbers (tools/shapes/shapes.py) ----------------------- */

/* COLOURS */
static const struct {
    const char *name;
    float rgb[3];
} colours[] = {{"red", {220, 30, 30}},     {"green", {30, 170, 50}},    {"blue", {30, 60, 220}},
               {"yellow", {245, 215, 30}}, {"purple", {140, 40, 180}}, {"orange", {250, 130, 20}},
               {"pink", {250, 120, 190}}};

/* BACKGROUNDS: (top, bottom) of a vertical gradient over the 64 rows */
static const struct {
    const char *name;
    float top[3], bottom[3];
} backgrounds[] = {{"white", {250, 250, 250}, {235, 235, 235}}, {"gray", {150, 150, 150}, {120, 120, 120}},
                   {"sky", {110, 180, 245}, {200, 230, 255}},   {"grass", {120, 200, 90}, {60, 140, 40}},
                   {"sand", {240, 220, 170}, {215, 190, 130}},  {"night", {10, 15, 50}, {40, 40, 90}}};

/* POSITIONS: centres in the 64-pixel scene (SE_POS_* order) */
static const struct {
    const char *name;
    double x, y;
} positions[SE_N_POSITIONS] = {{"left", 13, 32}, {"top", 32, 13}, {"center", 32, 32}, {"bottom", 32, 51}, {"right", 51, 32}};

#define SCENE 64.0      /* shapes.py SIZE */
#define OBJ_RADIUS 8.0  /* shapes.py OBJ_RADIUS */
#define SLOT_HALF 10.0  /* half a slot: centres are 19 px apart, objects at most 18 px wide */
#define SS 4            /* shapes.py SS: 4x4 samples a pixel */
#define MAX_VERTS 64

static const char *const shape_names[] = {"circle", "square", "triangle", "star", "heart", "cross", "diamond", "hexagon"};

int se_position(const char *name) {
    for (int i = 0; name && i < SE_N_POSITIONS; i++)
        if (!strcmp(positions[i].name, name)) return i;
    return -1;
}

/* shapes.py _polygon at angle 0, centred at the origin: n vertices into v
 * (x, y pairs); 0 for the circle (a disc of radius 0.95 r). */
static int outline(const char *shape, double r, double *v) {
    int n = 0;
#define PT(px, py) (v[2 * n] = (px), v[2 * n + 1] = (py), n++)
    if (!strcmp(shape, "square")) {
        double s = r * 0.86;
        PT(-s, -s), PT(s, -s), PT(s, s), PT(-s, s);
    } else if (!strcmp(shape, "triangle")) {
        PT(0, -r), PT(r * 0.98, r * 0.75), PT(-r * 0.98, r * 0.75);
    } else if (!strcmp(shape, "diamond")) {
        PT(0, -r), PT(r * 0.75, 0), PT(0, r), PT(-r * 0.75, 0);
    } else if (!strcmp(shape, "hexagon")) {
        for (int i = 0; i < 6; i++) PT(r * cos(M_PI / 3 * i), r * sin(M_PI / 3 * i));
    } else if (!strcmp(shape, "star")) {
        for (int i = 0; i < 10; i++) {
            double rr = i % 2 == 0 ? r : r * 0.45, a = (-90.0 + 36.0 * i) * M_PI / 180;
            PT(rr * cos(a), rr * sin(a));
        }
    } else if (!strcmp(shape, "cross")) {
        double w = r * 0.36;
        PT(-w, -r), PT(w, -r), PT(w, -w), PT(r, -w), PT(r, w), PT(w, w), PT(w, r), PT(-w, r), PT(-w, w), PT(-r, w),
            PT(-r, -w), PT(-w, -w);
    } else if (!strcmp(shape, "heart")) {
        for (int i = 0; i < 64; i++) {
            double t = 2 * M_PI * i / 64, x = 16 * pow(sin(t), 3),
                   y = -(13 * cos(t) - 5 * cos(2 * t) - 2 * cos(3 * t) - cos(4 * t));
            PT(x * r / 16.5, (y + 2.5) * r / 16.5);
        }
    }
#undef PT
    return n;
}

/* Even-odd rule. */
static int inside_polygon(const double *v, int n, double x, double y) {
    int in = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        double xi = v[2 * i], yi = v[2 * i + 1], xj = v[2 * j], yj = v[2 * j + 1];
        if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

/* The template: PIL draws on a 4x grid where a point's coordinate is its
 * sample's; the box-filtered coverage is kept where >= 0.5. Sample i of an
 * output pixel x lies at (x + (i + 0.5) / SS) / f - 1 / (2 SS) in the
 * scene's 64-pixel coordinates (f = size / 64). */
static void render_template(unsigned char *out, int size, int pos, const char *shape) {
    double f = size / SCENE, v[2 * MAX_VERTS];
    int n = outline(shape, OBJ_RADIUS, v), circle = !strcmp(shape, "circle");
    double cx = positions[pos].x, cy = positions[pos].y, rc = OBJ_RADIUS * 0.95;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            int hits = 0;
            for (int sy = 0; sy < SS; sy++)
                for (int sx = 0; sx < SS; sx++) {
                    double u = (x + (sx + 0.5) / SS) / f - 0.5 / SS - cx, w = (y + (sy + 0.5) / SS) / f - 0.5 / SS - cy;
                    hits += circle ? u * u + w * w <= rc * rc : inside_polygon(v, n, u, w);
                }
            out[(size_t)y * size + x] = 2 * hits >= SS * SS;
        }
}

static int word_at(const char *w, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], w)) return (int)i;
    return -1;
}

int se_px_init(se_px_judge *j, const se_vocab *v, int size, oir_error *err) {
    memset(j, 0, sizeof *j);
    if (size < 1) return oir_fail(err, OIR_E_ARG, "pixel judge: image side %d", size);
    j->size = size, j->n_colours = v->n_colours, j->n_shapes = v->n_shapes, j->n_backgrounds = v->n_backgrounds;
    for (int c = 0; c < v->n_colours; c++) {
        size_t k = 0;
        while (k < sizeof colours / sizeof colours[0] && strcmp(colours[k].name, v->colours[c])) k++;
        if (k == sizeof colours / sizeof colours[0])
            return oir_fail(err, OIR_E_FORMAT, "pixel judge: colour '%s' is not the renderer's (tools/shapes/shapes.py)",
                            v->colours[c]);
        memcpy(j->colour_rgb[c], colours[k].rgb, sizeof j->colour_rgb[c]);
    }
    for (int b = 0; b < v->n_backgrounds; b++) {
        size_t k = 0;
        while (k < sizeof backgrounds / sizeof backgrounds[0] && strcmp(backgrounds[k].name, v->backgrounds[b])) k++;
        if (k == sizeof backgrounds / sizeof backgrounds[0])
            return oir_fail(err, OIR_E_FORMAT, "pixel judge: background '%s' is not the renderer's", v->backgrounds[b]);
        memcpy(j->bg_top[b], backgrounds[k].top, sizeof j->bg_top[b]);
        memcpy(j->bg_bottom[b], backgrounds[k].bottom, sizeof j->bg_bottom[b]);
    }
    for (int s = 0; s < v->n_shapes; s++)
        if (word_at(v->shapes[s], shape_names, sizeof shape_names / sizeof shape_names[0]) < 0)
            return oir_fail(err, OIR_E_FORMAT, "pixel judge: shape '%s' is not the renderer's", v->shapes[s]);
    size_t hw = (size_t)size * size;
    j->templates = malloc((size_t)SE_N_POSITIONS * v->n_shapes * hw);
    if (!j->templates) return oir_fail(err, OIR_E_NOMEM, "pixel judge: out of memory");
    for (int p = 0; p < SE_N_POSITIONS; p++)
        for (int s = 0; s < v->n_shapes; s++)
            render_template(j->templates + ((size_t)p * v->n_shapes + s) * hw, size, p, v->shapes[s]);
    return OIR_OK;
}

void se_px_free(se_px_judge *j) {
    if (!j) return;
    free(j->templates);
    memset(j, 0, sizeof *j);
}

const unsigned char *se_px_template(const se_px_judge *j, int pos, int shape) {
    return j->templates + ((size_t)pos * j->n_shapes + shape) * j->size * j->size;
}

/* Background b's colour at image row y (the gradient over the scene's 64 rows). */
static void bg_at(const se_px_judge *j, int b, int y, float rgb[3]) {
    double t = ((y + 0.5) * SCENE / j->size - 0.5) / (SCENE - 1);
    t = t < 0 ? 0 : (t > 1 ? 1 : t);
    for (int c = 0; c < 3; c++) rgb[c] = (float)(j->bg_top[b][c] * (1 - t) + j->bg_bottom[b][c] * t);
}

static float dist2(const unsigned char *px, const float *rgb) {
    float d = 0;
    for (int c = 0; c < 3; c++) d += ((float)px[c] - rgb[c]) * ((float)px[c] - rgb[c]);
    return d;
}

void se_px_read_object(const se_px_judge *j, const unsigned char *E, int pos, int region_shape, int bg,
                       se_px_object *out) {
    int S = j->size;
    size_t hw = (size_t)S * S;
    memset(out, 0, sizeof *out);
    out->colour = out->shape = -1;
    if (pos < 0 || pos >= SE_N_POSITIONS || region_shape < 0 || region_shape >= j->n_shapes || bg < 0 ||
        bg >= j->n_backgrounds)
        return;
    /* colour: the per-channel median inside the expected outline */
    const unsigned char *region = se_px_template(j, pos, region_shape);
    long hist[3][256] = {{0}}, count = 0;
    for (size_t i = 0; i < hw; i++)
        if (region[i]) {
            count++;
            for (int c = 0; c < 3; c++) hist[c][E[i * 3 + c]]++;
        }
    if (!count) return;
    for (int c = 0; c < 3; c++) {
        long seen = 0;
        int v = 0;
        while (v < 255 && (seen += hist[c][v]) * 2 < count) v++;
        out->median[c] = (float)v;
    }
    int cy = (int)(positions[pos].y * S / SCENE);
    float bgc[3];
    bg_at(j, bg, cy < S ? cy : S - 1, bgc);
    unsigned char med[3] = {(unsigned char)out->median[0], (unsigned char)out->median[1], (unsigned char)out->median[2]};
    float best = dist2(med, bgc);
    for (int c = 0; c < j->n_colours; c++) {
        float d = dist2(med, j->colour_rgb[c]);
        if (d < best) best = d, out->colour = c;
    }
    if (out->colour < 0) return;
    /* shape: the pixels of the slot closer to that colour than to the background, against each outline */
    const float *col = j->colour_rgb[out->colour];
    double f = S / SCENE, px = positions[pos].x, py = positions[pos].y;
    long inter[SE_MAX_WORDS] = {0}, area[SE_MAX_WORDS] = {0}, fg_n = 0;
    for (int y = 0; y < S; y++) {
        float row_bg[3];
        bg_at(j, bg, y, row_bg);
        double v = (y + 0.5) / f - 0.5;
        for (int x = 0; x < S; x++) {
            double u = (x + 0.5) / f - 0.5;
            size_t i = (size_t)y * S + x;
            int fg = fabs(u - px) <= SLOT_HALF && fabs(v - py) <= SLOT_HALF && dist2(E + i * 3, col) < dist2(E + i * 3, row_bg);
            fg_n += fg;
            for (int s = 0; s < j->n_shapes; s++) {
                int t = se_px_template(j, pos, s)[i];
                area[s] += t;
                inter[s] += t && fg;
            }
        }
    }
    for (int s = 0; s < j->n_shapes; s++) {
        long uni = area[s] + fg_n - inter[s];
        double iou = uni ? (double)inter[s] / uni : 0;
        if (iou > out->iou) out->iou = iou, out->shape = s;
    }
    if (out->iou < SE_PX_MIN_IOU) out->shape = -1;
}

int se_px_read_background(const se_px_judge *j, const unsigned char *E, const unsigned char *region) {
    int S = j->size, best = -1;
    double best_d = INFINITY;
    for (int b = 0; b < j->n_backgrounds; b++) {
        double sum = 0;
        long n = 0;
        for (int y = 0; y < S; y++) {
            float rgb[3];
            bg_at(j, b, y, rgb);
            for (int x = 0; x < S; x++) {
                size_t i = (size_t)y * S + x;
                if (!region[i]) continue;
                sum += dist2(E + i * 3, rgb);
                n++;
            }
        }
        if (n && sum / n < best_d) best_d = sum / n, best = b;
    }
    return best;
}
