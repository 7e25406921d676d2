#include "cli/cli_plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void cli_format_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0)) s = 0;
    if (s < 0.05) {
        snprintf(buf, cap, "under 0.1 s");
        return;
    }
    if (s < 10) {
        snprintf(buf, cap, "%.1f s", s);
        return;
    }
    long t = lround(s);
    if (t < 60) snprintf(buf, cap, "%ld s", t);
    else if (t < 3600) snprintf(buf, cap, "%ld min %ld s", t / 60, t % 60);
    else {
        long m = (t + 30) / 60; /* to the minute */
        snprintf(buf, cap, "%ld h %ld min", m / 60, m % 60);
    }
}

/* 5216 -> "5,216" */
void cli_format_count(char *buf, size_t cap, long v) {
    char raw[32], out[48];
    snprintf(raw, sizeof raw, "%ld", v < 0 ? -v : v);
    size_t n = strlen(raw), j = 0;
    if (v < 0) out[j++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) out[j++] = ',';
        out[j++] = raw[i];
    }
    out[j] = '\0';
    snprintf(buf, cap, "%s", out);
}

/* 0.92 -> "0.92 s", 0.0124 -> "12.4 ms" */
static void per_unit(char *buf, size_t cap, double s) {
    if (s >= 1) snprintf(buf, cap, "%.2g s", s);
    else if (s >= 0.1) snprintf(buf, cap, "%.2f s", s);
    else snprintf(buf, cap, "%.3g ms", s * 1000);
}

void cli_plan_line(char *buf, size_t cap, const oir_plan *pl, const cli_calibration *cal) {
    char rows[32], lo[32], hi[32], work[256], est[1700];
    cli_format_count(rows, sizeof rows, pl->unet_rows_total);
    cli_format_count(lo, sizeof lo, pl->unet_rows_min);
    cli_format_count(hi, sizeof hi, pl->unet_rows_max);
    if (pl->exact)
        snprintf(work, sizeof work, "%s UNet rows, %d decodes, %d encode", rows, pl->decodes, pl->encodes);
    else if (pl->decodes_min == pl->decodes_max)
        snprintf(work, sizeof work, "about %s UNet rows (%s..%s, by the scores), %d decodes, %d encode", rows, lo, hi,
                 pl->decodes, pl->encodes);
    else
        snprintf(work, sizeof work, "about %s UNet rows (%s..%s, by the scores), about %d decodes (%d..%d), %d encode",
                 rows, lo, hi, pl->decodes, pl->decodes_min, pl->decodes_max, pl->encodes);
    if (cal->have && pl->seconds >= 0) {
        char d[64], r[32], dec[32];
        cli_format_duration(d, sizeof d, pl->seconds);
        per_unit(r, sizeof r, pl->seconds_per_unet_row);
        per_unit(dec, sizeof dec, cal->cal.decode_seconds);
        snprintf(est, sizeof est, "about %s on this machine (%s per UNet row, %s per decode, %s %s)", d, r, dec,
                 strcmp(cal->from, "cache") ? "measured" : "calibrated", cal->measured);
    } else {
        snprintf(est, sizeof est, "no time estimate (%s)", cal->note[0] ? cal->note : "no calibration");
    }
    snprintf(buf, cap, "plan: %d pair%s, T=%d, search %s, %dx%d -> %s; %s", pl->n_pairs, pl->n_pairs == 1 ? "" : "s",
             pl->steps, pl->search, pl->width, pl->height, work, est);
}

