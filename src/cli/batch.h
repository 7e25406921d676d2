/* oir batch: many cases from a manifest (io/manifest.h), one model load per
 * process, a folder per case, shards, resume, and a summary over all shards.
 *
 * Layout of --out DIR:
 *   DIR/<id>/                  a finished case: the files of `oir edit` and
 *                              report.json; a failed case: error.json; both
 *                              written beside and renamed into place
 *                              (io/outputs.h), so a killed process never
 *                              leaves a folder that looks finished
 *   DIR/logs/shard-I-of-N.jsonl  a JSON object a line per event of shard I
 *                              (start, each case, end), appended
 *   DIR/.oir-batch/<id>.lock   held (flock) while a process runs the case
 *   DIR/summary.{csv,json,md}  oir batch --summarize DIR */
#ifndef OIR_CLI_BATCH_H
#define OIR_CLI_BATCH_H

#include <stddef.h>

#include "core/error.h"

#define BATCH_LOG_DIR "logs"
#define BATCH_STATE_DIR ".oir-batch"

/* "I/N": shard I of N, 0 <= I < N (counted from 0, as Slurm array ids). */
int batch_parse_shard(const char *spec, int *index, int *count, oir_error *err);
/* The shard of a Slurm array task: (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN)
 * / SLURM_ARRAY_TASK_STEP of SLURM_ARRAY_TASK_COUNT (MIN 0 and STEP 1 when
 * unset). *found = 0 (shard 0/1) when SLURM_ARRAY_TASK_ID is not set. */
int batch_shard_from_env(int *index, int *count, int *found, oir_error *err);

/* oir batch --summarize DIR [--manifest M]: writes DIR/summary.csv,
 * summary.json and summary.md; returns the exit status (0: every case of
 * the manifest finished; 1: some failed or are missing; 2: usage). */
int batch_summarize(const char *dir, const char *manifest_path, int quiet);

/* 1 when DIR/<id> is a finished case (its marker and report.json), 2 when a
 * failed one (marker and error.json), 0 otherwise. */
int batch_case_state(const char *dir, const char *id);

/* The whole of a regular file of at most cap bytes, NUL-terminated (its
 * length in *len if given); NULL when missing, larger or unreadable. */
#define BATCH_REPORT_MAX (64 << 20)
char *batch_read_text(const char *path, size_t cap, size_t *len);

#endif
