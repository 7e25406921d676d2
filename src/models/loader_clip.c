/* Loader, the CLIP scorer: a Hugging Face CLIPModel folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/loader_impl.h"
#include "models/model_config.h"

struct clip_model_files {
    st_file *files[SD_PLAN_MAX_FILES];
    int nfiles;
    weights *w;
};

int clip_model_share_device(clip_model *m, const sd_model *sd, oir_error *err) {
    snprintf(m->device, sizeof m->device, "cpu");
    if (!sd || !sd->backend) return OIR_OK;
    int rc = clip_text_bind(m->text, sd->backend, err);
    if (!rc) rc = clip_vision_bind(m->vision, sd->backend, err);
    if (rc) { /* both back on CPU backends of their own */
        oir_error ignore;
        clip_text_bind(m->text, NULL, &ignore);
        return oir_error_prefix(err, "%s", m->path);
    }
    snprintf(m->device, sizeof m->device, "%s", sd->device);
    return OIR_OK;
}

const char *clip_model_device(const clip_model *m) { return m && m->device[0] ? m->device : "cpu"; }

void clip_model_free(clip_model *m) {
    if (!m) return;
    tokenizer_free(m->tokenizer);
    clip_text_free(m->text);
    clip_vision_free(m->vision);
    if (m->files) {
        weights_free(m->files->w);
        for (int i = 0; i < m->files->nfiles; i++) st_close(m->files->files[i]);
        free(m->files);
    }
    free(m);
}

int clip_model_load(clip_model **out, const char *dir, oir_error *err) {
    *out = NULL;
    sd_plan plan = {0};
    clip_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    }
    snprintf(m->path, sizeof m->path, "%s", dir);
    int rc = OIR_OK;
    model_path_kind kind = model_path_detect(dir);
    if (kind == MODEL_PATH_PICKLE) {
        rc = loader_refuse_pickle(dir, err);
        goto cleanup;
    }
    char cfg[1200];
    model_config mc;
    if (kind != MODEL_PATH_CLIP && sd_is_dir(dir) && sd_join(cfg, sizeof cfg, dir, "config.json") &&
        sd_is_file(cfg)) { /* a config.json that does not read: say why */
        if ((rc = model_config_read(&mc, cfg, err))) goto cleanup;
        model_config_free(&mc);
    }
    if (kind != MODEL_PATH_CLIP) {
        rc = oir_fail(err, sd_is_dir(dir) ? OIR_E_FORMAT : OIR_E_IO,
                      "%s: not a Hugging Face CLIP folder (config.json with model_type \"clip\")",
                      dir);
        goto cleanup;
    }
    if ((rc = sd_plan_folder(&plan, dir, NULL, err))) goto cleanup;
    const sd_component_plan *c = &plan.comp[0];
    if (!c->nfiles) {
        rc = c->pickle_only ? loader_refuse_pickle(dir, err)
                            : oir_fail(err, OIR_E_IO, "%s: no model.safetensors", dir);
        goto cleanup;
    }
    for (int i = 0; i < c->nfiles; i++) {
        if ((rc = st_open(&m->files->files[i], c->files[i], err))) goto cleanup;
        m->files->nfiles++;
    }
    weights_opts o = {.component = "clip"};
    clip_text_config tc;
    clip_vision_config vc;
    if ((rc = weights_open(&m->files->w, m->files->files, m->files->nfiles, &o, err)) ||
        (rc = clip_text_config_load(&tc, c->config, err)) ||
        (rc = clip_vision_config_load(&vc, c->config, err)) ||
        (rc = clip_text_load(&m->text, &tc, m->files->w, 1, err)) ||
        (rc = clip_vision_load(&m->vision, &vc, m->files->w, 1, err)))
        goto cleanup;
    weights_ignore(m->files->w, "text_model.embeddings.position_ids");
    weights_ignore(m->files->w, "vision_model.embeddings.position_ids");
    weights_ignore(m->files->w, "logit_scale"); /* the scorer uses plain cosines */
    if ((rc = weights_finish(m->files->w, err))) goto cleanup;
    if ((rc = tokenizer_load(&m->tokenizer, dir, err))) goto cleanup;
    if (tokenizer_vocab_size(m->tokenizer) > tc.vocab_size) {
        rc = oir_fail(err, OIR_E_SHAPE, "%s: the tokenizer has %d ids, the text model's vocab_size is %d",
                      dir, tokenizer_vocab_size(m->tokenizer), tc.vocab_size);
        goto cleanup;
    }
    char p[1200];
    if (sd_join(p, sizeof p, dir, "preprocessor_config.json") && sd_is_file(p))
        rc = clip_preprocess_config_load(&m->preprocess, p, err);
    else
        m->preprocess = clip_preprocess_config_default();
cleanup:
    sd_plan_free(&plan);
    if (rc) {
        clip_model_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int clip_model_unused_count(const clip_model *m) { return weights_unused_count(m->files->w); }
const char *clip_model_unused_at(const clip_model *m, int i) {
    return weights_unused_at(m->files->w, i);
}
