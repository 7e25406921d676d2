/* Loader, diffusers folders: model_index.json and a folder per component,
 * each with its config.json and the weight files sd_plan_folder chose. */
#include <stdio.h>
#include <string.h>

#include "models/ldm_names.h"
#include "models/loader_impl.h"

/* Opens the planned files of a component and its weights. */
static int open_component(sd_model *m, const sd_component_plan *c, const char *component,
                          const char *variant, weights **w, oir_error *err) {
    if (!c->nfiles) {
        if (c->pickle_only) return loader_refuse_pickle(c->dir, err);
        if (c->variants[0] && !variant)
            return oir_fail(err, OIR_E_IO,
                            "%s: no %s weights; the folder only has the variant(s) %s: load with "
                            "variant \"%s\" (--variant)",
                            c->dir, component, c->variants, c->variants);
        return oir_fail(err, OIR_E_IO, "%s: no %s weights (expected %s.safetensors)", c->dir,
                        component, sd_weights_base(c->library, c->class_name));
    }
    st_file *files[SD_PLAN_MAX_FILES];
    for (int i = 0; i < c->nfiles; i++) {
        int rc = sd_files_open(m->files, c->files[i], &files[i], err);
        if (rc) return rc;
    }
    weights_opts o = {.component = component};
    if (!strcmp(component, "vae")) o.reshape_ok = ldm_vae_reshape_ok;
    int rc = weights_open(w, files, c->nfiles, &o, err);
    if (rc) return rc;
    const char *file = sd_base_name(c->files[0]);
    int is_variant = variant && strstr(file, variant) != NULL;
    sd_note(m, "%s: %s%s%s", component, file, c->nfiles > 1 ? " (+ shards)" : "",
            variant && !is_variant ? " (no variant file, plain weights)" : "");
    return OIR_OK;
}

static int require(const sd_plan *plan, const char *name, const char *class_prefix,
                   const char *dir, const sd_component_plan **out, oir_error *err) {
    const sd_component_plan *c = sd_plan_find(plan, name);
    if (!c)
        return oir_fail(err, OIR_E_MISSING, "%s/model_index.json: no \"%s\" component", dir, name);
    if (strncmp(c->class_name, class_prefix, strlen(class_prefix)))
        return oir_fail(err, OIR_E_UNSUPPORTED,
                        "%s/model_index.json: %s is a %s; only %s is supported", dir, name,
                        c->class_name, class_prefix);
    if (!c->config[0] && strcmp(name, "tokenizer"))
        return oir_fail(err, OIR_E_IO, "%s: no config.json", c->dir);
    *out = c;
    return OIR_OK;
}

int sd_load_diffusers(sd_model *m, const char *path, const sd_load_params *p,
                          oir_error *err) {
    sd_plan plan;
    int rc = sd_plan_folder(&plan, path, p->variant, err);
    if (rc) return rc;
    const sd_component_plan *c;
    if (strstr(plan.class_name, "XL") || sd_plan_find(&plan, "text_encoder_2")) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED,
                      "%s: a %s (Stable Diffusion XL: two text encoders); oir runs Stable Diffusion "
                      "1.x models",
                      path, plan.class_name[0] ? plan.class_name : "SDXL pipeline");
        goto cleanup;
    }
    if (p->components & SD_TEXT_ENCODER) {
        clip_text_config cfg;
        if ((rc = require(&plan, "text_encoder", "CLIPTextModel", path, &c, err)) ||
            (rc = clip_text_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "text_encoder", p->variant, &m->files->text, err)) ||
            (rc = sd_build_text(m, &cfg, err)))
            goto cleanup;
    }
    if (p->components & SD_UNET) {
        unet_config cfg;
        if ((rc = require(&plan, "unet", "UNet2DConditionModel", path, &c, err)) ||
            (rc = unet_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "unet", p->variant, &m->files->unet, err)) ||
            (rc = sd_build_unet(m, &cfg, err)))
            goto cleanup;
    }
    if (p->components & SD_VAE) {
        vae_config cfg;
        if ((rc = require(&plan, "vae", "AutoencoderKL", path, &c, err)) ||
            (rc = vae_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, "vae", p->variant, &m->files->vae, err)) ||
            (rc = sd_build_vae(m, &cfg, err)))
            goto cleanup;
    }
    c = sd_plan_find(&plan, "scheduler");
    if ((rc = sd_load_scheduler(m, c && c->config[0] ? c->config : NULL,
                                "SD 1.x defaults (no scheduler/scheduler_config.json)", err)))
        goto cleanup;
    if (p->components & SD_TOKENIZER) {
        c = sd_plan_find(&plan, "tokenizer");
        /* no "tokenizer" in model_index.json: the built-in vocabulary if it fits */
        if ((rc = sd_load_tokenizer(m, c ? c->dir : NULL, p->tokenizer_mode, err))) goto cleanup;
    }
cleanup:
    sd_plan_free(&plan);
    return rc;
}

/* The class each component folder must hold (its config.json _class_name). */
static const char *component_class(int component) {
    switch (component) {
    case SD_UNET: return "UNet2DConditionModel";
    case SD_VAE: return "AutoencoderKL";
    case SD_TEXT_ENCODER: return "CLIPTextModel";
    default: return NULL;
    }
}

int sd_load_component_folder(sd_model *m, const char *dir, int component, const char *variant,
                             oir_error *err) {
    const char *cls = component_class(component);
    if (!cls)
        return oir_fail(err, OIR_E_ARG, "sd_component_load: component %d is not SD_UNET, SD_VAE or "
                                        "SD_TEXT_ENCODER", component);
    const char *name = component == SD_UNET ? "unet" : component == SD_VAE ? "vae" : "text_encoder";
    sd_plan plan;
    int rc = sd_plan_folder(&plan, dir, variant, err);
    if (rc) return rc;
    const sd_component_plan *c = &plan.comp[0];
    if (plan.n < 1 || strncmp(c->class_name, cls, strlen(cls))) {
        rc = oir_fail(err, OIR_E_UNSUPPORTED, "%s: a %s folder, not a %s", dir,
                      plan.n ? c->class_name : "component", cls);
        goto cleanup;
    }
    if (!c->config[0]) {
        rc = oir_fail(err, OIR_E_IO, "%s: no config.json", dir);
        goto cleanup;
    }
    if (component == SD_UNET) {
        unet_config cfg;
        if ((rc = unet_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, name, variant, &m->files->unet, err)) ||
            (rc = sd_build_unet(m, &cfg, err)))
            goto cleanup;
    } else if (component == SD_VAE) {
        vae_config cfg;
        if ((rc = vae_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, name, variant, &m->files->vae, err)) ||
            (rc = sd_build_vae(m, &cfg, err)))
            goto cleanup;
    } else {
        clip_text_config cfg;
        m->text_projection = strstr(c->class_name, "WithProjection") != NULL;
        if ((rc = clip_text_config_load(&cfg, c->config, err)) ||
            (rc = open_component(m, c, name, variant, &m->files->text, err)) ||
            (rc = sd_build_text(m, &cfg, err)))
            goto cleanup;
    }
cleanup:
    sd_plan_free(&plan);
    return rc;
}
