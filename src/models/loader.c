/* Loader, the Stable Diffusion model: sd_model_load picks the source
 * (diffusers folder: loader_diffusers.c; single-file checkpoint:
 * loader_single.c; one component's folder: sd_component_load there), and
 * this file holds what every source shares: building the models from their
 * weights, the tokenizer and scheduler, the cross-component checks, the
 * unused-tensor list, the UNet's device, freeing. What is where (paths,
 * plans, pickle refusal): loader_plan.c. The CLIP scorer: loader_clip.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/loader_impl.h"
#include "models/model_config.h"

sd_load_params sd_load_default_params(void) {
    sd_load_params p = {.variant = NULL, .config_dir = NULL, .tokenizer_dir = NULL,
                        .components = SD_ALL, .tokenizer_mode = TOKENIZER_CLIP};
    return p;
}

/* ---- model bookkeeping ---------------------------------------------------- */

void sd_note(sd_model *m, const char *fmt, ...) {
    if (m->n_notes >= (int)(sizeof m->notes / sizeof m->notes[0])) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->notes[m->n_notes++], sizeof m->notes[0], fmt, ap);
    va_end(ap);
}

int sd_files_open(sd_model_files *mf, const char *path, st_file **out, oir_error *err) {
    if (mf->nfiles >= SD_MAX_OPEN)
        return oir_fail(err, OIR_E_ARG, "%s: more than %d weight files", path, SD_MAX_OPEN);
    if (sd_is_pickle_name(path)) return loader_refuse_pickle(path, err);
    int rc = st_open(out, path, err);
    if (rc) return rc;
    mf->files[mf->nfiles++] = *out;
    return OIR_OK;
}


int sd_load_tokenizer(sd_model *m, const char *dir, tokenizer_mode mode, oir_error *err) {
    if (!dir) { /* the built-in vocabulary, when it fits the text encoder */
        int V = m->text_encoder ? clip_text_get_config(m->text_encoder)->vocab_size : 0;
        if (m->text_encoder && V < 49408) {
            sd_note(m, "tokenizer: none (no tokenizer folder, and the built-in CLIP vocabulary's "
                       "49408 ids do not fit the text encoder's %d)", V);
            return OIR_OK;
        }
        int rc = tokenizer_load_builtin(&m->tokenizer, err);
        if (rc) return rc;
        tokenizer_set_mode(m->tokenizer, mode);
        sd_note(m, "tokenizer: %s (49408 ids), %s mode", TOKENIZER_BUILTIN_NAME, tokenizer_mode_name(mode));
        return OIR_OK;
    }
    int rc = tokenizer_load(&m->tokenizer, dir, err);
    if (rc) return rc;
    tokenizer_set_mode(m->tokenizer, mode);
    if (m->text_encoder) {
        int V = clip_text_get_config(m->text_encoder)->vocab_size;
        int n = tokenizer_vocab_size(m->tokenizer);
        if (n > V)
            return oir_fail(err, OIR_E_SHAPE,
                            "%s: the tokenizer has %d ids but the text encoder's vocabulary has %d "
                            "(vocab_size): they do not belong together",
                            dir, n, V);
    }
    sd_note(m, "tokenizer: %s (%d ids), %s mode", dir, tokenizer_vocab_size(m->tokenizer),
            tokenizer_mode_name(mode));
    return OIR_OK;
}

int sd_load_scheduler(sd_model *m, const char *config, const char *default_note, oir_error *err) {
    if (!config) {
        m->scheduler = ddim_sd1_config();
        sd_note(m, "scheduler: %s", default_note);
        return OIR_OK;
    }
    int rc = ddim_config_load(&m->scheduler, config, err);
    if (rc == OIR_OK) sd_note(m, "scheduler: %s (as DDIM)", config);
    return rc;
}

