/* mask_bench: issue 13's judge of automatic masks on the shapes world. For
 * every pair of the cases of bench/scenes/edit, the mask oir would infer
 * (src/edit/mask_infer.h) is compared with the pair's ground-truth edit mask
 * (the union of the old and the new object, what the benchmark's OIR runs
 * use; for a background pair, the background): IoU, per method and clean-up
 * setting. The map of each pair is computed once per method and every
 * clean-up setting (threshold x dilation) is applied to it, so a grid of
 * settings costs no more UNet rows than one.
 *
 *     mask_bench [--cases DIR] [--n N] [--offset I] [--methods noise,attention,combined-mean,...]
 *                [--thresholds 0.5,...] [--dilate 0,1,2,...] [--upsample bilinear,nearest]
 *                [--strength 0.5] [--num-maps 10] [--seed S] [--threads N] [--scenes DIR]
 *
 * Prints a markdown table: per setting, object pairs (single-pair cases,
 * multi-pair cases, all) and background pairs: mean IoU and the share of
 * pairs with IoU >= 0.6 (the goal: >= 80% of object pairs), the
 * mean mask area, fallbacks, and the UNet rows a mask costs. --scenes DIR
 * (bench/scenes/heldout) judges the held-out scenes' objects instead (each
 * object "COLOUR SHAPE" -> the next colour and shape, against its own
 * mask). */
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "core/clock.h"
#include "edit/context.h"
#include "edit/mask_attention.h"
#include "edit/mask_infer.h"
#include "edit/prompts.h"
#include "io/image.h"
#include "oir.h"
#include "shapes_eval.h"

#define MAX_SET 16
#define GOAL_IOU 0.6

enum { G_SINGLE, G_MULTI, G_OBJECTS, G_BACKGROUND, G_HELDOUT, N_GROUPS };
static const char *group_names[N_GROUPS] = {"object pairs, single-pair cases", "object pairs, multi-pair cases",
                                            "object pairs, all", "background pairs", "held-out scenes' objects"};

/* --scenes: every object of the held-out scenes as a pair "COLOUR SHAPE" ->
 * the next colour and the next shape of the world's lists, judged against
 * the object's own mask (there is no new object to unite it with). */
