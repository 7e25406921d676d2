/* oir batch: the cases of a manifest (a JSON-lines file or a folder of YAML
 * cases) on one model load, each into its own folder of --out, spread over
 * shards (--shard I/N, or a Slurm array's variables), resumable (--resume),
 * a failing case recorded and the batch going on; --summarize merges every
 * shard's results into one table (batch_summary.c). See cli/batch.h for the
 * layout of the output folder. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/batch.h"
#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_mask.h"
#include "cli/cli_plan.h"
#include "cli/edit_run.h"
#include "cli/progress.h"
#include "core/clock.h"
#include "io/manifest.h"
#include "io/outputs.h"
#include "io/outfile.h"

#define CMD "batch"

static void usage(FILE *to) {
    fprintf(to,
            "usage: oir batch --manifest CASES.jsonl|FOLDER --out DIR [--shard I/N] [--resume | --overwrite] [options]\n"
            "       oir batch --summarize DIR [--manifest CASES.jsonl|FOLDER]\n\n"
            "Runs every case of a manifest with one model load, each into its own folder DIR/<id>/\n"
            "(the files of oir edit: edited.png, report.json, pair sheets), written beside it and\n"
            "renamed into place when complete, so a killed run never leaves a case that looks finished.\n"
            "A case that fails is recorded in DIR/<id>/error.json and the batch goes on; the exit status\n"
            "is 1 when any case failed.\n\n"
            "manifest:\n"
            "  --manifest PATH        a JSON-lines file, one case a line:\n"
            "                           {\"id\": \"dog\", \"image\": \"dog.png\", \"prompt\": \"a dog next to a gift\",\n"
            "                            \"pairs\": [{\"from\": \"dog\", \"to\": \"cat\", \"mask\": \"dog_mask.png\"},\n"
            "                                      {\"from\": \"gift\", \"to\": \"cake\", \"mask\": [300, 260, 470, 420]}]}\n"
            "                         optional: id (default line<N>), target, pairs[].guided, pairs[].mask\n"
            "                         (a file, a box \"x0,y0,x1,y1\" or [x0, y0, x1, y1], or \"auto\"; absent:\n"
            "                         auto), steps, guidance, reassembly_step, reinversion_steps, search,\n"
            "                         seed, low_pick, guard, pick; relative paths are resolved against the\n"
            "                         manifest's folder; an unknown field fails that line's case, named by\n"
            "                         its line number. Or a folder of the authors' YAML files (*.yaml,\n"
            "                         *.yml; as oir edit --config): a case per YAML case, its id the case's\n"
            "                         folder name\n"
            "shards and restarts:\n"
            "  --out DIR              the batch's folder (made if missing; its parent must exist); every\n"
            "                         shard writes into the same one\n"
            "  --shard I/N            run the cases whose index (0-based, blank lines not counted) mod N\n"
            "                         is I, 0 <= I < N. Default: the Slurm array task\n"
            "                         (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT),\n"
            "                         else 0/1 (every case)\n"
            "  --resume               skip the shard's finished cases (DIR/<id>/ with report.json); failed\n"
            "                         and unfinished ones run again. Without --resume or --overwrite a\n"
            "                         shard whose cases already have folders in DIR is refused\n"
            "  --overwrite            run every case of the shard again, replacing its folder\n"
            "  --plan                 print each case's plan and the total, run nothing\n"
            "summary:\n"
            "  --summarize DIR        merge every shard's cases into DIR/summary.csv, summary.json and\n"
            "                         summary.md (per case: chosen steps, scores, times, warnings, errors)\n"
            "                         and list the manifest's cases that have no folder (missing); the\n"
            "                         manifest is --manifest, else the one the shard logs name. Exit 1\n"
            "                         when a case failed or is missing\n"
            "method, models and output (as oir edit; a flag wins over a case's own value):\n"
            "  --steps N  --guidance G  --reassembly-step R  --reinversion-steps J  --search NAME[:P]\n"
            "  --low-pick MODE  --guard MARGIN|off  --seed S  --size N|WxH  --serial  --budget-mb MB\n"
            "  --mask-method M  --mask-threshold X  --mask-dilate PX\n"
            "  --model PATH  --clip PATH  --variant fp16  --tokenizer-mode M  --threads N\n"
            "  --device cpu|vulkan[:N]\n"
            "  --save-candidates  --quiet  --no-calibrate  --recalibrate\n\n"
            "Progress: a line per case on stderr with the cases done and the ETA (unless --quiet);\n"
            "DIR/logs/shard-I-of-N.jsonl records every case's outcome, a JSON object a line.\n"
            "Cluster and one-machine recipes (sbatch array, GNU parallel, xargs): docs/cluster.md.\n");
}

/* ------------------------------------------------------------- shards */