int sd_build_text(sd_model *m, const clip_text_config *cfg, oir_error *err) {
    weights *w = m->files->text;
    int rc = clip_text_load(&m->text_encoder, cfg, w, m->text_projection, err);
    if (rc) return rc;
    weights_ignore(w, "text_model.embeddings.position_ids"); /* a buffer, not a parameter */
    return weights_finish(w, err);
}

int sd_build_unet(sd_model *m, const unet_config *cfg, oir_error *err) {
    int rc = unet_load_config(&m->unet, cfg, m->files->unet, err);
    return rc ? rc : weights_finish(m->files->unet, err);
}

int sd_build_vae(sd_model *m, const vae_config *cfg, oir_error *err) {
    int rc = vae_load_config(&m->vae, cfg, m->files->vae, err);
    return rc ? rc : weights_finish(m->files->vae, err);
}

int sd_check_components(sd_model *m, oir_error *err) {
    if (m->text_encoder && m->unet) {
        int D = clip_text_get_config(m->text_encoder)->hidden_size;
        if (D != m->unet->cfg.cross_attention_dim)
            return oir_fail(err, OIR_E_SHAPE,
                            "%s: the text encoder's hidden_size %d differs from the unet's "
                            "cross_attention_dim %d",
                            m->path, D, m->unet->cfg.cross_attention_dim);
    }
    if (m->unet && m->vae) {
        int L = m->vae->cfg.latent_channels;
        if (m->unet->cfg.in_channels != L || m->unet->cfg.out_channels != L)
            return oir_fail(err, OIR_E_UNSUPPORTED,
                            "%s: the unet takes %d and gives %d channels but the vae's latents have "
                            "%d (latent_channels)%s",
                            m->path, m->unet->cfg.in_channels, m->unet->cfg.out_channels, L,
                            m->unet->cfg.in_channels > L ? ": an inpainting or depth model? Only "
                                                           "text-to-image SD 1.x UNets are supported"
                                                         : "");
    }
    return OIR_OK;
}

/* "unet: name" strings for every unused tensor. */
static int collect_unused(sd_model_files *mf, oir_error *err) {
    weights *ws[3] = {mf->text, mf->unet, mf->vae};
    int total = 0;
    for (int k = 0; k < 3; k++) total += ws[k] ? weights_unused_count(ws[k]) : 0;
    if (!total) return OIR_OK;
    mf->unused = calloc((size_t)total, sizeof *mf->unused);
    if (!mf->unused) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    for (int k = 0; k < 3; k++) {
        if (!ws[k]) continue;
        for (int i = 0; i < weights_unused_count(ws[k]); i++) {
            const char *name = weights_unused_at(ws[k], i);
            size_t n = strlen(name) + strlen(weights_component(ws[k])) + 3;
            char *s = malloc(n);
            if (!s) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
            snprintf(s, n, "%s: %s", weights_component(ws[k]), name);
            mf->unused[mf->n_unused++] = s;
        }
    }
    return OIR_OK;
}

static void files_free(sd_model_files *mf) {
    if (!mf) return;
    weights_free(mf->text);
    weights_free(mf->unet);
    weights_free(mf->vae);
    for (int i = 0; i < mf->nfiles; i++) st_close(mf->files[i]);
    for (int i = 0; i < mf->n_unused; i++) free(mf->unused[i]);
    free(mf->unused);
    free(mf);
}

void sd_model_free(sd_model *m) {
    if (!m) return;
    tokenizer_free(m->tokenizer);
    clip_text_free(m->text_encoder);
    unet_free(m->unet); /* frees its buffers on the backend first */
    vae_free(m->vae);
    files_free(m->files);
    if (m->backend) be_destroy(m->backend);
    free(m);
}

const char *sd_model_device(const sd_model *m, const char *component) {
    if (!m || !component || !m->backend) return "cpu";
    oir_backend *be = !strcmp(component, "unet")           ? unet_backend(m->unet)
                      : !strcmp(component, "vae")          ? vae_backend(m->vae)
                      : !strcmp(component, "text_encoder") ? clip_text_backend(m->text_encoder)
                                                           : NULL;
    return be && be == m->backend ? m->device : "cpu";
}

