#include "cli/calibrate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/file.h"
#include "io/outfile.h"

#define CACHE_MAX_BYTES (1 << 20)
#define CACHE_MAX_ENTRIES 32
/* A cached calibration whose one-row UNet call took less than this is
 * measured again anyway: it costs about a second, and a fresh one follows
 * the machine's load now (a busy moment would skew every later estimate). */
#define REMEASURE_BELOW_SECONDS 0.25

cli_cal_mode cli_calibration_mode(int no_calibrate, int recalibrate) {
    const char *env = getenv("OIR_NO_CALIBRATE");
    if (recalibrate) return CLI_CAL_MEASURE;
    if (no_calibrate || (env && *env && strcmp(env, "0") != 0)) return CLI_CAL_CACHED;
    return CLI_CAL_AUTO;
}

/* "model name" of the first CPU in /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(buf, cap, "%s", v);
        break;
    }
    fclose(fp);
}

/* The cache folder: $XDG_CACHE_HOME/oir, else $HOME/.cache/oir; 0 if neither. */
static int cache_dir(char *buf, size_t cap) {
    const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (x && x[0] == '/') n = snprintf(buf, cap, "%s/oir", x); /* the spec: relative values are ignored */
    else if (h && *h) n = snprintf(buf, cap, "%s/.cache/oir", h);
    else return 0;
    return n > 0 && (size_t)n < cap;
}

/* mkdir -p of the cache folder (0700 for what we create). */
static int make_dirs(const char *dir) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *q = tmp + 1; *q; q++) {
        if (*q != '/') continue;
        *q = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *q = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

typedef struct {
    const char *model, *cpu, *version, *device; /* device: where the UNet runs ("cpu", "vulkan:0") */
    int width, height, threads;
} cal_key;

static int str_is(const cJSON *o, const char *name, const char *want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}
static int int_is(const cJSON *o, const char *name, int want) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble == want;
}
/* How oir_calibrate measures (its batch sizes): entries measured otherwise
 * are measured again. 2: a heavy model at 1, 2 and 8 rows. */
#define CAL_METHOD 2

static int key_matches(const cJSON *e, const cal_key *k) {
    return int_is(e, "method", CAL_METHOD) && str_is(e, "model", k->model) && str_is(e, "cpu", k->cpu) &&
           str_is(e, "device", k->device) &&
           str_is(e, "oir_version", k->version) &&
           int_is(e, "width", k->width) && int_is(e, "height", k->height) && int_is(e, "threads", k->threads);
}

/* A positive finite number of seconds, below a day. */
static int seconds_of(const cJSON *e, const char *name, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0 || v->valuedouble > 86400) return 0;
    *out = v->valuedouble;
    return 1;
}

/* The entry's measurements, checked; 0 when anything is off. */
static int entry_read(const cJSON *e, const cal_key *k, oir_calibration *c, char *measured, size_t cap) {
    memset(c, 0, sizeof *c);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(e, "unet_rows"),
                *secs = cJSON_GetObjectItemCaseSensitive(e, "unet_seconds"),
                *when = cJSON_GetObjectItemCaseSensitive(e, "measured");
    int n = cJSON_GetArraySize(rows);
    if (!cJSON_IsArray(rows) || !cJSON_IsArray(secs) || n < 1 || n > OIR_CALIBRATION_POINTS ||
        cJSON_GetArraySize(secs) != n)
        return 0;
    for (int i = 0; i < n; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i), *s = cJSON_GetArrayItem(secs, i);
        if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble > 4096 || r->valuedouble != (int)r->valuedouble ||
            (i > 0 && r->valuedouble <= c->unet_rows[i - 1]) || !cJSON_IsNumber(s) || !isfinite(s->valuedouble) ||
            s->valuedouble <= 0 || s->valuedouble > 86400)
            return 0;
        c->unet_rows[i] = (int)r->valuedouble;
        c->unet_seconds[i] = s->valuedouble;
    }
    c->n_unet = n;
    if (!seconds_of(e, "decode_seconds", &c->decode_seconds) || !seconds_of(e, "encode_seconds", &c->encode_seconds) ||
        !seconds_of(e, "text_seconds", &c->text_seconds) || !seconds_of(e, "score_seconds", &c->score_seconds) ||
        !seconds_of(e, "clip_text_seconds", &c->clip_text_seconds))
        return 0;
    c->width = k->width, c->height = k->height, c->threads = k->threads;
    snprintf(measured, cap, "%s", cJSON_IsString(when) ? when->valuestring : "?");
    return 1;
}

static cJSON *entry_make(const cal_key *k, const oir_calibration *c, const char *measured) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "model", k->model);
    cJSON_AddNumberToObject(e, "method", CAL_METHOD);
    cJSON_AddNumberToObject(e, "width", k->width);
    cJSON_AddNumberToObject(e, "height", k->height);
    cJSON_AddNumberToObject(e, "threads", k->threads);
    cJSON_AddStringToObject(e, "cpu", k->cpu);
    cJSON_AddStringToObject(e, "device", k->device);
    cJSON_AddStringToObject(e, "oir_version", k->version);
    cJSON_AddStringToObject(e, "measured", measured);
    cJSON *rows = cJSON_AddArrayToObject(e, "unet_rows"), *secs = cJSON_AddArrayToObject(e, "unet_seconds");
    for (int i = 0; i < c->n_unet; i++) {
        cJSON_AddItemToArray(rows, cJSON_CreateNumber(c->unet_rows[i]));
        cJSON_AddItemToArray(secs, cJSON_CreateNumber(c->unet_seconds[i]));
    }
    cJSON_AddNumberToObject(e, "decode_seconds", c->decode_seconds);
    cJSON_AddNumberToObject(e, "encode_seconds", c->encode_seconds);
    cJSON_AddNumberToObject(e, "text_seconds", c->text_seconds);
    cJSON_AddNumberToObject(e, "score_seconds", c->score_seconds);
    cJSON_AddNumberToObject(e, "clip_text_seconds", c->clip_text_seconds);
    return e;
}

