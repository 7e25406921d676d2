/* oir batch --summarize DIR [--manifest M]: every case folder of a batch's
 * output folder (whichever shard wrote it) merged into one table, written as
 * DIR/summary.csv, DIR/summary.json and DIR/summary.md, with the manifest's
 * cases that have no folder listed as missing. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/batch.h"
#include "cli/cli.h"
#include "io/manifest.h"
#include "io/outfile.h"

#define CMD "batch"

char *batch_read_text(const char *path, size_t cap, size_t *len) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    struct stat sb;
    char *buf = NULL;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size <= cap &&
        (buf = malloc((size_t)sb.st_size + 1))) {
        size_t got = 0;
        while (got < (size_t)sb.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        buf[got] = '\0';
        if (len) *len = got;
    }
    close(fd);
    return buf;
}

/* ------------------------------------------------------------ text out */

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} text_buf;

static void tb_add(text_buf *t, const char *s, size_t n) {
    if (t->oom) return;
    if (t->n + n + 1 > t->cap) {
        size_t c = t->cap ? t->cap : 4096;
        while (c < t->n + n + 1) c *= 2;
        char *v = realloc(t->s, c);
        if (!v) {
            t->oom = 1;
            return;
        }
        t->s = v, t->cap = c;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = '\0';
}

static void tb_printf(text_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *t, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        tb_add(t, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        t->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    tb_add(t, big, (size_t)n);
    free(big);
}

/* RFC 4180: quoted when it holds a comma, quote or line break. */
static void tb_csv(text_buf *t, const char *v, int last) {
    if (!v) v = "";
    if (strpbrk(v, ",\"\r\n")) {
        tb_add(t, "\"", 1);
        for (const char *p = v; *p; p++) {
            if (*p == '"') tb_add(t, "\"\"", 2);
            else tb_add(t, p, 1);
        }
        tb_add(t, "\"", 1);
    } else {
        tb_add(t, v, strlen(v));
    }
    tb_add(t, last ? "\n" : ",", 1);
}

/* A markdown table cell: '|' escaped, line breaks as spaces. */
static void tb_md(text_buf *t, const char *v) {
    tb_add(t, " ", 1);
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '|') tb_add(t, "\\|", 2);
        else if (*p == '\n' || *p == '\r') tb_add(t, " ", 1);
        else tb_add(t, p, 1);
    }
    tb_add(t, " |", 2);
}

/* ------------------------------------------------------------- the rows */

typedef struct {
    char id[MANIFEST_ID_MAX + 1];
    const char *where; /* the manifest's, or "" */
    int state;         /* 0 missing, 1 done, 2 failed */
    int in_manifest;
    cJSON *doc;        /* report.json or error.json */
} row;

static cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num_of(const cJSON *o, const char *k, double def) {
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* score k (1-based) of a pair's array, NAN-free: "" when absent or null */
static void score_at(char *buf, size_t cap, const cJSON *pair, const char *k, int step) {
    const cJSON *v = cJSON_GetArrayItem(get(pair, k), step - 1);
    if (cJSON_IsNumber(v)) snprintf(buf, cap, "%.4f", v->valuedouble);
    else buf[0] = '\0';
}

/* The per-pair values of a finished case joined with ";" (several pairs). */
static void pairs_join(const cJSON *rep, const char *what, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    int i = 0;
    for (const cJSON *p = get(rep, "pairs") ? get(rep, "pairs")->child : NULL; p && at < cap; p = p->next, i++) {
        char v[64];
        int k = (int)num_of(p, "chosen_step", 0);
        if (!strcmp(what, "chosen_step")) snprintf(v, sizeof v, "%d", k);
        else score_at(v, sizeof v, p, what, k);
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? ";" : "", v);
    }
}

static int summary_ours(const char *path, const char *sig) {
    size_t n = 0;
    char *t = batch_read_text(path, 1 << 26, &n);
    int ok = t && strstr(t, sig) != NULL && (size_t)(strstr(t, sig) - t) < 256;
    free(t);
    return ok;
}

