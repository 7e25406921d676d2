/* Batch manifests (`oir batch --manifest`): the cases of a batch run, read
 * from a JSON-lines file or a folder of the authors' YAML cases.
 *
 * JSON lines: one case a line, a JSON object:
 *
 *   {"id": "dog", "image": "photos/dog.png", "prompt": "a dog next to a gift",
 *    "pairs": [{"from": "dog", "to": "cat", "mask": "masks/dog.png"},
 *              {"from": "gift", "to": "cake", "mask": [300, 260, 470, 420]},
 *              {"from": "hat", "to": "crown", "mask": "auto", "guided": "..."}],
 *    "target": "...", "steps": 50, "guidance": 7.5, "reassembly_step": 10,
 *    "reinversion_steps": 10, "search": "adaptive", "seed": 0,
 *    "low_pick": "lower", "guard": "off", "pick": {"1": 27}}
 *
 * image, prompt and pairs (1..16, each with from and to) are required; the
 * rest is optional and named as the `oir edit` flags (--reassembly-step ->
 * reassembly_step). A pair's mask is a file, a box "x0,y0,x1,y1" or
 * [x0, y0, x1, y1] in the photo's pixels, or "auto" / null / absent
 * (inferred). Relative image and mask paths are resolved against the
 * manifest's folder. Blank lines are skipped; every other line is a case:
 * its index among them decides its shard (index mod N).
 *
 * id: letters, digits, '.', '_' and '-', at most MANIFEST_ID_MAX bytes, not
 * starting with '.', and not one of the names the batch writes beside the
 * case folders (logs, summary.csv, summary.json, summary.md); default
 * "line<N>" with N the line number (4 digits at least). It names the case's
 * output folder. Two cases with the same id (ignoring letter case) make the
 * whole manifest an error naming both lines.
 *
 * A line that cannot run -- not JSON, not an object, an unknown or repeated
 * field, a value of the wrong type or range, an invalid id -- is still a
 * case (with its default id unless its own id is valid): its `error` says
 * why, prefixed with "FILE:LINE: ", and the others are unaffected.
 *
 * A folder: every *.yaml / *.yml file in it (not hidden; sorted by name),
 * read as `oir edit --config` reads it (io/edit_config.h); each case's id is
 * its folder name (edit_case.dir_name, cut to MANIFEST_ID_MAX bytes). A file
 * that does not load is one failing case named after the file.
 *
 * Limits: MANIFEST_MAX_BYTES per file, MANIFEST_MAX_CASES cases. */
#ifndef OIR_IO_MANIFEST_H
#define OIR_IO_MANIFEST_H

#include <stddef.h>

#include "core/error.h"
#include "io/edit_config.h"

#define MANIFEST_MAX_BYTES (64 << 20)
#define MANIFEST_MAX_CASES 100000
#define MANIFEST_ID_MAX 64

typedef struct {
    int index;       /* 0-based position among the cases: its shard is index mod N */
    int line;        /* JSON lines: the 1-based line; a YAML folder: 0 */
    char id[MANIFEST_ID_MAX + 1];
    char *where;     /* "cases.jsonl:7", "cases/a.yaml: case 'c'": for messages */
    char *error;     /* NULL: the case can run; else why not (the whole message) */
    edit_config cfg; /* error == NULL: exactly one case, cfg.cases[0], whose
                        dir_name is id; YAML: with its file's warnings */
} manifest_case;

typedef struct {
    char *path; /* as given */
    int is_folder;
    manifest_case *cases;
    int n_cases;
} manifest;

/* Reads a JSON-lines file or a folder of YAML files (see above). Errors that
 * concern the whole manifest (unreadable, too large, no cases, a repeated
 * id) fail it; errors of one case are kept in that case. */
int manifest_load(manifest *m, const char *path, oir_error *err);
/* The JSON-lines text of a file named name (for messages), relative paths
 * resolved against base_dir ("" = as given). */
int manifest_parse(manifest *m, const char *text, size_t len, const char *name, const char *base_dir,
                   oir_error *err);
void manifest_free(manifest *m);

/* 1 when id may name a case (see above), else 0 and why in why (if given). */
int manifest_id_valid(const char *id, char *why, size_t why_cap);
/* The case with this id (exact), or -1. */
int manifest_find(const manifest *m, const char *id);

#endif