static int parse_count(const char *s, long *v) {
    if (!*s || strlen(s) > 9) return -1;
    long x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        x = x * 10 + (*s - '0');
    }
    *v = x;
    return 0;
}

int batch_parse_shard(const char *spec, int *index, int *count, oir_error *err) {
    const char *slash = strchr(spec, '/');
    char a[32];
    long i = 0, n = 0;
    size_t la = slash ? (size_t)(slash - spec) : 0;
    if (!slash || la >= sizeof a)
        return oir_fail(err, OIR_E_ARG, "--shard '%s': expected I/N, shard I of N counted from 0 (0 <= I < N), e.g. "
                        "--shard 0/4 ... --shard 3/4", spec);
    memcpy(a, spec, la);
    a[la] = '\0';
    if (parse_count(a, &i) || parse_count(slash + 1, &n))
        return oir_fail(err, OIR_E_ARG, "--shard '%s': expected I/N with whole numbers, shard I of N counted from 0 "
                        "(0 <= I < N), e.g. --shard 0/4 ... --shard 3/4", spec);
    if (n < 1 || n > 1000000)
        return oir_fail(err, OIR_E_ARG, "--shard '%s': the number of shards N must be 1..1000000", spec);
    if (i >= n)
        return oir_fail(err, OIR_E_ARG, "--shard '%s': the shard I must be below N: shards are counted from 0, so "
                        "the %ld shards are 0/%ld ... %ld/%ld", spec, n, n, n - 1, n);
    *index = (int)i;
    *count = (int)n;
    return OIR_OK;
}

static int env_long(const char *name, long def, long *v, oir_error *err) {
    const char *s = getenv(name);
    if (!s || !*s) {
        *v = def;
        return OIR_OK;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*end || errno || x < 0 || x > 100000000)
        return oir_fail(err, OIR_E_ARG, "$%s '%s': expected a whole number (Slurm sets it for array jobs)", name, s);
    *v = x;
    return OIR_OK;
}

int batch_shard_from_env(int *index, int *count, int *found, oir_error *err) {
    *index = 0, *count = 1, *found = 0;
    const char *id = getenv("SLURM_ARRAY_TASK_ID");
    if (!id || !*id) return OIR_OK;
    long task = 0, n = 0, lo = 0, step = 1;
    int rc;
    if ((rc = env_long("SLURM_ARRAY_TASK_ID", 0, &task, err)) || (rc = env_long("SLURM_ARRAY_TASK_MIN", 0, &lo, err)) ||
        (rc = env_long("SLURM_ARRAY_TASK_STEP", 1, &step, err)) || (rc = env_long("SLURM_ARRAY_TASK_COUNT", -1, &n, err)))
        return rc;
    if (n < 1)
        return oir_fail(err, OIR_E_ARG, "$SLURM_ARRAY_TASK_ID is %ld but $SLURM_ARRAY_TASK_COUNT is not set: give "
                        "--shard I/N", task);
    if (step < 1) step = 1;
    if (task < lo || (task - lo) % step || (task - lo) / step >= n)
        return oir_fail(err, OIR_E_ARG,
                        "$SLURM_ARRAY_TASK_ID %ld is not one of the array's tasks (min %ld, step %ld, count %ld: "
                        "min, min + step, ...): give --shard I/N (e.g. --array=0-%ld and no --shard)",
                        task, lo, step, n, n - 1);
    *index = (int)((task - lo) / step);
    *count = (int)n;
    *found = 1;
    return OIR_OK;
}

/* ------------------------------------------------------- case folders */

static char *join3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) + 1 : 0) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

static int is_file(const char *dir, const char *id, const char *name) {
    char *p = join3(dir, id, name);
    struct stat sb;
    int ok = p && lstat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return ok;
}

int batch_case_state(const char *dir, const char *id) {
    if (!is_file(dir, id, OUTPUT_DIR_MARKER)) return 0;
    if (is_file(dir, id, "report.json")) return 1;
    return is_file(dir, id, "error.json") ? 2 : 0;
}

