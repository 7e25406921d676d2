#include "edit/sheet.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* 3x5 glyphs, 5 rows of 3 bits (MSB = left column). */
static const struct {
    char c;
    unsigned char rows[5];
} font[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 2, 2}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}},
    {'C', {3, 4, 4, 4, 3}}, {'D', {6, 5, 5, 5, 6}}, {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}},
    {'G', {3, 4, 5, 5, 3}}, {'H', {5, 5, 7, 5, 5}}, {'I', {7, 2, 2, 2, 7}}, {'J', {1, 1, 1, 5, 2}},
    {'K', {5, 5, 6, 5, 5}}, {'L', {4, 4, 4, 4, 7}}, {'M', {5, 7, 7, 5, 5}}, {'N', {6, 5, 5, 5, 5}},
    {'O', {2, 5, 5, 5, 2}}, {'P', {6, 5, 6, 4, 4}}, {'Q', {2, 5, 5, 6, 3}}, {'R', {6, 5, 6, 5, 5}},
    {'S', {3, 4, 2, 1, 6}}, {'T', {7, 2, 2, 2, 2}}, {'U', {5, 5, 5, 5, 7}}, {'V', {5, 5, 5, 5, 2}},
    {'W', {5, 5, 7, 7, 5}}, {'X', {5, 5, 2, 5, 5}}, {'Y', {5, 5, 2, 2, 2}}, {'Z', {7, 1, 2, 4, 7}},
    {'-', {0, 0, 7, 0, 0}}, {'.', {0, 0, 0, 0, 2}}, {'=', {0, 7, 0, 7, 0}}, {':', {0, 2, 0, 2, 0}},
    {'+', {0, 2, 7, 2, 0}}, {'(', {1, 2, 2, 2, 1}}, {')', {4, 2, 2, 2, 4}}, {'/', {1, 1, 2, 4, 4}},
    {'>', {4, 2, 1, 2, 4}}, {',', {0, 0, 0, 2, 4}}, {'\'', {2, 2, 0, 0, 0}},
};

static void put(image *img, int x, int y, const float rgb[3]) {
    if (x < 0 || y < 0 || x >= img->width || y >= img->height) return;
    float *p = img->data + ((size_t)y * img->width + x) * 3;
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
}

static void fill_rect(image *img, int x0, int y0, int w, int h, const float rgb[3]) {
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) put(img, x, y, rgb);
}

void sheet_draw_text(image *img, int x, int y, int scale, const float rgb[3], const char *text) {
    for (; *text; text++, x += 4 * scale) {
        char c = (char)toupper((unsigned char)*text);
        for (size_t g = 0; g < sizeof font / sizeof font[0]; g++) {
            if (font[g].c != c) continue;
            for (int r = 0; r < 5; r++)
                for (int col = 0; col < 3; col++)
                    if (font[g].rows[r] & (4 >> col)) fill_rect(img, x + col * scale, y + r * scale, scale, scale, rgb);
            break;
        }
    }
}