static int cases_from_scenes(se_case_set *out, const char *dir, oir_error *err) {
    se_scene_set sc;
    int rc = se_scene_set_load(&sc, dir, err);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->vocab = sc.vocab;
    out->size = sc.size;
    out->cases = calloc((size_t)sc.n, sizeof *out->cases);
    if (!out->cases) {
        se_scene_set_free(&sc);
        return oir_fail(err, OIR_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < sc.n; i++) {
        se_scene *e = &sc.scenes[i];
        se_case *c = &out->cases[out->n++];
        snprintf(c->name, sizeof c->name, "heldout/%s", e->name);
        snprintf(c->image, sizeof c->image, "%s", e->image);
        snprintf(c->source, sizeof c->source, "%s", e->caption);
        for (int k = 0; k < e->n_objects && k < SE_MAX_PAIRS; k++) {
            const se_object *o = &e->objects[k];
            se_pair *pr = &c->pairs[c->n_pairs];
            snprintf(pr->from, sizeof pr->from, "%s %s", sc.vocab.colours[o->colour], sc.vocab.shapes[o->shape]);
            snprintf(pr->to, sizeof pr->to, "%s %s", sc.vocab.colours[(o->colour + 1) % sc.vocab.n_colours],
                     sc.vocab.shapes[(o->shape + 1) % sc.vocab.n_shapes]);
            const char *from[1] = {pr->from}, *to[1] = {pr->to};
            oir_error e2 = {0};
            if (prompt_substitute(e->caption, 1, from, to, NULL, pr->guided, sizeof pr->guided, &e2)) continue;
            snprintf(pr->mask, sizeof pr->mask, "%s", o->mask);
            c->n_pairs++;
        }
    }
    se_scene_set_free(&sc);
    return OIR_OK;
}

enum { V_NOISE, V_ATTENTION, V_MEAN, V_GEO, V_MIN, N_VARIANTS };
static const char *variant_names[N_VARIANTS] = {"noise", "attention", "combined-mean", "combined-geo", "combined-min"};

typedef struct {
    se_stat iou[N_GROUPS], area[N_GROUPS];
    long hits[N_GROUPS], fallbacks[N_GROUPS];
} result;

static int parse_list(const char *s, double *v, int max) {
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        v[n++] = strtod(s, &end);
        if (end == s) return -1;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static double iou(const unsigned char *a, const unsigned char *b, size_t n) {
    size_t i = 0, u = 0;
    for (size_t j = 0; j < n; j++) i += a[j] && b[j], u += a[j] || b[j];
    return u ? (double)i / (double)u : 1.0;
}

int main(int argc, char **argv) {
    const char *cases_dir = "bench/scenes/edit", *methods = "noise", *thresholds = "0.5", *dilates = "0,1,2";
    const char *upsample = "bilinear", *strengths = "0.5", *scenes_dir = NULL;
    int n = 0, offset = 0, threads = 1, num_maps = 10, compete = 0;
    uint64_t seed = 0;
    const char *seed_arg = NULL, *ratio_arg = NULL;
    /* the library's region rule (mask_infer.h); --region-broad 0 turns it off */
    float region_broad = MASK_REGION_BROAD, region_th = MASK_REGION_THRESHOLD;
    const cli_opt opts[] = {
        {"--cases", CLI_STR, &cases_dir, 0, 0},     {"--n", CLI_INT, &n, 0, 1000},
        {"--offset", CLI_INT, &offset, 0, 1000},    {"--methods", CLI_STR, &methods, 0, 0},
        {"--thresholds", CLI_STR, &thresholds, 0, 0}, {"--dilate", CLI_STR, &dilates, 0, 0},
        {"--seed", CLI_STR, &seed_arg, 0, 0},       {"--threads", CLI_INT, &threads, 0, 1024},
        {"--upsample", CLI_STR, &upsample, 0, 0},   {"--strength", CLI_STR, &strengths, 0, 0},
        {"--num-maps", CLI_INT, &num_maps, 1, 256}, {"--scenes", CLI_STR, &scenes_dir, 0, 0},
        {"--compete", CLI_FLAG, &compete, 0, 0},     {"--ratio", CLI_STR, &ratio_arg, 0, 0},
        {"--region-broad", CLI_FLOAT, &region_broad, 0, 1}, {"--region-threshold", CLI_FLOAT, &region_th, 0, 100},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err) ||
        (seed_arg && cli_parse_u64("--seed", seed_arg, &seed, &err))) {
        fprintf(stderr, "mask_bench: %s\n", err.message);
        return 2;
    }
    double th[MAX_SET], dl[MAX_SET];
    int n_th = parse_list(thresholds, th, MAX_SET), n_dl = parse_list(dilates, dl, MAX_SET);
    char *end_s = NULL;
    double strength = strtod(strengths, &end_s);
    int meth[N_VARIANTS], n_meth = 0, ups[2], n_up = 0;
    char mbuf[256];
    snprintf(mbuf, sizeof mbuf, "%s", methods);
    for (char *tok = strtok(mbuf, ","); tok && n_meth < N_VARIANTS; tok = strtok(NULL, ",")) {
        meth[n_meth] = -1;
        for (int v = 0; v < N_VARIANTS; v++)
            if (!strcmp(tok, variant_names[v])) meth[n_meth] = v;
        n_meth++;
    }
    for (int i = 0; i < n_meth; i++)
        if (meth[i] < 0) n_meth = -1;
    snprintf(mbuf, sizeof mbuf, "%s", upsample);
    for (char *tok = strtok(mbuf, ","); tok && n_up < 2; tok = strtok(NULL, ","))
        ups[n_up++] = !strcmp(tok, "nearest") ? MASK_UPSAMPLE_NEAREST : !strcmp(tok, "bilinear") ? MASK_UPSAMPLE_BILINEAR : -1;
    for (int i = 0; i < n_up; i++)
        if (ups[i] < 0) n_up = -1;
    if (n_th < 1 || n_dl < 1 || n_meth < 1 || n_up < 1 || *end_s || !(strength > 0 && strength <= 1)) {
        fprintf(stderr, "mask_bench: --methods (noise, attention, combined-mean, combined-geo, combined-min), "
                        "--thresholds, --dilate and --upsample take comma-separated lists; --strength a number\n");
        return 2;
    }
    int need_noise = 0, need_att = 0;
    for (int i = 0; i < n_meth; i++) need_noise |= meth[i] != V_ATTENTION, need_att |= meth[i] != V_NOISE;
    oir_set_threads(threads);
    se_case_set set;
    oir_context *ctx = NULL;
    oir_context_params cp = oir_context_default_params();
    if ((scenes_dir ? cases_from_scenes(&set, scenes_dir, &err) : se_case_set_load(&set, cases_dir, &err)) ||
        oir_context_load(&ctx, &cp, &err)) {
        fprintf(stderr, "mask_bench: %s\n", err.message);
        return 1;
    }
    int S = set.size, end = n ? offset + n : set.n;
    if (end > set.n) end = set.n;
    sampler s;
    if (sampler_init_hw(&s, oir_context_sd_model(ctx), S, S, 50, 0, &err)) {
        fprintf(stderr, "mask_bench: %s\n", err.message);
        return 1;
    }
    s.truncate_prompts = 1;
    size_t hw = (size_t)S * S, lhw = (size_t)s.lat_h * s.lat_w, ctx_n = (size_t)s.ctx_len * s.ctx_dim;
    unsigned char *rgb = malloc(hw * 3), *gt = malloc(hw), *mask = malloc(hw);
    float *pixels = malloc(3 * hw * sizeof(float)), *latent = malloc(s.lat_n * sizeof(float));
    float *src = malloc(ctx_n * sizeof(float)), *tgt = malloc(ctx_n * sizeof(float));
    float *map = malloc(lhw * sizeof(float)), *nmap = malloc(lhw * sizeof(float)), *amap = malloc(lhw * sizeof(float));
    float *vmap = malloc(lhw * sizeof(float)), *rel = malloc(SE_MAX_PAIRS * lhw * sizeof(float));
    oir_mask_params mp = oir_mask_default_params();
    mp.seed = seed;
    mp.encode_strength = strength;
    mp.num_maps = num_maps;
    mp.thresholding_ratio = mask_method_ratio(OIR_MASK_NOISE); /* every variant's noise map: the noise method's clamp */
    if (ratio_arg) { /* DiffEdit's clamp level in units of the map's mean (thresholding_ratio) */
        char *e = NULL;
        mp.thresholding_ratio = strtod(ratio_arg, &e);
        if (e == ratio_arg || *e || !(mp.thresholding_ratio > 0 && mp.thresholding_ratio < 1000)) {
            fprintf(stderr, "mask_bench: --ratio: want a number in (0, 1000), got '%s'\n", ratio_arg);
            return 2;
        }
    }
    mask_attention_params ap;
    mask_attention_defaults(&ap);
    ap.seed = seed;
    float *noise = malloc((size_t)mp.num_maps * s.lat_n * sizeof(float));
    mask_gaussian(noise, (size_t)mp.num_maps * s.lat_n, seed);
    int n_clean = n_th * n_dl * n_up;
    result *res = calloc((size_t)n_meth * n_clean, sizeof *res);
    long rows_noise = 0, rows_att = 0;
    image img = {0};
    image_alloc(&img, S, S, 3, &err);
    double t0 = clock_wall_s();
    int pairs_done = 0;
    for (int c = offset; c < end; c++) {
        se_case *cs = &set.cases[c];
        if (se_load_rgb(cs->image, S, rgb, &err)) goto fail;
        for (size_t i = 0; i < hw * 3; i++) img.data[i] = rgb[i] / 255.0f;
        image_to_tensor(&img, pixels);
        if (sampler_encode_image(&s, pixels, latent, &err) || sampler_encode_prompt(&s, cs->source, src, &err)) goto fail;
        /* --compete: every object pair's noise map over its own DiffEdit
         * clamp level, unclamped; a cell where another object pair's is
         * higher leaves this pair's map */
        if (compete && need_noise)
            for (int pi = 0; pi < cs->n_pairs && pi < SE_MAX_PAIRS; pi++) {
                if (sampler_encode_prompt(&s, cs->pairs[pi].guided, tgt, &err) ||
                    mask_noise_map(&s, latent, src, tgt, &mp, noise, map, &rows_noise, &err))
                    goto fail;
                double mean = 0;
                for (size_t j = 0; j < lhw; j++) mean += map[j];
                mean = mean / lhw * mp.thresholding_ratio;
                for (size_t j = 0; j < lhw; j++)
                    rel[pi * lhw + j] = cs->pairs[pi].is_background || !(mean > 0) ? 0 : (float)(map[j] / mean);
            }
        for (int pi = 0; pi < cs->n_pairs; pi++) {
            se_pair *pr = &cs->pairs[pi];
            if (se_load_mask(pr->mask, S, gt, &err) || sampler_encode_prompt(&s, pr->guided, tgt, &err)) goto fail;
            int group = scenes_dir ? G_HELDOUT
                        : pr->is_background ? G_BACKGROUND
                                            : (cs->n_pairs == 1 ? G_SINGLE : G_MULTI);
            int noise_ok = 1, att_ok = 1;
            float broad = 0;
            if (need_noise) {
                if (mask_noise_map(&s, latent, src, tgt, &mp, noise, map, &rows_noise, &err)) goto fail;
                noise_ok = mask_normalise(map, lhw, mp.thresholding_ratio, nmap);
                broad = mask_broadness(map, lhw);
                if (getenv("MASK_BENCH_TRACE"))
                    fprintf(stderr, "trace case %d pair %d group %d broadness %.3f\n", c, pi, group, (double)broad);
                if (compete && !pr->is_background)
                    for (int k = 0; k < cs->n_pairs && k < SE_MAX_PAIRS; k++)
                        for (size_t j = 0; k != pi && j < lhw; j++)
                            if (rel[k * lhw + j] > rel[pi * lhw + j]) nmap[j] = 0;
            }
            if (need_att) {
                long r0 = s.unet_rows;
                if (mask_attention_map_sampler(&s, latent, cs->source, pr->from, &ap, amap, &err)) goto fail;
                rows_att = s.unet_rows - r0;
                float hi = 0;
                for (size_t j = 0; j < lhw; j++) hi = amap[j] > hi ? amap[j] : hi;
                att_ok = hi > 0;
            }
            for (int v = 0; v < n_meth; v++) {
                int flat;
                switch (meth[v]) {
                case V_NOISE: memcpy(vmap, nmap, lhw * sizeof(float)), flat = !noise_ok; break;
                case V_ATTENTION: memcpy(vmap, amap, lhw * sizeof(float)), flat = !att_ok; break;
                default:
                    mask_combine(nmap, amap, lhw,
                                 meth[v] == V_MEAN ? MASK_COMBINE_MEAN : meth[v] == V_GEO ? MASK_COMBINE_GEOMEAN
                                                                                       : MASK_COMBINE_MIN,
                                 vmap);
                    flat = !noise_ok && !att_ok;
                }
                for (int k = 0; k < n_clean; k++) {
                    int a = k / (n_dl * n_up), b = k / n_up % n_dl, u = k % n_up;
                    oir_mask_info info;
                    memset(&info, 0, sizeof info);
                    int region = meth[v] == V_NOISE && region_broad > 0 && broad >= region_broad;
                    float t_use = region ? region_th / mp.thresholding_ratio : (float)th[a];
                    if (mask_clean(vmap, (flat ? MASK_CLEAN_FLAT : 0) | (region ? MASK_CLEAN_REGION : 0), s.lat_h,
                                   s.lat_w, S, S, t_use, (int)dl[b], ups[u], mask, &info,
                                   &err))
                        goto fail;
                    result *r = &res[(size_t)v * n_clean + k];
                    double j = iou(mask, gt, hw);
                    int gs[2] = {group, group == G_BACKGROUND || group == G_HELDOUT ? -1 : G_OBJECTS};
                    for (int g = 0; g < 2; g++) {
                        if (gs[g] < 0) continue;
                        se_stat_add(&r->iou[gs[g]], j);
                        se_stat_add(&r->area[gs[g]], info.area);
                        r->hits[gs[g]] += j >= GOAL_IOU;
                        r->fallbacks[gs[g]] += info.warning != OIR_MASK_WARN_NONE;
                    }
                }
            }
            pairs_done++;
        }
        if (isatty(2)) fprintf(stderr, "\rmask_bench: case %d/%d, %.0f s", c + 1 - offset, end - offset, clock_wall_s() - t0);
    }
    fprintf(stderr, "\nmask_bench: %d pairs of %d cases (%s) in %.0f s, %d thread(s), strength %.2f, ratio %g, %d maps, seed %llu\n",
            pairs_done, end - offset, scenes_dir ? scenes_dir : cases_dir, clock_wall_s() - t0, threads, strength, (double)mp.thresholding_ratio, num_maps,
            (unsigned long long)seed);
    printf("| method | upsample | threshold | dilate px | group | pairs | mean IoU | IoU >= %.1f | mean area | "
           "fallbacks | UNet rows / mask |\n",
           GOAL_IOU);
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int v = 0; v < n_meth; v++)
        for (int k = 0; k < n_clean; k++) {
            int a = k / (n_dl * n_up), b = k / n_up % n_dl, u = k % n_up;
            result *r = &res[(size_t)v * n_clean + k];
            long rows = (meth[v] != V_ATTENTION ? rows_noise : 0) + (meth[v] != V_NOISE ? rows_att : 0);
            for (int g = 0; g < N_GROUPS; g++) {
                if (!r->iou[g].n) continue;
                printf("| %s | %s | %.2f | %d | %s | %ld | %.3f | %.1f%% | %.3f | %ld | %ld |\n", variant_names[meth[v]],
                       ups[u] ? "bilinear" : "nearest", th[a], (int)dl[b], group_names[g], r->iou[g].n,
                       se_stat_mean(&r->iou[g]), 100.0 * r->hits[g] / r->iou[g].n, se_stat_mean(&r->area[g]),
                       r->fallbacks[g], rows);
            }
        }
    return 0;
fail:
    fprintf(stderr, "mask_bench: %s\n", err.message);
    return 1;
}