static int stale_name(const char *name, const char *id) {
    size_t l = strlen(id), n = strlen(name);
    if (n != l + 12 || name[0] != '.' || strncmp(name + 1, id, l) || name[l + 1] != '.' || strcmp(name + n - 4, ".tmp"))
        return 0;
    for (size_t i = l + 2; i < l + 8; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9'))) return 0;
    return 1;
}

/* The temp folders of case id that a killed process left in dir (only
 * called while holding the case's lock, so none is a live run's). */
static int remove_stale(const char *dir, const char *id) {
    DIR *dp = opendir(dir);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));) {
        if (!stale_name(e->d_name, id)) continue;
        char *p = join3(dir, e->d_name, NULL);
        struct stat sb;
        if (p && lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) output_remove_tree(p), n++;
        free(p);
    }
    if (dp) closedir(dp);
    return n;
}

/* ------------------------------------------------------------ the run */

typedef struct {
    edit_opts o;
    const char *manifest, *out, *shard, *summarize;
    int resume, overwrite;
    int shard_i, shard_n;
    manifest m;
    oir_context *ctx;
    oir_context_params cp;
    progress_bar bar;
    progress_cases pc;
    int log_fd, log_warned, lock_warned;
    char host[256];
} batch;

static void iso_now(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One event into the shard's log (one write, appended); a failing log is
 * warned about once, never fatal. Takes ownership of ev. */
static void log_event(batch *b, cJSON *ev) {
    char when[32];
    iso_now(when, sizeof when);
    cJSON_AddStringToObject(ev, "time", when);
    char *text = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    if (!text || b->log_fd < 0) {
        free(text);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the terminator: written by length */
    ssize_t w = write(b->log_fd, text, n + 1);
    if (w != (ssize_t)(n + 1) && !b->log_warned) {
        fprintf(stderr, "oir %s: warning: cannot append to the shard log (%s); the batch goes on\n", CMD,
                w < 0 ? strerror(errno) : "short write");
        b->log_warned = 1;
    }
    free(text);
}

/* flock on DIR/.oir-batch/<id>.lock: the fd (>= 0), -1 busy, -2 no locking
 * here (the run goes on without it). */
static int lock_case(batch *b, const char *id) {
    char name[MANIFEST_ID_MAX + 8];
    snprintf(name, sizeof name, "%s.lock", id);
    char *p = join3(b->out, BATCH_STATE_DIR, name);
    int fd = p ? open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644) : -1;
    int e = errno;
    free(p);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    if (fd >= 0) e = errno;
    if (fd >= 0) close(fd);
    if (fd >= 0 && e == EWOULDBLOCK) return -1;
    if (!b->lock_warned)
        fprintf(stderr, "oir %s: warning: cannot lock cases in %s/%s (%s): do not run the same shard twice at once\n",
                CMD, b->out, BATCH_STATE_DIR, strerror(e));
    b->lock_warned = 1;
    return -2;
}

/* The message of a failing case, prefixed with where it comes from. */
static void case_error(const manifest_case *mc, int jsonl, oir_error *err) {
    if (!strncmp(err->message, mc->where, strlen(mc->where))) return; /* already says so */
    if (jsonl) oir_error_prefix(err, "%s: case '%s'", mc->where, mc->id);
    else oir_error_prefix(err, "%s", mc->where);
}

/* The chosen steps of a finished case, from its report.json ("3, 17"). */
static void chosen_steps(const char *dir, const char *id, char *buf, size_t cap, cJSON *into) {
    buf[0] = '\0';
    char *p = join3(dir, id, "report.json");
    char *text = p ? batch_read_text(p, BATCH_REPORT_MAX, NULL) : NULL;
    free(p);
    if (!text) return;
    cJSON *r = cJSON_Parse(text);
    cJSON *pairs = cJSON_GetObjectItemCaseSensitive(r, "pairs"), *steps = cJSON_GetObjectItemCaseSensitive(r, "steps");
    cJSON *arr = into ? cJSON_AddArrayToObject(into, "chosen_steps") : NULL;
    size_t at = 0;
    for (cJSON *e = pairs ? pairs->child : NULL; e; e = e->next) {
        cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "chosen_step");
        if (!cJSON_IsNumber(k)) continue;
        if (arr) cJSON_AddItemToArray(arr, cJSON_CreateNumber(k->valuedouble));
        if (at < cap) at += (size_t)snprintf(buf + at, cap - at, "%s%d", at ? ", " : "", k->valueint);
    }
    if (at && at < cap && cJSON_IsNumber(steps)) snprintf(buf + at, cap - at, " of %d", steps->valueint);
    cJSON_Delete(r);
    free(text);
}