int cli_plan_hint(char *buf, size_t cap, const oir_context *ctx, int width, int height, const oir_pair *pairs,
                  int n_pairs, const oir_params *p, const oir_plan *pl, const cli_calibration *cal) {
    buf[0] = '\0';
    if (!cal->have || pl->seconds < CLI_PLAN_HINT_SECONDS) return 0;
    int adaptive = strncmp(pl->search, "adaptive", 8) == 0 || strncmp(pl->search, "short", 5) == 0;
    const struct {
        const char *flags, *search;
        int steps;
    } alts[] = {{"--search adaptive", "adaptive", 0},
                {"--steps 20", NULL, 20},
                {"--steps 20 --search adaptive", "adaptive", 20},
                {"--steps 10", NULL, 10}};
    char d[64], list[768] = "";
    size_t used = 0;
    int n = 0, quick_enough = 0;
    for (size_t i = 0; i < sizeof alts / sizeof alts[0]; i++) {
        if (alts[i].search && adaptive) continue;
        if (alts[i].steps && alts[i].steps >= pl->steps) continue;
        oir_params q = *p;
        if (alts[i].search) q.search = alts[i].search;
        if (alts[i].steps) q.steps = alts[i].steps;
        oir_plan alt;
        oir_error err = {0};
        /* planned as the run was (with the pairs: their inferred masks' rows count) */
        int rc = pairs ? oir_plan_edit(ctx, width, height, pairs, n_pairs, &q, &cal->cal, &alt, &err)
                       : oir_plan_run(ctx, width, height, n_pairs, &q, &cal->cal, &alt, &err);
        if (rc != OIR_OK) continue;
        if (alt.seconds >= pl->seconds * 0.9) continue;
        int combined = alts[i].search && alts[i].steps;
        if (combined && quick_enough) continue; /* a single change already does */
        cli_format_duration(d, sizeof d, alt.seconds);
        int w = snprintf(list + used, sizeof list - used, "%s%s (about %s)", n ? ", " : "", alts[i].flags, d);
        if (w < 0 || (size_t)w >= sizeof list - used) break;
        used += (size_t)w, n++;
        quick_enough |= alt.seconds < CLI_PLAN_HINT_SECONDS;
    }
    cli_format_duration(d, sizeof d, pl->seconds);
    if (n)
        snprintf(buf, cap, "hint: this run takes about %s; quicker: %s%s", d, list,
                 "; or a smaller working size (UNet time grows with the pixel count)");
    else
        snprintf(buf, cap, "hint: this run takes about %s; a smaller working size or fewer --steps is quicker", d);
    return 1;
}

void cli_plan_json(cJSON *rep, const oir_plan *pl, const cli_calibration *cal) {
    cJSON *o = cJSON_AddObjectToObject(rep, "plan");
    cJSON_AddBoolToObject(o, "exact", pl->exact);
    cJSON_AddNumberToObject(o, "unet_rows", (double)pl->unet_rows_total);
    cJSON_AddNumberToObject(o, "unet_rows_min", (double)pl->unet_rows_min);
    cJSON_AddNumberToObject(o, "unet_rows_max", (double)pl->unet_rows_max);
    cJSON_AddNumberToObject(o, "candidate_unet_rows", (double)pl->candidate_rows);
    cJSON_AddNumberToObject(o, "unet_calls", (double)pl->unet_calls);
    cJSON_AddNumberToObject(o, "vae_decodes", pl->decodes);
    cJSON_AddNumberToObject(o, "vae_decodes_min", pl->decodes_min);
    cJSON_AddNumberToObject(o, "vae_decodes_max", pl->decodes_max);
    cJSON_AddNumberToObject(o, "vae_encodes", pl->encodes);
    if (cal->have && pl->seconds >= 0) {
        cJSON_AddNumberToObject(o, "estimate_seconds", pl->seconds);
        cJSON_AddNumberToObject(o, "seconds_per_unet_row", pl->seconds_per_unet_row);
        cJSON_AddNumberToObject(o, "seconds_per_decode", cal->cal.decode_seconds);
        static const char *names[OIR_STAGE_COUNT] = {"prompts", "encode", "inversion", "candidates",
                                                     "decode",  "scoring", "denoise",   "mask"};
        cJSON *st = cJSON_AddObjectToObject(o, "stage_seconds");
        for (int k = 0; k < OIR_STAGE_COUNT; k++) cJSON_AddNumberToObject(st, names[k], pl->stage_seconds[k]);
    } else {
        cJSON_AddNullToObject(o, "estimate_seconds");
    }
    cJSON *c = cJSON_AddObjectToObject(o, "calibration");
    cJSON_AddStringToObject(c, "from", cal->from);
    if (cal->have) {
        cJSON_AddStringToObject(c, "measured", cal->measured);
        cJSON_AddNumberToObject(c, "threads", cal->cal.threads);
    }
    if (cal->note[0]) cJSON_AddStringToObject(c, "note", cal->note);
}