/* Writes DIR/name unless a file there was not written by --summarize. */
static int write_summary(const char *dir, const char *name, const char *sig, const text_buf *t, oir_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    if (lstat(path, &sb) == 0 && (!S_ISREG(sb.st_mode) || !summary_ours(path, sig)))
        return oir_fail(err, OIR_E_ARG,
                        "%s exists and was not written by oir batch --summarize; move it away (the summary is "
                        "written there)", path);
    if (t->oom) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    return outfile_write(path, t->s ? t->s : "", t->n, err);
}

typedef struct {
    char file[300];
    int starts, ends, cases;
} log_info;

/* The shard logs: their runs, and the manifest they name (*man: malloc'd,
 * NULL when none; *several when they disagree). */
static int read_logs(const char *dir, log_info **out, int *n_out, char **man, int *several) {
    *out = NULL, *n_out = 0, *man = NULL, *several = 0;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, BATCH_LOG_DIR);
    DIR *dp = opendir(p);
    if (!dp) return 0;
    int cap = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 7 || strcmp(e->d_name + l - 6, ".jsonl")) continue;
        if (*n_out == cap) {
            cap = cap ? 2 * cap : 16;
            log_info *v = realloc(*out, sizeof *v * (size_t)cap);
            if (!v) break;
            *out = v;
        }
        log_info *li = &(*out)[(*n_out)++];
        memset(li, 0, sizeof *li);
        snprintf(li->file, sizeof li->file, "%s/%s", BATCH_LOG_DIR, e->d_name);
        char fp[4600];
        snprintf(fp, sizeof fp, "%s/%s", p, e->d_name);
        char *text = batch_read_text(fp, (size_t)1 << 30, NULL);
        for (char *line = text, *next; line && *line; line = next) {
            char *nl = strchr(line, '\n');
            next = nl ? nl + 1 : line + strlen(line);
            if (nl) *nl = '\0';
            cJSON *ev = cJSON_Parse(line);
            const char *kind = str_of(ev, "event");
            if (!strcmp(kind, "start")) {
                li->starts++;
                const char *m = str_of(ev, "manifest");
                if (*m && !*man) *man = strdup(m);
                else if (*m && strcmp(*man, m)) *several = 1;
            } else if (!strcmp(kind, "end")) {
                li->ends++;
            } else if (!strcmp(kind, "case")) {
                li->cases++;
            }
            cJSON_Delete(ev);
        }
        free(text);
    }
    closedir(dp);
    return 0;
}

static int cmp_row(const void *a, const void *b) { return strcmp(((const row *)a)->id, ((const row *)b)->id); }