/* error.json in DIR/<id>/ (the failure record), replacing what is there. */
static int record_failure(batch *b, const manifest_case *mc, const output_input *in, int n_in, const oir_error *e,
                          double seconds, oir_error *err) {
    output_dir od = {0};
    char *path = join3(b->out, mc->id, NULL);
    if (!path) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    int rc = cli_begin_out_dir(&od, path, in, n_in, err);
    free(path);
    if (rc) return rc;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "oir_version", oir_version());
    cJSON_AddStringToObject(j, "command", CMD);
    cJSON_AddStringToObject(j, "case", mc->id);
    cJSON_AddStringToObject(j, "status", "failed");
    cJSON_AddStringToObject(j, "manifest", b->manifest);
    cJSON_AddStringToObject(j, "where", mc->where);
    if (mc->line) cJSON_AddNumberToObject(j, "line", mc->line);
    cJSON_AddStringToObject(j, "error", e->message);
    cJSON_AddStringToObject(j, "error_code", oir_status_name(e->code));
    char sh[32];
    snprintf(sh, sizeof sh, "%d/%d", b->shard_i, b->shard_n);
    cJSON_AddStringToObject(j, "shard", sh);
    cJSON_AddStringToObject(j, "host", b->host);
    cJSON_AddNumberToObject(j, "seconds", seconds);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *p = text ? output_dir_path(&od, "error.json", err) : NULL;
    rc = !text ? oir_fail(err, OIR_E_NOMEM, "out of memory") : !p ? err->code : outfile_write(p, text, strlen(text), err);
    free(p);
    cJSON_free(text);
    char note[1200];
    if (!rc) rc = output_dir_commit(&od, note, sizeof note, err);
    output_dir_abort(&od);
    return rc;
}

/* Runs one case (its lock held): 0 done, else the case's error in err. */
static int run_one(batch *b, const manifest_case *mc, output_input *in, int *n_in, oir_error *err) {
    int jsonl = !b->m.is_folder, rc;
    if (mc->error) return oir_fail(err, OIR_E_FORMAT, "%s", mc->error);
    const edit_case *ec = &mc->cfg.cases[0];
    if (ec->n_pairs > 16)
        return oir_fail(err, OIR_E_ARG, "%s: %d pairs (at most 16)", mc->where, ec->n_pairs);
    edit_case_spec s;
    memset(&s, 0, sizeof s);
    edit_spec_from_case(&s, ec, NULL);
    s.case_from = jsonl ? "manifest" : "yaml";
    char where[700];
    snprintf(where, sizeof where, jsonl ? "%s: case '%s'" : "%s", mc->where, mc->id);
    if ((rc = edit_spec_resolve(&s, &b->o, where, 1, err))) return rc;
    /* its inputs: readable, and none inside its output folder */
    in[(*n_in)++] = (output_input){s.image_path, jsonl ? "image" : "image_path"};
    if ((rc = cli_check_input_file(jsonl ? "image" : "image_path", s.image_path, err))) return rc;
    for (int j = 0; j < s.n; j++) {
        if (cli_mask_is_auto(s.mask_spec[j]) || edit_is_box(s.mask_spec[j])) continue;
        char what[64];
        snprintf(what, sizeof what, jsonl ? "pairs[%d].mask" : "prompt_change_mask", j + 1);
        in[(*n_in)++] = (output_input){s.mask_spec[j], jsonl ? "a mask (pairs[].mask)" : "prompt_change_mask"};
        if ((rc = cli_check_input_file(what, s.mask_spec[j], err))) return rc;
    }
    edit_opts o = b->o;
    o.cfg = &mc->cfg; /* a YAML file's warnings go into report.json */
    if (o.plan_only) return edit_run_case(CMD, 0, b->ctx, &s, &o, NULL, NULL, &b->bar, err);
    output_dir od = {0};
    char *path = join3(b->out, mc->id, NULL);
    if (!path) return oir_fail(err, OIR_E_NOMEM, "out of memory");
    rc = cli_begin_out_dir(&od, path, in, *n_in, err);
    free(path);
    if (!rc) rc = edit_run_case(CMD, 0, b->ctx, &s, &o, &od, NULL, &b->bar, err);
    char note[1200];
    if (!rc) rc = output_dir_commit(&od, note, sizeof note, err);
    output_dir_abort(&od); /* no-op after a commit */
    if (!rc && note[0]) fprintf(stderr, "oir %s: warning: %s\n", CMD, note);
    return rc;
}

