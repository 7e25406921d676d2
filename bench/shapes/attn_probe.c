/* attn_probe: how well the cross-attention map of a pair's source phrase
 * (src/edit/mask_attention.h) finds the object, on the shapes world's edit
 * cases (bench/scenes/edit), for a few layer selections and noise ranges.
 * The numbers of docs/MASKS.md "Cross-attention".
 *
 * For each case (every --stride'th, --n of them) and each object pair: the
 * image is encoded, the map of the pair's `from` phrase computed on the
 * latent grid, upsampled bilinearly to the image, thresholded at 0.3, 0.4,
 * 0.5 (of the normalised map) and compared with the ground-truth mask of
 * the pair's object (IoU), and with the mask of another object of the same
 * scene (a map that finds objects but not the named one). Per layer (the
 * every-layer configuration): each layer's own map, averaged over the
 * timesteps, normalised the same way. By scene (the defaults): the only
 * object, the first-named object, a later one. --words first|last: the
 * phrase's first or last word alone (where it occurs once).
 *
 * Prints markdown tables. A measurement tool, not a test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "diffusion/sampler.h"
#include "edit/context.h"
#include "edit/mask_attention.h"
#include "edit/prompts.h"
#include "io/image.h"
#include "models/attn_capture.h"
#include "oir.h"
#include "shapes_eval.h"

#define N_THR 5
#define MAX_CFG 32
#define MAX_LAYERS 32
static const float THR[N_THR] = {0.3f, 0.4f, 0.5f, 0.6f, 0.7f};

typedef struct {
    mask_attention_params p;
    char label[64];
    se_stat iou[N_THR], other[N_THR], contrast;
    int hits[N_THR]; /* IoU >= 0.6 */
    se_stat group_iou[3]; /* at 0.6: one-object scene, first-named object, a later one */
    int group_hits[3];
    long rows;
} config;

typedef struct {
    int n;
    char name[MAX_LAYERS][48];
    int gh[MAX_LAYERS], gw[MAX_LAYERS];
    float *sum[MAX_LAYERS]; /* (gh, gw) sum over the rows of one map */
    int rows[MAX_LAYERS];
    se_stat iou[MAX_LAYERS];
    int hits[MAX_LAYERS];
} layer_stats;

static void on_layer(void *user, const char *name, int row, int gh, int gw, const float *map) {
    layer_stats *ls = user;
    int i = 0;
    while (i < ls->n && strcmp(ls->name[i], name))
        i++;
    if (i == ls->n) {
        if (ls->n == MAX_LAYERS) return;
        snprintf(ls->name[i], sizeof ls->name[i], "%s", name);
        ls->gh[i] = gh, ls->gw[i] = gw;
        ls->sum[i] = calloc((size_t)gh * gw, sizeof(float));
        ls->n++;
    }
    for (int j = 0; j < gh * gw; j++)
        ls->sum[i][j] += map[j];
    ls->rows[i]++;
}

/* map (h, w) in [0, 1] -> (size, size) bilinear, min-max again (the
 * upsampled map keeps its range), IoU of map >= thr with mask. */
static double iou_at(const float *up, size_t n, float thr, const unsigned char *mask) {
    long inter = 0, uni = 0;
    for (size_t i = 0; i < n; i++) {
        int a = up[i] >= thr, b = mask[i] != 0;
        inter += a && b;
        uni += a || b;
    }
    return uni ? (double)inter / uni : 0.0;
}

static void normalise(float *m, size_t n) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        lo = m[i] < lo ? m[i] : lo, hi = m[i] > hi ? m[i] : hi;
    for (size_t i = 0; i < n; i++)
        m[i] = hi > lo ? (m[i] - lo) / (hi - lo) : 0.0f;
}

