/* Fuzz target: batch manifests in JSON lines (`oir batch --manifest`).
 *
 * The input is the whole text of a manifest. Covers manifest_parse (cJSON
 * per line, every field's type and range checks, ids, boxes, picks, the
 * repeated-id check) and manifest_free. Invariants: every case has a valid
 * id (its own or line<N>), a where and its index; a case without an error
 * holds exactly one edit case whose strings are set, with 1..16 pairs; no
 * two ids are equal ignoring case; a failed parse leaves the manifest
 * empty. The parser reads no files (relative paths are only joined). */
#include <strings.h>

#include "fuzz_util.h"

#include "io/manifest.h"

static int fuzz_manifest_one(const uint8_t *data, size_t size) {
    oir_error err = {0};
    manifest m;
    if (FUZZ_CALL("manifest_parse", manifest_parse(&m, (const char *)data, size, "cases.jsonl", "base", &err), &err) ==
        OIR_OK) {
        FUZZ_ASSERT(m.n_cases >= 1 && m.cases);
        for (int i = 0; i < m.n_cases; i++) {
            const manifest_case *c = &m.cases[i];
            FUZZ_ASSERT(c->index == i && c->line >= 1 && c->where);
            FUZZ_ASSERT(manifest_id_valid(c->id, NULL, 0));
            if (c->error) {
                FUZZ_ASSERT(c->cfg.n_cases == 0 && !strncmp(c->error, c->where, strlen(c->where)));
                continue;
            }
            FUZZ_ASSERT(c->cfg.n_cases == 1 && c->cfg.cases);
            const edit_case *e = &c->cfg.cases[0];
            FUZZ_ASSERT(e->name && e->dir_name && !strcmp(e->dir_name, c->id) && e->image_path && e->origin_prompt);
            FUZZ_ASSERT(e->n_pairs >= 1 && e->n_pairs <= 16 && e->n_pick <= EDIT_CONFIG_MAX_PICKS);
            for (int k = 0; k < e->n_pairs; k++) FUZZ_ASSERT(e->pairs[k].from && e->pairs[k].to);
            FUZZ_ASSERT(manifest_find(&m, c->id) == i);
        }
        for (int i = 0; i < m.n_cases && i < 64; i++)
            for (int j = i + 1; j < m.n_cases && j < 64; j++) FUZZ_ASSERT(strcasecmp(m.cases[i].id, m.cases[j].id));
        manifest_free(&m);
    } else {
        FUZZ_ASSERT(m.n_cases == 0 && m.cases == NULL);
    }
    manifest_free(&m); /* again: a freed manifest is empty */
    return 0;
}

FUZZ_ENTRY(fuzz_manifest_one)