typedef struct {
    int run, done, failed, skipped, busy;
} batch_counts;

static void one_case(batch *b, const manifest_case *mc, int k, int n, batch_counts *cnt) {
    const char *status = "done";
    char steps[128] = "", line[512];
    oir_error err = {0};
    double t0 = clock_wall_s();
    int fd = b->o.plan_only ? -2 : lock_case(b, mc->id), ran = 0, failed = 0;
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "case");
    cJSON_AddStringToObject(ev, "id", mc->id);
    cJSON_AddNumberToObject(ev, "index", mc->index);
    cJSON_AddStringToObject(ev, "where", mc->where);
    if (fd == -1) {
        status = "busy";
        cnt->busy++;
    } else {
        if (!b->o.plan_only) remove_stale(b->out, mc->id);
        int state = b->o.plan_only ? 0 : batch_case_state(b->out, mc->id);
        if (state == 1 && !b->overwrite) { /* --resume (or finished meanwhile by another process) */
            status = "skipped";
            cnt->skipped++;
        } else {
            output_input in[24] = {{b->manifest, "--manifest"}, {b->cp.model_path, "--model"}, {b->cp.clip_path, "--clip"},
                                   {getenv("OIR_TOKENIZER"), "$OIR_TOKENIZER"}};
            int n_in = 4;
            ran = 1;
            cnt->run++;
            if (run_one(b, mc, in, &n_in, &err) == OIR_OK) {
                cnt->done++;
                if (!b->o.plan_only) chosen_steps(b->out, mc->id, steps, sizeof steps, ev);
            } else {
                failed = 1;
                cnt->failed++;
                status = "failed";
                case_error(mc, !b->m.is_folder, &err);
                fprintf(stderr, "oir %s: %s\n", CMD, err.message);
                oir_error e2 = {0};
                if (!b->o.plan_only && record_failure(b, mc, in, n_in, &err, clock_wall_s() - t0, &e2))
                    fprintf(stderr, "oir %s: %s: the failure could not be recorded in %s/%s/error.json: %s\n", CMD,
                            mc->id, b->out, mc->id, e2.message);
            }
        }
        if (fd >= 0) close(fd); /* releases the lock */
    }
    double secs = clock_wall_s() - t0;
    cJSON_AddStringToObject(ev, "status", status);
    cJSON_AddNumberToObject(ev, "seconds", secs);
    if (failed) cJSON_AddStringToObject(ev, "error", err.message);
    if (!b->o.plan_only) log_event(b, ev);
    else cJSON_Delete(ev);
    progress_cases_step(&b->pc, ran, failed, secs);
    if (b->o.quiet || b->o.plan_only) return;
    char prog[160];
    progress_cases_text(&b->pc, prog, sizeof prog);
    const char *what = !strcmp(status, "done")    ? "done"
                       : !strcmp(status, "failed") ? "FAILED (above)"
                       : !strcmp(status, "busy")   ? "skipped: another process is running it"
                                                   : "skipped: finished before (--resume)";
    snprintf(line, sizeof line, "oir %s: shard %d/%d [%d/%d] %s: %s", CMD, b->shard_i, b->shard_n, k, n, mc->id, what);
    if (ran && !failed) fprintf(stderr, "%s in %.1f s%s%s%s; %s\n", line, secs, steps[0] ? " (chosen steps " : "", steps,
                                steps[0] ? ")" : "", prog);
    else fprintf(stderr, "%s; %s\n", line, prog);
}