int batch_summarize(const char *dir, const char *manifest_path, int quiet) {
    oir_error err = {0};
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        oir_fail(&err, OIR_E_ARG, "--summarize %s: no such folder (give the batch's --out folder)", dir);
        return cli_report(CMD, &err);
    }
    manifest m = {0};
    log_info *logs = NULL;
    int n_logs = 0, several = 0, have_m = 0, rc = 0;
    char *log_man = NULL;
    row *rows = NULL;
    int n_rows = 0, cap_rows = 0;
    text_buf csv = {0}, md = {0};
    cJSON *js = NULL;
    read_logs(dir, &logs, &n_logs, &log_man, &several);
    if (!manifest_path && log_man && !several) manifest_path = log_man;
    if (manifest_path) {
        if (manifest_load(&m, manifest_path, &err)) {
            rc = cli_report(CMD, &err);
            goto cleanup;
        }
        have_m = 1;
    } else if (!quiet) {
        fprintf(stderr, "oir %s: warning: %s; the missing cases cannot be listed without the manifest: give "
                "--manifest\n", CMD, several ? "the shard logs name different manifests" : "no manifest given or logged");
    }
    /* the manifest's cases, in order */
    if (have_m && !(rows = calloc((size_t)m.n_cases + 1, sizeof *rows))) {
        oir_fail(&err, OIR_E_NOMEM, "out of memory");
        rc = cli_report(CMD, &err);
        goto cleanup;
    }
    cap_rows = have_m ? m.n_cases + 1 : 0;
    for (int i = 0; have_m && i < m.n_cases; i++) {
        row *r = &rows[n_rows++];
        snprintf(r->id, sizeof r->id, "%s", m.cases[i].id);
        r->where = m.cases[i].where;
        r->in_manifest = 1;
    }
    /* case folders not in it (every one, without a manifest), by name */
    int first_extra = n_rows;
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > MANIFEST_ID_MAX || !strcmp(e->d_name, BATCH_LOG_DIR)) continue;
        if (!batch_case_state(dir, e->d_name)) continue;
        if (have_m && manifest_find(&m, e->d_name) >= 0) continue;
        if (n_rows == cap_rows) {
            cap_rows = cap_rows ? 2 * cap_rows : 64;
            row *v = realloc(rows, sizeof *v * (size_t)cap_rows);
            if (!v) break;
            rows = v;
        }
        row *r = &rows[n_rows++];
        memset(r, 0, sizeof *r);
        memcpy(r->id, e->d_name, strlen(e->d_name) + 1); /* at most MANIFEST_ID_MAX bytes (above) */
        r->where = "";
    }
    if (dp) closedir(dp);
    qsort(rows + first_extra, (size_t)(n_rows - first_extra), sizeof *rows, cmp_row);
    int done = 0, failed = 0, missing = 0, extra = n_rows - first_extra;
    for (int i = 0; i < n_rows; i++) {
        row *r = &rows[i];
        r->state = batch_case_state(dir, r->id);
        done += r->state == 1, failed += r->state == 2, missing += r->state == 0;
        if (!r->state) continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s/%s", dir, r->id, r->state == 1 ? "report.json" : "error.json");
        char *text = batch_read_text(p, BATCH_REPORT_MAX, NULL);
        r->doc = text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    /* the three files */
    static const char *const cols[] = {"id", "where", "status", "image", "target_prompt", "steps", "chosen_steps",
                                       "score_total", "score_edit", "score_background", "reassembly_step", "search",
                                       "seconds_total", "seconds_candidates", "unet_rows", "warnings", "error"};
    const int n_cols = (int)(sizeof cols / sizeof cols[0]);
    for (int c = 0; c < n_cols; c++) tb_csv(&csv, cols[c], c == n_cols - 1);
    js = cJSON_CreateObject();
    cJSON_AddNumberToObject(js, "oir_batch_summary", 1);
    cJSON_AddStringToObject(js, "oir_version", oir_version());
    cJSON_AddStringToObject(js, "dir", dir);
    if (have_m) cJSON_AddStringToObject(js, "manifest", manifest_path);
    else cJSON_AddNullToObject(js, "manifest");
    cJSON *counts = cJSON_AddObjectToObject(js, "counts");
    cJSON_AddNumberToObject(counts, "cases", have_m ? m.n_cases : n_rows);
    cJSON_AddNumberToObject(counts, "done", done);
    cJSON_AddNumberToObject(counts, "failed", failed);
    if (have_m) cJSON_AddNumberToObject(counts, "missing", missing);
    else cJSON_AddNullToObject(counts, "missing");
    cJSON_AddNumberToObject(counts, "not_in_manifest", have_m ? extra : 0);
    cJSON *jmiss = cJSON_AddArrayToObject(js, "missing"), *jfail = cJSON_AddArrayToObject(js, "failed");
    cJSON *jcases = cJSON_AddArrayToObject(js, "cases");
    tb_printf(&md, "# oir batch summary\n\n%s: %d cases%s: %d done, %d failed, ", dir, have_m ? m.n_cases : n_rows,
              have_m ? " in the manifest" : " found (no manifest)", done, failed);
    if (have_m) tb_printf(&md, "%d missing%s", missing, extra ? "" : ".\n");
    else tb_printf(&md, "missing unknown (no manifest).\n");
    if (have_m && extra) tb_printf(&md, "; %d case folders are not in the manifest.\n", extra);
    tb_printf(&md, "\n| id | status | chosen steps (of T) | score (total) | seconds | warnings | error |\n"
                   "|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        row *r = &rows[i];
        const cJSON *d = r->doc;
        const char *status = r->state == 1 ? "done" : r->state == 2 ? "failed" : "missing";
        char steps[32] = "", chosen[256] = "", st[512] = "", se[512] = "", sbk[512] = "", rs[32] = "", secs[32] = "",
             cand[32] = "", rows_s[32] = "";
        const char *error = r->state == 2 ? str_of(d, "error") : "";
        if (r->state == 2 && !*error) error = "(error.json unreadable)";
        if (r->state == 1 && !d) error = "(report.json unreadable)";
        text_buf warn = {0};
        int n_warn = 0;
        if (r->state == 1 && d) {
            snprintf(steps, sizeof steps, "%.0f", num_of(d, "steps", 0));
            pairs_join(d, "chosen_step", chosen, sizeof chosen);
            pairs_join(d, "total", st, sizeof st);
            pairs_join(d, "edit_score", se, sizeof se);
            pairs_join(d, "background_score", sbk, sizeof sbk);
            snprintf(rs, sizeof rs, "%.0f", num_of(d, "reassembly_step", -1));
            snprintf(secs, sizeof secs, "%.2f", num_of(get(d, "seconds"), "total", 0));
            snprintf(cand, sizeof cand, "%.2f", num_of(get(d, "seconds"), "candidates", 0));
            snprintf(rows_s, sizeof rows_s, "%.0f", num_of(d, "unet_rows_total", 0));
            for (const cJSON *w = get(d, "warnings") ? get(d, "warnings")->child : NULL; w; w = w->next)
                if (cJSON_IsString(w)) tb_printf(&warn, "%s%s", n_warn++ ? " | " : "", w->valuestring);
        }
        const char *vals[] = {r->id, r->where, status, r->state == 1 ? str_of(d, "image") : "",
                              r->state == 1 ? str_of(d, "target_prompt") : "", steps, chosen, st, se, sbk, rs,
                              r->state == 1 ? str_of(d, "search") : "", secs, cand, rows_s, warn.s ? warn.s : "", error};
        for (int c = 0; c < n_cols; c++) tb_csv(&csv, vals[c], c == n_cols - 1);
        /* markdown */
        char of[300] = "";
        if (chosen[0]) snprintf(of, sizeof of, "%s (of %s)", chosen, steps);
        char nw[32] = "";
        if (n_warn) snprintf(nw, sizeof nw, "%d", n_warn);
        tb_add(&md, "|", 1);
        const char *mdv[] = {r->id, status, of, st, secs, nw, error};
        for (int c = 0; c < 7; c++) tb_md(&md, mdv[c]);
        tb_add(&md, "\n", 1);
        /* json */
        cJSON *jc = cJSON_CreateObject();
        cJSON_AddStringToObject(jc, "id", r->id);
        cJSON_AddStringToObject(jc, "where", r->where);
        cJSON_AddStringToObject(jc, "status", status);
        cJSON_AddBoolToObject(jc, "in_manifest", !have_m || r->in_manifest);
        if (r->state == 1 && d) {
            cJSON_AddStringToObject(jc, "image", str_of(d, "image"));
            cJSON_AddStringToObject(jc, "target_prompt", str_of(d, "target_prompt"));
            cJSON_AddNumberToObject(jc, "steps", num_of(d, "steps", 0));
            cJSON_AddNumberToObject(jc, "reassembly_step", num_of(d, "reassembly_step", -1));
            cJSON_AddStringToObject(jc, "search", str_of(d, "search"));
            cJSON *jp = cJSON_AddArrayToObject(jc, "pairs");
            for (const cJSON *p = get(d, "pairs") ? get(d, "pairs")->child : NULL; p; p = p->next) {
                int k = (int)num_of(p, "chosen_step", 0);
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "from", str_of(p, "from"));
                cJSON_AddStringToObject(e, "to", str_of(p, "to"));
                cJSON_AddNumberToObject(e, "chosen_step", k);
                cJSON_AddStringToObject(e, "step_from", str_of(p, "step_from"));
                const char *keys[] = {"total", "edit_score", "background_score"};
                for (int q = 0; q < 3; q++) {
                    const cJSON *v = cJSON_GetArrayItem(get(p, keys[q]), k - 1);
                    if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(e, keys[q], v->valuedouble);
                    else cJSON_AddNullToObject(e, keys[q]);
                }
                cJSON_AddItemToArray(jp, e);
            }
            cJSON *jsec = cJSON_AddObjectToObject(jc, "seconds");
            cJSON_AddNumberToObject(jsec, "total", num_of(get(d, "seconds"), "total", 0));
            cJSON_AddNumberToObject(jsec, "candidates", num_of(get(d, "seconds"), "candidates", 0));
            cJSON_AddNumberToObject(jc, "unet_rows_total", num_of(d, "unet_rows_total", 0));
            cJSON *jw = cJSON_AddArrayToObject(jc, "warnings");
            for (const cJSON *w = get(d, "warnings") ? get(d, "warnings")->child : NULL; w; w = w->next)
                if (cJSON_IsString(w)) cJSON_AddItemToArray(jw, cJSON_CreateString(w->valuestring));
        }
        if (*error) cJSON_AddStringToObject(jc, "error", error);
        cJSON_AddItemToArray(jcases, jc);
        if (r->state == 0) cJSON_AddItemToArray(jmiss, cJSON_CreateString(r->id));
        if (r->state == 2) cJSON_AddItemToArray(jfail, cJSON_CreateString(r->id));
        free(warn.s);
    }
    if (have_m && missing) {
        tb_printf(&md, "\nMissing (no folder in %s, or one without report.json / error.json):", dir);
        for (int i = 0; i < n_rows; i++)
            if (!rows[i].state) tb_printf(&md, " %s", rows[i].id);
        tb_printf(&md, "\n");
    }
    cJSON *jl = cJSON_AddArrayToObject(js, "logs");
    int unfinished = 0;
    for (int i = 0; i < n_logs; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "file", logs[i].file);
        cJSON_AddNumberToObject(e, "runs", logs[i].starts);
        cJSON_AddNumberToObject(e, "runs_ended", logs[i].ends);
        cJSON_AddNumberToObject(e, "case_events", logs[i].cases);
        cJSON_AddItemToArray(jl, e);
        unfinished += logs[i].starts - logs[i].ends;
    }
    if (unfinished)
        tb_printf(&md, "\n%d shard run%s started without an end in the logs (killed, or still running).\n", unfinished,
                  unfinished == 1 ? "" : "s");
    char *jtext = cJSON_Print(js);
    text_buf jt = {.s = jtext, .n = jtext ? strlen(jtext) : 0, .oom = !jtext};
    if (write_summary(dir, "summary.csv", "id,where,status,", &csv, &err) ||
        write_summary(dir, "summary.json", "\"oir_batch_summary\"", &jt, &err) ||
        write_summary(dir, "summary.md", "# oir batch summary", &md, &err)) {
        cJSON_free(jtext);
        rc = cli_report(CMD, &err);
        goto cleanup;
    }
    cJSON_free(jtext);
    printf("%s: %d cases%s: %d done, %d failed, ", dir, have_m ? m.n_cases : n_rows,
           have_m ? " in the manifest" : " found", done, failed);
    if (have_m) printf("%d missing\n", missing);
    else printf("missing unknown (no manifest)\n");
    if (have_m && manifest_path == log_man) printf("  manifest %s (from the shard logs)\n", manifest_path);
    if (have_m && extra) printf("  %d case folders are not in the manifest\n", extra);
    if (!quiet) {
        for (int i = 0, shown = 0; i < n_rows; i++)
            if (rows[i].state == 2 && shown++ < 20) printf("  failed:  %s: %s\n", rows[i].id, str_of(rows[i].doc, "error"));
        if (have_m && missing) {
            printf("  missing:");
            int shown = 0;
            for (int i = 0; i < n_rows; i++)
                if (!rows[i].state && shown++ < 50) printf(" %s", rows[i].id);
            printf("%s\n", missing > 50 ? " ..." : "");
        }
        if (unfinished) printf("  %d shard run(s) without an end in %s/%s/ (killed, or still running)\n", unfinished, dir, BATCH_LOG_DIR);
    }
    printf("wrote %s/summary.csv, %s/summary.json, %s/summary.md\n", dir, dir, dir);
    rc = failed || (have_m && missing) ? CLI_EXIT_FAIL : 0;
cleanup:
    for (int i = 0; i < n_rows; i++) cJSON_Delete(rows[i].doc);
    free(rows);
    free(csv.s);
    free(md.s);
    cJSON_Delete(js);
    free(logs);
    free(log_man);
    manifest_free(&m);
    return rc;
}
