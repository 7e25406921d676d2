/* Fuzz target: the YAML edit configurations (`oir edit --config`).
 *
 * The input is a whole YAML file. Covers edit_config_load (libyaml, both the
 * multi_object and single_object schemas, a top-level single case, relative
 * path resolution) and edit_config_free, then what `oir edit` does with each
 * case's text before any model runs: prompt_find_phrase and
 * prompt_substitute for the target and every guided prompt. Invariants: a
 * loaded case has a name, an image path, an origin prompt and at least one
 * pair whose from/to strings are set (mask_path NULL: inferred). */
#include "fuzz_util.h"

#include "edit/prompts.h"
#include "io/edit_config.h"

#define FUZZ_EC_MAX_PAIRS 64

static void fuzz_ec_case(const edit_case *c) {
    oir_error err = {0};
    FUZZ_ASSERT(c->name && c->image_path && c->origin_prompt);
    FUZZ_ASSERT(c->n_pairs >= 1 && c->pairs);
    FUZZ_ASSERT(c->reassembly_step >= -1 && c->reinversion_steps >= -1);
    const char *from[FUZZ_EC_MAX_PAIRS], *to[FUZZ_EC_MAX_PAIRS];
    int use[FUZZ_EC_MAX_PAIRS];
    int n = c->n_pairs < FUZZ_EC_MAX_PAIRS ? c->n_pairs : FUZZ_EC_MAX_PAIRS;
    for (int i = 0; i < n; i++) {
        const edit_config_pair *p = &c->pairs[i];
        FUZZ_ASSERT(p->from && p->to);
        from[i] = p->from;
        to[i] = p->to;
        use[i] = 0;
        prompt_find_phrase(c->origin_prompt, p->from);
        if (p->guided_prompt) prompt_find_phrase(p->guided_prompt, p->to);
    }
    char out[1024], tiny[8];
    prompt_substitute(c->origin_prompt, n, from, to, NULL, out, sizeof out, &err);
    prompt_substitute(c->origin_prompt, n, from, to, NULL, tiny, sizeof tiny, &err);
    for (int i = 0; i < n && i < 4; i++) { /* each pair's guided prompt */
        use[i] = 1;
        prompt_substitute(c->origin_prompt, n, from, to, use, out, sizeof out, &err);
        use[i] = 0;
    }
}

static int fuzz_edit_config_one(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("case.yaml", data, size);
    oir_error err = {0};
    edit_config cfg;
    if (FUZZ_CALL("edit_config_load", edit_config_load(&cfg, path, &err), &err) == OIR_OK) {
        FUZZ_ASSERT(cfg.n_cases >= 1 && cfg.cases);
        for (int i = 0; i < cfg.n_cases; i++) fuzz_ec_case(&cfg.cases[i]);
        edit_config_free(&cfg);
    } else {
        FUZZ_ASSERT(cfg.n_cases == 0 && cfg.cases == NULL);
    }
    edit_config_free(&cfg); /* again: a freed config is empty */
    return 0;
}

FUZZ_ENTRY(fuzz_edit_config_one)