/* DIR, DIR/logs and DIR/.oir-batch (several shards may make them at once). */
static int make_dirs(batch *b, oir_error *err) {
    struct stat sb;
    if (mkdir(b->out, 0755) != 0 && errno != EEXIST)
        return oir_fail(err, errno == ENOENT ? OIR_E_ARG : OIR_E_IO, "--out %s: cannot create the folder (%s)%s", b->out,
                        strerror(errno), errno == ENOENT ? "; its parent folder must exist" : "");
    if (lstat(b->out, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return oir_fail(err, OIR_E_ARG, "--out %s is not a folder; give the batch's folder", b->out);
    const char *sub[] = {BATCH_LOG_DIR, BATCH_STATE_DIR};
    for (int i = 0; i < 2; i++) {
        char *p = join3(b->out, sub[i], NULL);
        int ok = p && (mkdir(p, 0755) == 0 || errno == EEXIST) && lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
        free(p);
        if (!ok)
            return oir_fail(err, OIR_E_IO, "--out %s: cannot create the folder %s/%s (%s)", b->out, b->out, sub[i],
                            strerror(errno));
    }
    return OIR_OK;
}

/* Without --resume / --overwrite: the shard's cases must have no folders yet. */
static int check_fresh(batch *b, oir_error *err) {
    int n = 0, shown = 0, mine = 0;
    char list[600] = "";
    size_t at = 0;
    for (int i = 0; i < b->m.n_cases; i++) {
        const manifest_case *mc = &b->m.cases[i];
        if (mc->index % b->shard_n != b->shard_i) continue;
        mine++;
        char *p = join3(b->out, mc->id, NULL);
        struct stat sb;
        int there = p && lstat(p, &sb) == 0;
        free(p);
        if (!there) continue;
        n++;
        if (shown < 5 && at < sizeof list) at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", shown ? ", " : "", mc->id), shown++;
    }
    if (!n) return OIR_OK;
    return oir_fail(err, OIR_E_ARG,
                    "--out %s already holds folders of %d of this shard's %d cases (%s%s): --resume skips the "
                    "finished ones and runs the rest (failed ones again), --overwrite runs them all again",
                    b->out, n, mine, list, n > shown ? ", ..." : "");
}

static int run_batch(batch *b) {
    oir_error err = {0};
    int rc = OIR_OK;
    if (manifest_load(&b->m, b->manifest, &err)) return cli_report(CMD, &err);
    int mine = 0, bad_lines = 0;
    for (int i = 0; i < b->m.n_cases; i++)
        if (b->m.cases[i].index % b->shard_n == b->shard_i) mine++, bad_lines += b->m.cases[i].error != NULL;
    if (!b->o.plan_only) {
        if ((rc = make_dirs(b, &err)) || (!b->resume && !b->overwrite && (rc = check_fresh(b, &err)))) {
            rc = cli_report(CMD, &err);
            goto cleanup;
        }
    }
    if (edit_context_params(&b->cp, &b->o, &err) || oir_context_load(&b->ctx, &b->cp, &err) ||
        edit_check_size(&b->o, b->ctx, &err)) {
        rc = cli_report(CMD, &err);
        goto cleanup;
    }
    if (gethostname(b->host, sizeof b->host) != 0) snprintf(b->host, sizeof b->host, "?");
    b->host[sizeof b->host - 1] = '\0';
    b->log_fd = -1;
    if (!b->o.plan_only) {
        char name[96];
        snprintf(name, sizeof name, "shard-%d-of-%d.jsonl", b->shard_i, b->shard_n);
        char *p = join3(b->out, BATCH_LOG_DIR, name);
        b->log_fd = p ? open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644) : -1;
        if (b->log_fd < 0) fprintf(stderr, "oir %s: warning: cannot open the shard log %s (%s)\n", CMD, p ? p : "", strerror(errno));
        free(p);
        cJSON *ev = cJSON_CreateObject();
        char *abs = realpath(b->manifest, NULL);
        cJSON_AddStringToObject(ev, "event", "start");
        cJSON_AddStringToObject(ev, "oir_version", oir_version());
        cJSON_AddStringToObject(ev, "manifest", abs ? abs : b->manifest);
        free(abs);
        cJSON_AddNumberToObject(ev, "manifest_cases", b->m.n_cases);
        cJSON_AddNumberToObject(ev, "shard", b->shard_i);
        cJSON_AddNumberToObject(ev, "shards", b->shard_n);
        cJSON_AddNumberToObject(ev, "cases", mine);
        cJSON_AddBoolToObject(ev, "resume", b->resume);
        cJSON_AddBoolToObject(ev, "overwrite", b->overwrite);
        cJSON_AddStringToObject(ev, "host", b->host);
        cJSON_AddNumberToObject(ev, "pid", (double)getpid());
        cJSON_AddStringToObject(ev, "model", oir_context_describe(b->ctx));
        cJSON_AddNumberToObject(ev, "threads", oir_get_threads());
        log_event(b, ev);
    }
    if (!b->o.quiet && !b->o.plan_only) {
        char note[96] = "";
        if (bad_lines) snprintf(note, sizeof note, " (%d of them cannot run: their errors follow)", bad_lines);
        fprintf(stderr, "oir %s: shard %d/%d: %d of the %d cases of %s%s\n", CMD, b->shard_i, b->shard_n, mine,
                b->m.n_cases, b->manifest, note);
    }
    progress_init(&b->bar, b->o.quiet);
    progress_cases_init(&b->pc, mine, b->o.quiet);
    batch_counts cnt = {0};
    int k = 0;
    double t0 = clock_wall_s();
    for (int i = 0; i < b->m.n_cases; i++) {
        const manifest_case *mc = &b->m.cases[i];
        if (mc->index % b->shard_n != b->shard_i) continue;
        one_case(b, mc, ++k, mine, &cnt);
        fflush(stdout);
    }
    if (b->o.plan_only) {
        char d[64] = "", rows[32];
        cli_format_duration(d, sizeof d, edit_plan_sum.seconds);
        cli_format_count(rows, sizeof rows, edit_plan_sum.rows);
        int all = edit_plan_sum.estimated == edit_plan_sum.cases && edit_plan_sum.cases > 0;
        printf("total: %d cases -> %s UNet rows, %d decodes%s%s%s\n", edit_plan_sum.cases, rows, edit_plan_sum.decodes,
               all ? "; about " : "", all ? d : "", all ? " in all" : "");
        rc = cnt.failed ? CLI_EXIT_FAIL : 0;
        goto cleanup;
    }
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "event", "end");
    cJSON_AddNumberToObject(ev, "done", cnt.done);
    cJSON_AddNumberToObject(ev, "failed", cnt.failed);
    cJSON_AddNumberToObject(ev, "skipped", cnt.skipped);
    cJSON_AddNumberToObject(ev, "busy", cnt.busy);
    cJSON_AddNumberToObject(ev, "seconds", clock_wall_s() - t0);
    log_event(b, ev);
    char busy[96] = "";
    if (cnt.busy) snprintf(busy, sizeof busy, ", %d skipped (another process was running them)", cnt.busy);
    printf("shard %d/%d: %d cases: %d done, %d failed, %d skipped (finished before)%s; a folder per case in %s/, "
           "log %s/%s/shard-%d-of-%d.jsonl\n",
           b->shard_i, b->shard_n, mine, cnt.done, cnt.failed, cnt.skipped, busy, b->out, b->out, BATCH_LOG_DIR,
           b->shard_i, b->shard_n);
    if (cnt.failed) {
        fprintf(stderr, "oir %s: %d of %d cases failed (their errors are in %s/<id>/error.json):", CMD, cnt.failed, mine,
                b->out);
        int shown = 0;
        for (int i = 0; i < b->m.n_cases && shown < 20; i++) {
            const manifest_case *mc = &b->m.cases[i];
            if (mc->index % b->shard_n == b->shard_i && batch_case_state(b->out, mc->id) == 2)
                fprintf(stderr, " %s", mc->id), shown++;
        }
        fprintf(stderr, "%s\n", cnt.failed > shown ? " ..." : "");
        rc = CLI_EXIT_FAIL;
    }
cleanup:
    if (b->log_fd >= 0) close(b->log_fd);
    oir_context_free(b->ctx);
    manifest_free(&b->m);
    return rc;
}