int main(int argc, char **argv) {
    const char *model = "models/tiny-shapes", *cases_dir = "bench/scenes/edit";
    int n = 20, stride = 10, threads = 1;
    const char *words = "all";
    const cli_opt opts[] = {
        {"--model", CLI_STR, &model, 0, 0},        {"--cases", CLI_STR, &cases_dir, 0, 0},
        {"--n", CLI_INT, &n, 1, 100000},           {"--stride", CLI_INT, &stride, 1, 100000},
        {"--threads", CLI_INT, &threads, 1, 1024}, {"--words", CLI_STR, &words, 0, 0},
    };
    oir_error err = {0};
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf(
            "usage: attn_probe [--model DIR] [--cases DIR] [--n 20] [--stride 10] [--threads 1]\n"
            "                  [--words all|first|last]\n"
            "The cross-attention mask signal against the objects' masks (docs/MASKS.md).\n");
        return 0;
    }
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], NULL, 0, NULL, &err);
    if (rc) {
        fprintf(stderr, "attn_probe: %s\n", err.message);
        return 2;
    }
    if (strcmp(words, "all") && strcmp(words, "first") && strcmp(words, "last")) {
        fprintf(stderr, "attn_probe: --words is all, first or last (got '%s')\n", words);
        return 2;
    }
    /* the configurations: (timesteps, strength range, min_grid_divisor) */
    static config cfg[MAX_CFG];
    int n_cfg = 0;
    /* row 0: mask_attention_defaults (4 x 0.1..0.3, the side/2 layers); row 1: every layer
     * (its per-layer breakdown is printed); then one change at a time */
    struct {
        int nt;
        float lo, hi;
        int div_min, div_max;
    } grid[] = {
        {4, 0.1f, 0.3f, 2, 2},   {4, 0.1f, 0.3f, 1, 0},  {4, 0.1f, 0.3f, 4, 0},
        {4, 0.02f, 0.2f, 2, 2},  {4, 0.3f, 0.5f, 2, 2},  {4, 0.3f, 0.7f, 2, 2},
        {4, 0.5f, 0.8f, 2, 2},   {4, 0.7f, 0.95f, 2, 2}, {4, 0.3f, 0.7f, 1, 0},
        {1, 0.2f, 0.2f, 2, 2},   {2, 0.1f, 0.3f, 2, 2},  {8, 0.1f, 0.3f, 2, 2},
    };
    for (size_t i = 0; i < sizeof grid / sizeof *grid; i++, n_cfg++) {
        mask_attention_defaults(&cfg[n_cfg].p);
        cfg[n_cfg].p.n_timesteps = grid[i].nt;
        cfg[n_cfg].p.strength_lo = grid[i].lo;
        cfg[n_cfg].p.strength_hi = grid[i].hi;
        cfg[n_cfg].p.min_grid_divisor = grid[i].div_min;
        cfg[n_cfg].p.max_grid_divisor = grid[i].div_max;
        char layers[32];
        if (grid[i].div_max)
            snprintf(layers, sizeof layers, "side/%d..side/%d", grid[i].div_max, grid[i].div_min);
        else
            snprintf(layers, sizeof layers, "<= side/%d", grid[i].div_min);
        snprintf(cfg[n_cfg].label, sizeof cfg[n_cfg].label, "%d x %.2g..%.2g | %s", grid[i].nt,
                 grid[i].lo, grid[i].hi, layers);
    }
    se_case_set set = {0};
    oir_context *ctx = NULL;
    sampler s;
    int have_s = 0;
    layer_stats ls = {0};
    oir_context_params cp = oir_context_default_params();
    cp.model_path = model;
    cp.threads = threads;
    if ((rc = se_case_set_load(&set, cases_dir, &err)) || (rc = oir_context_load(&ctx, &cp, &err)))
        goto fail;
    int size = oir_context_image_size(ctx);
    if ((rc = sampler_init(&s, oir_context_sd_model(ctx), size, 1, 0, &err))) goto fail;
    have_s = 1;
    size_t hw = (size_t)size * size, lhw = (size_t)s.lat_h * s.lat_w;
    unsigned char *rgb = malloc(hw * 3), *obj = malloc(hw), *other = malloc(hw);
    float *pix = malloc(3 * hw * sizeof(float)), *lat = malloc(s.lat_n * sizeof(float));
    float *map = malloc(lhw * sizeof(float)), *up = malloc(hw * sizeof(float));
    int n_pairs = 0, n_cases = 0;
    se_stat area = {0};
    for (int ci = 0; ci < set.n && n_cases < n; ci += stride, n_cases++) {
        const se_case *c = &set.cases[ci];
        if ((rc = se_load_rgb(c->image, size, rgb, &err))) goto fail;
        for (size_t i = 0; i < 3 * hw; i++)
            pix[(i % 3) * hw + i / 3] = rgb[i] / 127.5f - 1.0f;
        if ((rc = sampler_encode_image(&s, pix, lat, &err))) goto fail;
        for (int q = 0; q < c->n_pairs; q++) {
            const se_pair *pr = &c->pairs[q];
            if (pr->is_background) continue;
            if ((rc = se_load_mask(c->objects[pr->object].mask, size, obj, &err))) goto fail;
            int oo = (pr->object + 1) % c->n_objects; /* another object of the scene */
            if ((rc = se_load_mask(c->objects[oo].mask, size, other, &err))) goto fail;
            /* --words first|last: the phrase's first or last word alone, where it occurs once */
            char phrase[64];
            snprintf(phrase, sizeof phrase, "%s", pr->from);
            char *sp = strrchr(phrase, ' ');
            if (sp && !strcmp(words, "last") && prompt_count_phrase(c->source, sp + 1) == 1)
                memmove(phrase, sp + 1, strlen(sp + 1) + 1);
            else if (sp && !strcmp(words, "first")) {
                *strchr(phrase, ' ') = 0;
                if (prompt_count_phrase(c->source, phrase) != 1)
                    snprintf(phrase, sizeof phrase, "%s", pr->from);
            }
            n_pairs++;
            long a = 0;
            for (size_t i = 0; i < hw; i++)
                a += obj[i] != 0;
            se_stat_add(&area, (double)a / hw);
            for (int k = 0; k < n_cfg; k++) {
                config *g = &cfg[k];
                long rows0 = s.unet_rows;
                rc = mask_attention_map_layers(&s, lat, c->source, phrase, &g->p,
                                               k == 1 ? on_layer : NULL, &ls, map, &err);
                if (rc) goto fail;
                g->rows += s.unet_rows - rows0;
                memset(up, 0, hw * sizeof(float));
                attn_map_bilinear_add(up, size, size, map, s.lat_h, s.lat_w);
                normalise(up, hw);
                double in = 0, out = 0;
                long nin = 0;
                for (size_t i = 0; i < hw; i++)
                    obj[i] ? (in += up[i], nin++) : (out += up[i]);
                se_stat_add(&g->contrast, in / (nin ? nin : 1) - out / (hw - nin ? hw - nin : 1));
                int grp = c->n_objects == 1 ? 0 : pr->object == 0 ? 1 : 2;
                for (int t = 0; t < N_THR; t++) {
                    double v = iou_at(up, hw, THR[t], obj);
                    if (THR[t] == 0.6f) se_stat_add(&g->group_iou[grp], v), g->group_hits[grp] += v >= 0.6;
                    se_stat_add(&g->iou[t], v);
                    g->hits[t] += v >= 0.6;
                    se_stat_add(&g->other[t], iou_at(up, hw, THR[t], other));
                }
            }
            /* per layer: the mean over the rows of its own map */
            for (int l = 0; l < ls.n; l++) {
                if (!ls.rows[l]) continue;
                memset(up, 0, hw * sizeof(float));
                attn_map_bilinear_add(up, size, size, ls.sum[l], ls.gh[l], ls.gw[l]);
                normalise(up, hw);
                double v = iou_at(up, hw, 0.5f, obj);
                se_stat_add(&ls.iou[l], v);
                ls.hits[l] += v >= 0.6;
                memset(ls.sum[l], 0, (size_t)ls.gh[l] * ls.gw[l] * sizeof(float));
                ls.rows[l] = 0;
            }
        }
        fprintf(stderr, "\r%d cases, %d object pairs", n_cases + 1, n_pairs);
    }
    fprintf(stderr, "\n");
    printf("%d cases (every %d of %s), %d object pairs, model %s, %dx%d latents\n\n", n_cases,
           stride, cases_dir, n_pairs, model, s.lat_w, s.lat_h);
    printf("| timesteps x strengths | layers (grid side) | UNet rows/pair | contrast |");
    for (int t = 0; t < N_THR; t++)
        printf(" IoU@%.1f |", THR[t]);
    for (int t = 0; t < N_THR; t++)
        printf(" >=0.6 @%.1f |", THR[t]);
    printf(" other object IoU@0.5 |\n|---|---|---|---|");
    for (int t = 0; t < 2 * N_THR + 1; t++)
        printf("---|");
    printf("\n");
    for (int k = 0; k < n_cfg; k++) {
        config *g = &cfg[k];
        printf("| %s | %.0f | %.3f |", g->label, (double)g->rows / n_pairs,
               se_stat_mean(&g->contrast));
        for (int t = 0; t < N_THR; t++)
            printf(" %.3f |", se_stat_mean(&g->iou[t]));
        for (int t = 0; t < N_THR; t++)
            printf(" %d%% |", 100 * g->hits[t] / n_pairs);
        printf(" %.3f |\n", se_stat_mean(&g->other[2]));
    }
    static const char *group_name[3] = {"the only object of the scene",
                                        "the first object the prompt names (of 2-3)",
                                        "a later object (of 2-3)"};
    printf("\nBy scene (%s, threshold 0.6):\n\n| the pair's object | pairs | IoU | >= 0.6 |\n"
           "|---|---|---|---|\n",
           cfg[0].label);
    for (int gi = 0; gi < 3; gi++)
        printf("| %s | %ld | %.3f | %.0f%% |\n", group_name[gi], cfg[0].group_iou[gi].n,
               se_stat_mean(&cfg[0].group_iou[gi]),
               cfg[0].group_iou[gi].n ? 100.0 * cfg[0].group_hits[gi] / cfg[0].group_iou[gi].n : 0.0);
    printf("\nObject area: %.1f%% of the image on average\n", 100 * se_stat_mean(&area));
    printf("\nPer layer (%s; each layer's map alone, threshold 0.5):\n\n| layer | grid | IoU | "
           ">= 0.6 |\n|---|---|---|---|\n",
           cfg[1].label);
    for (int l = 0; l < ls.n; l++)
        printf("| %s | %dx%d | %.3f | %d%% |\n", ls.name[l], ls.gw[l], ls.gh[l],
               se_stat_mean(&ls.iou[l]), 100 * ls.hits[l] / n_pairs);
    free(rgb), free(obj), free(other), free(pix), free(lat), free(map), free(up);
fail:
    if (rc) fprintf(stderr, "attn_probe: %s\n", err.message);
    for (int l = 0; l < ls.n; l++)
        free(ls.sum[l]);
    if (have_s) sampler_free(&s);
    oir_context_free(ctx);
    se_case_set_free(&set);
    return rc ? 1 : 0;
}