/* The cache's entries array (a new empty one when the file is missing or unreadable). */
static cJSON *cache_load(const char *path) {
    char *text = NULL;
    size_t len = 0;
    oir_error err = {0};
    cJSON *root = NULL;
    if (file_is_regular(path) && file_read_regular(path, CACHE_MAX_BYTES, "a calibration cache", &text, &len, &err) == OIR_OK)
        root = cJSON_Parse(text);
    free(text);
    if (root && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "entries"))) return root;
    cJSON_Delete(root);
    root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "oir_calibration", 1);
    cJSON_AddArrayToObject(root, "entries");
    return root;
}

/* What this process measured last (the cases of one YAML file share it). */
static struct {
    int have;
    char model[2600], device[64];
    cli_calibration c;
} measured_here;

void cli_calibration_get(oir_context *ctx, int width, int height, const oir_params *p, cli_cal_mode mode,
                         cli_calibration *out) {
    memset(out, 0, sizeof *out);
    out->from = "none";
    char cpu[256], dir[4096];
    cpu_model(cpu, sizeof cpu);
    /* a calibration times the UNet where it runs: one measured on a GPU says nothing of the CPU */
    cal_key k = {oir_context_describe(ctx), cpu, oir_version(), oir_context_device(ctx, "unet"),
                 width, height, oir_get_threads()};
    if (mode != CLI_CAL_CACHED && measured_here.have && !strcmp(measured_here.model, k.model) &&
        !strcmp(measured_here.device, k.device) &&
        measured_here.c.cal.width == width && measured_here.c.cal.height == height &&
        measured_here.c.cal.threads == k.threads) {
        *out = measured_here.c;
        out->note[0] = '\0';
        return;
    }
    int have_dir = cache_dir(dir, sizeof dir);
    if (have_dir) snprintf(out->path, sizeof out->path, "%s/calibration.json", dir);
    cJSON *root = have_dir ? cache_load(out->path) : NULL;
    cJSON *entries = root ? cJSON_GetObjectItemCaseSensitive(root, "entries") : NULL;
    if (mode != CLI_CAL_MEASURE && entries) {
        const cJSON *e;
        cJSON_ArrayForEach(e, entries) {
            if (key_matches(e, &k) && entry_read(e, &k, &out->cal, out->measured, sizeof out->measured)) {
                out->have = mode == CLI_CAL_CACHED || out->cal.unet_seconds[0] >= REMEASURE_BELOW_SECONDS;
                out->from = out->have ? "cache" : "none";
                break;
            }
        }
    }
    if (out->have || mode == CLI_CAL_CACHED) {
        if (!out->have) snprintf(out->note, sizeof out->note, "no calibration cached for this model, size and machine");
        cJSON_Delete(root);
        return;
    }
    oir_error err = {0};
    if (oir_calibrate(ctx, width, height, p, &out->cal, &err) != OIR_OK) {
        snprintf(out->note, sizeof out->note, "calibration failed: %.1000s", err.message);
        cJSON_Delete(root);
        return;
    }
    out->have = 1;
    out->from = "measured";
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || !strftime(out->measured, sizeof out->measured, "%Y-%m-%d", &tm))
        snprintf(out->measured, sizeof out->measured, "?");
    measured_here.have = 1;
    snprintf(measured_here.model, sizeof measured_here.model, "%s", k.model);
    snprintf(measured_here.device, sizeof measured_here.device, "%s", k.device);
    measured_here.c = *out;
    if (!root) {
        snprintf(out->note, sizeof out->note, "not cached: neither $XDG_CACHE_HOME nor $HOME is set");
        return;
    }
    /* the new entry replaces this key's, the oldest go beyond CACHE_MAX_ENTRIES */
    for (int i = cJSON_GetArraySize(entries) - 1; i >= 0; i--)
        if (key_matches(cJSON_GetArrayItem(entries, i), &k)) cJSON_DeleteItemFromArray(entries, i);
    while (cJSON_GetArraySize(entries) >= CACHE_MAX_ENTRIES) cJSON_DeleteItemFromArray(entries, 0);
    cJSON_AddItemToArray(entries, entry_make(&k, &out->cal, out->measured));
    char *json = cJSON_Print(root);
    if (!json || make_dirs(dir) != 0 || outfile_write(out->path, json, strlen(json), &err) != OIR_OK)
        snprintf(out->note, sizeof out->note, "calibration not cached in %.400s: %.600s", out->path,
                 json ? (err.message[0] ? err.message : strerror(errno)) : "out of memory");
    cJSON_free(json);
    cJSON_Delete(root);
}