/* The UNet, the VAE and the text encoder onto p->device, one backend
 * (models/unet.h unet_bind, vae_bind, clip_text_bind). */
static int place_unet(sd_model *m, const char *device, oir_error *err) {
    snprintf(m->device, sizeof m->device, "cpu");
    if (!device || !(m->unet || m->vae || m->text_encoder)) return OIR_OK;
    be_device_spec spec;
    int rc = be_parse_device(device, &spec, err);
    if (rc || spec.kind == BE_CPU) return rc;
    if ((rc = be_create(&m->backend, &spec, err))) {
        oir_error_prefix(err, "device %s", device);
        return rc;
    }
    if ((m->unet && (rc = unet_bind(m->unet, m->backend, err))) ||
        (m->vae && (rc = vae_bind(m->vae, m->backend, err))) ||
        (m->text_encoder && (rc = clip_text_bind(m->text_encoder, m->backend, err))))
        return rc;
    snprintf(m->device, sizeof m->device, "vulkan:%d", spec.index);
    return OIR_OK;
}

/* A model to fill for `path`, with its (empty) file table; NULL when out of memory. */
static sd_model *model_new(const char *path) {
    sd_model *m = calloc(1, sizeof *m);
    if (!m || !(m->files = calloc(1, sizeof *m->files))) {
        free(m);
        return NULL;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    return m;
}

/* After a source filled m (rc: how that went): the cross-component checks,
 * the unused tensors, the UNet's device; *out = m, or m freed on failure. */
static int model_finish(sd_model **out, sd_model *m, const char *device, int rc, oir_error *err) {
    if (rc == OIR_OK) rc = sd_check_components(m, err);
    if (rc == OIR_OK) rc = collect_unused(m->files, err);
    if (rc == OIR_OK) rc = place_unet(m, device, err);
    if (rc) {
        sd_model_free(m);
        return rc;
    }
    *out = m;
    return OIR_OK;
}

int sd_model_load(sd_model **out, const char *path, const sd_load_params *params,
                  oir_error *err) {
    *out = NULL;
    sd_load_params p = params ? *params : sd_load_default_params();
    if (!p.components) p.components = SD_ALL;
    if (p.variant && !p.variant[0]) p.variant = NULL;
    sd_model *m = model_new(path);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    int rc = OIR_OK;
    switch (model_path_detect(path)) {
    case MODEL_PATH_PICKLE: rc = loader_refuse_pickle(path, err); break;
    case MODEL_PATH_DIFFUSERS:
        m->source = SD_SOURCE_DIFFUSERS;
        rc = sd_load_diffusers(m, path, &p, err);
        break;
    case MODEL_PATH_SINGLE_FILE:
        m->source = SD_SOURCE_SINGLE_FILE;
        rc = sd_load_single(m, path, &p, err);
        break;
    case MODEL_PATH_COMPONENT:
    case MODEL_PATH_CLIP:
        rc = oir_fail(err, OIR_E_FORMAT,
                      "%s: one model's folder, not a Stable Diffusion pipeline: give the folder "
                      "that holds model_index.json, or a single-file .safetensors checkpoint",
                      path);
        break;
    default:
        if (!sd_is_file(path) && !sd_is_dir(path)) {
            struct stat sb;
            if (stat(path, &sb) == 0)
                rc = oir_fail(err, OIR_E_IO, "%s: not a regular file or a folder", path);
            else
                rc = oir_fail(err, OIR_E_IO, "%s: no such file or folder", path);
        } else {
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s: neither a diffusers folder (no model_index.json) nor a .safetensors "
                          "checkpoint",
                          path);
        }
    }
    return model_finish(out, m, p.device, rc, err);
}