static void line(image *img, int x0, int y0, int x1, int y1, const float rgb[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        put(img, x0, y0, rgb);
        put(img, x0, y0 + 1, rgb); /* 2 px thick */
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

int sheet_render(image *out, const image *candidates, int T, const float *norm_edit,
                 const float *norm_background, const float *total, int best,
                 const unsigned char *evaluated, const char *title, oir_error *err) {
    return sheet_render_guarded(out, candidates, T, norm_edit, norm_background, total, best, evaluated, NULL, title,
                                err);
}

int sheet_render_guarded(image *out, const image *candidates, int T, const float *norm_edit,
                         const float *norm_background, const float *total, int best,
                         const unsigned char *evaluated, const unsigned char *eligible, const char *title,
                         oir_error *err) {
    static const float white[3] = {1, 1, 1}, black[3] = {0, 0, 0}, red[3] = {0.85f, 0.1f, 0.1f},
                       blue[3] = {0.15f, 0.35f, 0.85f}, green[3] = {0.1f, 0.6f, 0.2f},
                       gray[3] = {0.8f, 0.8f, 0.8f};
    memset(out, 0, sizeof *out);
    if (T < 1 || best < 0 || best >= T)
        return oir_fail(err, OIR_E_ARG, "sheet: %d candidates, chosen index %d", T, best);
    /* thumbnails keep the candidates' aspect: the longer side `thumb` */
    int cw = candidates[0].width, ch = candidates[0].height, src = cw > ch ? cw : ch;
    int thumb = src < 96 ? 96 : (src > 128 ? 128 : src);
    int tw = cw >= ch ? thumb : (int)((2LL * thumb * cw + ch) / (2LL * ch));
    int th = ch >= cw ? thumb : (int)((2LL * thumb * ch + cw) / (2LL * cw));
    if (tw < 1) tw = 1;
    if (th < 1) th = 1;
    int cols = T < 10 ? T : 10, rows = (T + cols - 1) / cols;
    int pad = 6, label = 16, head = 22;
    int cell_w = tw + pad, cell_h = th + label;
    int width = pad + cols * cell_w, plot_h = 150;
    if (width < 420) width = 420;
    int height = head + rows * cell_h + plot_h + (evaluated ? 58 : 40) + (eligible ? 18 : 0);
    int rc = image_alloc(out, width, height, 3, err);
    if (rc) return rc;
    fill_rect(out, 0, 0, width, height, white);
    sheet_draw_text(out, pad, 6, 2, black, title ? title : "");
    for (int k = 0; k < T; k++) {
        image small = {0};
        const image *c = &candidates[k];
        if (c->width != tw || c->height != th) {
            if ((rc = image_resize(&small, c, tw, th, err))) goto fail;
            c = &small;
        }
        int x0 = pad + (k % cols) * cell_w, y0 = head + (k / cols) * cell_h;
        int how = evaluated ? evaluated[k] : 1;
        if (k == best) fill_rect(out, x0 - 3, y0 - 3, tw + 6, th + 6, red);
        if (how) {
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++) put(out, x0 + x, y0 + y, c->data + ((size_t)y * tw + x) * 3);
        } else { /* not denoised by this search */
            fill_rect(out, x0, y0, tw, th, gray);
            sheet_draw_text(out, x0 + tw / 2 - 16, y0 + th / 2 - 5, 2, white, "SKIP");
        }
        if (how == 2) { /* scored on the short schedule */
            fill_rect(out, x0, y0, 14, 14, blue);
            sheet_draw_text(out, x0 + 4, y0 + 2, 2, white, "S");
        }
        if (how == SHEET_PICKED) { /* the step was given, not searched */
            fill_rect(out, x0, y0, 14, 14, red);
            sheet_draw_text(out, x0 + 4, y0 + 2, 2, white, "P");
        }
        if (eligible && how && how != SHEET_PICKED && !eligible[k]) { /* the no-edit guard ruled it out */
            fill_rect(out, x0 + tw - 14, y0, 14, 14, black);
            sheet_draw_text(out, x0 + tw - 10, y0 + 2, 2, white, "X");
        }
        image_free(&small);
        char num[16];
        snprintf(num, sizeof num, "%d", k + 1);
        sheet_draw_text(out, x0 + tw / 2 - 4 * (int)strlen(num), y0 + th + 4, 2,
                        k == best ? red : (how ? black : gray), num);
    }
    /* plot: x = k, y in [0, 2] for the sum and [0, 1] for each score */
    int px0 = pad + 24, py0 = head + rows * cell_h + 10, pw = width - px0 - pad, ph = plot_h - 20;
    fill_rect(out, px0, py0, pw, ph, gray);
    fill_rect(out, px0 + 1, py0 + 1, pw - 2, ph - 2, white);
    sheet_draw_text(out, pad, py0, 1, black, "2");
    sheet_draw_text(out, pad, py0 + ph / 2 - 3, 1, black, "1");
    sheet_draw_text(out, pad, py0 + ph - 6, 1, black, "0");
    const float *series[3] = {norm_edit, norm_background, total};
    const float *colors[3] = {blue, green, black};
    /* each curve joins the candidates that were scored; a dot marks each one */
    for (int s = 0; s < 3; s++) {
        if (!series[s]) continue;
        int prev_x = -1, prev_y = 0;
        for (int k = 0; k < T; k++) {
            if ((evaluated && (!evaluated[k] || evaluated[k] == SHEET_PICKED)) || !isfinite(series[s][k])) continue;
            int x = px0 + (int)((k + 0.5) * pw / T);
            int y = py0 + ph - 2 - (int)(series[s][k] / 2 * (ph - 4));
            if (prev_x >= 0) line(out, prev_x, prev_y, x, y, colors[s]);
            fill_rect(out, x - 1, y - 1, 3, 4, colors[s]);
            prev_x = x, prev_y = y;
        }
    }
    int xb = px0 + (int)((best + 0.5) * pw / T);
    for (int y = py0; y < py0 + ph; y += 2) put(out, xb, y, red);
    int ly = py0 + ph + 8;
    char chosen[48];
    int picked = evaluated && evaluated[best] == SHEET_PICKED;
    snprintf(chosen, sizeof chosen, "%s STEP %d", picked ? "PICKED" : "CHOSEN", best + 1);
    fill_rect(out, px0, ly, 10, 10, blue);
    sheet_draw_text(out, px0 + 14, ly, 2, black, "EDIT");
    fill_rect(out, px0 + 70, ly, 10, 10, green);
    sheet_draw_text(out, px0 + 84, ly, 2, black, "BACKGROUND");
    fill_rect(out, px0 + 180, ly, 10, 10, black);
    sheet_draw_text(out, px0 + 194, ly, 2, black, "SUM");
    sheet_draw_text(out, px0 + 240, ly, 2, red, chosen);
    if (evaluated) {
        int skipped = 0, short_sched = 0;
        for (int k = 0; k < T; k++)
            skipped += !evaluated[k] || evaluated[k] == SHEET_PICKED, short_sched += evaluated[k] == 2;
        char note[96];
        if (picked)
            snprintf(note, sizeof note, "PICKED BY THE USER, NOT SEARCHED: %d OF %d SKIPPED", T - 1, T);
        else
            snprintf(note, sizeof note, "SCORED %d OF %d%s", T - skipped, T,
                     short_sched ? ", S = ON THE SHORT SCHEDULE" : "");
        sheet_draw_text(out, px0, ly + 16, 2, black, note);
    }
    if (eligible) {
        int out_n = 0;
        for (int k = 0; k < T; k++) {
            int how = evaluated ? evaluated[k] : 1;
            out_n += how && how != SHEET_PICKED && !eligible[k];
        }
        char note[96];
        snprintf(note, sizeof note, "X = NO-EDIT GUARD: %d NOT ELIGIBLE%s", out_n,
                 !picked && !eligible[best] ? ", NONE WAS: PLAIN CHOICE" : "");
        sheet_draw_text(out, px0, ly + (evaluated ? 34 : 16), 2, black, note);
    }
    return OIR_OK;
fail:
    image_free(out);
    return rc;
}