int cmd_batch(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    batch b;
    memset(&b, 0, sizeof b);
    b.log_fd = -1;
    edit_opts *o = &b.o;
    o->guidance = -1, o->reassembly = -1, o->reinversion = -1, o->budget_mb = 2048;
    o->mask_threshold = -1, o->mask_dilate = -1;
    o->no_summary = 1;
    const cli_opt opts[] = {
        {"--manifest", CLI_STR, &b.manifest, 0, 0},    {"--out", CLI_STR, &b.out, 0, 0},
        {"--shard", CLI_STR, &b.shard, 0, 0},          {"--resume", CLI_FLAG, &b.resume, 0, 0},
        {"--overwrite", CLI_FLAG, &b.overwrite, 0, 0}, {"--summarize", CLI_STR, &b.summarize, 0, 0},
        {"--plan", CLI_FLAG, &o->plan_only, 0, 0},
        {"--steps", CLI_INT, &o->steps, 1, 1000},      {"--guidance", CLI_FLOAT, &o->guidance, 0, 100},
        {"--reassembly-step", CLI_INT, &o->reassembly, 0, 1000},
        {"--reinversion-steps", CLI_INT, &o->reinversion, 0, 1000},
        {"--serial", CLI_FLAG, &o->serial, 0, 0},      {"--budget-mb", CLI_INT, &o->budget_mb, 1, 1 << 20},
        {"--seed", CLI_STR, &o->seed_arg, 0, 0},       {"--model", CLI_STR, &o->model, 0, 0},
        {"--clip", CLI_STR, &o->clip, 0, 0},           {"--variant", CLI_STR, &o->variant, 0, 0},
        {"--threads", CLI_INT, &o->threads, 0, 1024},  {"--quiet", CLI_FLAG, &o->quiet, 0, 0},
        {"--save-candidates", CLI_FLAG, &o->save_candidates, 0, 0},
        {"--tokenizer-mode", CLI_STR, &o->tokenizer_mode, 0, 0},
        {"--search", CLI_STR, &o->search, 0, 0},
        {"--low-pick", CLI_STR, &o->low_pick, 0, 0},   {"--guard", CLI_STR, &o->guard, 0, 0},
        {"--size", CLI_STR, &o->size, 0, 0},
        {"--no-calibrate", CLI_FLAG, &o->no_calibrate, 0, 0},
        {"--recalibrate", CLI_FLAG, &o->recalibrate, 0, 0},
        {"--mask-method", CLI_STR, &o->mask_method, 0, 0},
        {"--mask-threshold", CLI_FLOAT, &o->mask_threshold, 0, 1},
        {"--mask-dilate", CLI_INT, &o->mask_dilate, 0, 64},
        {"--device", CLI_STR, &o->device, 0, 0},
    };
    oir_error err = {0};
    if (cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL, &err)) return cli_report(CMD, &err);
    if (b.summarize) {
        /* only --manifest (and --quiet) go with --summarize */
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strncmp(a, "--", 2)) continue;
            size_t l = strcspn(a, "=");
            if ((l == 11 && !strncmp(a, "--summarize", l)) || (l == 10 && !strncmp(a, "--manifest", l))) {
                if (!a[l]) i++; /* its value */
                continue;
            }
            if (!strcmp(a, "--quiet")) continue;
            oir_fail(&err, OIR_E_ARG, "--summarize DIR takes only --manifest (to list the missing cases); %.*s is "
                     "for running a batch", (int)l, a);
            return cli_report(CMD, &err);
        }
        return batch_summarize(b.summarize, b.manifest, o->quiet);
    }
    if (!b.manifest) {
        oir_fail(&err, OIR_E_ARG, "needs --manifest CASES.jsonl|FOLDER and --out DIR (or --summarize DIR); see oir batch --help");
        return cli_report(CMD, &err);
    }
    if (!b.out && !o->plan_only) {
        oir_fail(&err, OIR_E_ARG, "needs --out DIR: the batch's folder, shared by all its shards");
        return cli_report(CMD, &err);
    }
    if (b.resume && b.overwrite) {
        oir_fail(&err, OIR_E_ARG, "--resume skips finished cases and --overwrite runs them again: give one of them");
        return cli_report(CMD, &err);
    }
    if (b.shard) {
        if (batch_parse_shard(b.shard, &b.shard_i, &b.shard_n, &err)) return cli_report(CMD, &err);
    } else {
        int found;
        if (batch_shard_from_env(&b.shard_i, &b.shard_n, &found, &err)) return cli_report(CMD, &err);
    }
    if (o->seed_arg && cli_parse_u64("--seed", o->seed_arg, &o->seed, &err)) return cli_report(CMD, &err);
    if (o->size && edit_parse_size(o->size, o, &err)) return cli_report(CMD, &err);
    if (edit_parse_flags(o, &err)) return cli_report(CMD, &err);
    cli_set_threads(o->threads);
    return run_batch(&b);
}