int sd_component_load(sd_model **out, const char *dir, int component, const sd_load_params *params,
                      oir_error *err) {
    *out = NULL;
    sd_load_params p = params ? *params : sd_load_default_params();
    if (p.variant && !p.variant[0]) p.variant = NULL;
    sd_model *m = model_new(dir);
    if (!m) return oir_fail(err, OIR_E_NOMEM, "loader: out of memory");
    int rc = OIR_OK;
    m->source = SD_SOURCE_COMPONENT;
    switch (model_path_detect(dir)) {
    case MODEL_PATH_COMPONENT: rc = sd_load_component_folder(m, dir, component, p.variant, err); break;
    case MODEL_PATH_PICKLE: rc = loader_refuse_pickle(dir, err); break;
    default:
        if (!sd_is_dir(dir) && !sd_is_file(dir))
            rc = oir_fail(err, OIR_E_IO, "%s: no such folder", dir);
        else
            rc = oir_fail(err, OIR_E_FORMAT,
                          "%s: not one model's folder (config.json with _class_name and its weights)",
                          dir);
    }
    return model_finish(out, m, p.device, rc, err);
}

int sd_model_unused_count(const sd_model *m) { return m->files->n_unused; }
const char *sd_model_unused_at(const sd_model *m, int i) {
    return i >= 0 && i < m->files->n_unused ? m->files->unused[i] : NULL;
}
int sd_model_other_count(const sd_model *m) { return m->files->other_count; }

const weights *sd_model_weights(const sd_model *m, const char *component) {
    if (!strcmp(component, "unet")) return m->files->unet;
    if (!strcmp(component, "vae")) return m->files->vae;
    if (!strcmp(component, "text_encoder")) return m->files->text;
    return NULL;
}

/* sample_size of <dir>/<comp>/config.json, 0 when absent (int or [n, n]). */
static int config_sample_size(const char *dir, const char *comp, int *out, oir_error *err) {
    char path[1200];
    *out = 0;
    if (snprintf(path, sizeof path, "%s/%s/config.json", dir, comp) >= (int)sizeof path)
        return OIR_OK;
    struct stat sb;
    if (stat(path, &sb) != 0) return OIR_OK;
    model_config c;
    int rc = model_config_read(&c, path, err);
    if (rc) return rc;
    int v[2] = {0, 0}, n = 0, is_list = 0;
    rc = model_config_ints(&c, "sample_size", v, 2, &n, &is_list, err);
    model_config_free(&c);
    if (rc) return rc;
    if (n == 2 && v[0] != v[1])
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s: sample_size [%d, %d] is not square; give the size explicitly", path, v[0], v[1]);
    if (n >= 1 && v[0] > 0 && v[0] > CFG_MAX_IMAGE_SIZE)
        return oir_fail(err, OIR_E_FORMAT, "%s: sample_size = %d, expected at most %d", path, v[0],
                        CFG_MAX_IMAGE_SIZE);
    if (n >= 1 && v[0] > 0) *out = v[0];
    return OIR_OK;
}

int sd_model_native_size(const sd_model *m, const char *config_dir, int *size, oir_error *err) {
    int f = vae_downscale(&m->vae->cfg);
    *size = 64 * f;
    const char *dir = m->source == SD_SOURCE_DIFFUSERS ? m->path : config_dir;
    if (!dir) return OIR_OK;
    int s = 0, rc = config_sample_size(dir, "unet", &s, err);
    if (rc) return rc;
    if (s > 0) {
        if ((long long)s * f > CFG_MAX_IMAGE_SIZE)
            return oir_fail(err, OIR_E_FORMAT,
                            "%s/unet/config.json: sample_size %d x the VAE factor %d = %lld pixels, "
                            "expected at most %d",
                            dir, s, f, (long long)s * f, CFG_MAX_IMAGE_SIZE);
        *size = s * f;
        return OIR_OK;
    }
    if ((rc = config_sample_size(dir, "vae", &s, err))) return rc;
    if (s > 0) *size = s;
    return OIR_OK;
}
