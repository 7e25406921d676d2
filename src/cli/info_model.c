/* oir info FOLDER: what the loader finds in a model folder (diffusers
 * pipeline, one component, Hugging Face CLIP): components, configs, the
 * weight files it would read, their dtypes and parameter counts, variants. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "diffusion/ddim.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "models/model_config.h"
#include "models/tokenizer.h"

int info_model_folder(const char *path, oir_error *err);

/* Config keys worth a line, per component kind. */
static const char *const unet_keys[] = {"in_channels", "out_channels", "block_out_channels",
                                        "layers_per_block", "down_block_types", "up_block_types",
                                        "attention_head_dim", "cross_attention_dim",
                                        "norm_num_groups", "use_linear_projection", "sample_size",
                                        NULL};
static const char *const vae_keys[] = {"block_out_channels", "layers_per_block", "latent_channels",
                                       "norm_num_groups", "scaling_factor", "sample_size", NULL};
static const char *const text_keys[] = {"hidden_size", "num_hidden_layers", "num_attention_heads",
                                        "intermediate_size", "vocab_size", "max_position_embeddings",
                                        "hidden_act", "projection_dim", NULL};
static const char *const clip_keys[] = {"projection_dim", NULL};
static const char *const clip_sub_keys[] = {"hidden_size", "num_hidden_layers", "num_attention_heads",
                                            "image_size", "patch_size", "vocab_size", NULL};

static void print_keys(const cJSON *root, const char *const *keys, const char *indent,
                       const char *label) {
    char line[1024];
    size_t used = 0;
    line[0] = 0;
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (!v) continue;
        char *s = cJSON_PrintUnformatted(v);
        if (!s) continue;
        int k = snprintf(line + used, sizeof line - used, "%s%s %s", used ? ", " : "", keys[i], s);
        if (k > 0 && used + (size_t)k < sizeof line) used += (size_t)k;
        cJSON_free(s);
    }
    if (used) printf("%s%-9s %s\n", indent, label, line);
}

static void print_config(const sd_component_plan *c) {
    const char *ind = "      ";
    if (!c->config[0]) {
        printf("%s%-9s none\n", ind, "config");
        return;
    }
    if (strstr(c->class_name, "Scheduler")) {
        ddim_config d;
        oir_error e = {0};
        if (ddim_config_load(&d, c->config, &e) == OIR_OK)
            printf("%s%-9s %s: %s %g..%g, %d train steps, steps_offset %d, set_alpha_to_one %s, "
                   "clip_sample %s (read as DDIM)\n",
                   ind, "config", c->config,
                   d.beta_schedule == DDIM_BETA_SCALED_LINEAR ? "scaled_linear" : "linear",
                   d.beta_start, d.beta_end, d.num_train_timesteps, d.steps_offset,
                   d.set_alpha_to_one ? "true" : "false", d.clip_sample ? "true" : "false");
        else
            printf("%s%-9s %s: not usable: %s\n", ind, "config", c->config, e.message);
        return;
    }
    model_config mc;
    oir_error e = {0};
    if (model_config_read(&mc, c->config, &e) != OIR_OK) {
        printf("%s%-9s %s\n", ind, "config", e.message);
        return;
    }
    printf("%s%-9s %s\n", ind, "config", c->config);
    const char *cls = c->class_name;
    if (strstr(cls, "UNet")) print_keys(mc.root, unet_keys, ind, "");
    else if (strstr(cls, "Autoencoder")) print_keys(mc.root, vae_keys, ind, "");
    else if (!strcmp(c->name, "clip") || !strcmp(cls, "CLIPModel") || !strcmp(cls, "clip")) {
        print_keys(mc.root, clip_keys, ind, "");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(mc.root, "text_config");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(mc.root, "vision_config");
        if (t) print_keys(t, clip_sub_keys, ind, "text");
        if (v) print_keys(v, clip_sub_keys, ind, "vision");
    } else if (strstr(cls, "CLIPText")) print_keys(mc.root, text_keys, ind, "");
    model_config_free(&mc);
}

/* Tensor count, parameters, bytes and dtype mix of a component's files. */
static void print_weights(const sd_component_plan *c) {
    const char *ind = "      ";
    if (!c->nfiles) {
        if (c->pickle_only)
            printf("%s%-9s only pickle files (.bin/.ckpt): oir does not load them; convert them "
                   "to safetensors\n",
                   ind, "weights");
        else
            printf("%s%-9s none found\n", ind, "weights");
        if (c->variants[0]) printf("%s%-9s %s\n", ind, "variants", c->variants);
        return;
    }
    long long params = 0, tensors = 0, by_type[DT_COUNT] = {0};
    double bytes = 0;
    for (int i = 0; i < c->nfiles; i++) {
        st_file *f = NULL;
        oir_error e = {0};
        if (st_open(&f, c->files[i], &e) != OIR_OK) {
            printf("%s%-9s %s\n", ind, "weights", e.message);
            return;
        }
        for (int k = 0; k < st_count(f); k++) {
            const tensor *t = st_tensor_at(f, k);
            params += tensor_numel(t);
            bytes += (double)tensor_nbytes(t);
            by_type[t->type]++;
        }
        tensors += st_count(f);
        st_close(f);
    }
    const char *name = strrchr(c->files[0], '/');
    printf("%s%-9s %s%s: %lld tensors, %.2f M parameters, %.1f MiB (", ind, "weights",
           name ? name + 1 : c->files[0], c->nfiles > 1 ? " + shards" : "", tensors, params / 1e6,
           bytes / 1048576.0);
    int first = 1;
    for (int t = 0; t < DT_COUNT; t++)
        if (by_type[t]) {
            printf("%s%s %lld", first ? "" : ", ", dtype_name((dtype)t), by_type[t]);
            first = 0;
        }
    printf(")\n");
    if (c->variants[0]) printf("%s%-9s %s\n", ind, "variants", c->variants);
}

static const char *kind_name(model_path_kind k) {
    switch (k) {
    case MODEL_PATH_DIFFUSERS: return "diffusers pipeline";
    case MODEL_PATH_COMPONENT: return "model component";
    case MODEL_PATH_CLIP: return "Hugging Face CLIP model";
    case MODEL_PATH_PICKLE: return "pickle weights";
    default: return "unknown";
    }
}

int info_model_folder(const char *path, oir_error *err) {
    sd_plan plan;
    int rc = sd_plan_folder(&plan, path, NULL, err);
    if (rc) return rc;
    printf("\ncomponents of %s (%s%s%s):\n", path, kind_name(plan.kind), plan.class_name[0] ? " " : "",
           plan.class_name);
    for (int i = 0; i < plan.n; i++) {
        const sd_component_plan *c = &plan.comp[i];
        printf("  %-14s %s%s%s%s\n", c->name, c->class_name, c->library[0] ? " (" : "", c->library,
               c->library[0] ? ")" : "");
        print_config(c);
        if (strstr(c->class_name, "Tokenizer")) {
            printf("      %-9s %s (vocab.json, merges.txt)\n", "files", c->dir);
            continue;
        }
        if (strstr(c->class_name, "Scheduler") || strstr(c->class_name, "FeatureExtractor") ||
            strstr(c->class_name, "ImageProcessor"))
            continue;
        print_weights(c);
    }
    int has_tok = 0;
    for (int i = 0; i < plan.n; i++) has_tok |= !strcmp(plan.comp[i].name, "tokenizer");
    if (plan.kind == MODEL_PATH_CLIP)
        printf("  %-14s %s (vocab.json, merges.txt)\n", "tokenizer", path);
    else if (plan.kind == MODEL_PATH_DIFFUSERS && !has_tok)
        printf("  %-14s %s (no tokenizer folder; used when it fits the text encoder)\n",
               "tokenizer", TOKENIZER_BUILTIN_NAME);
    sd_plan_free(&plan);
    return OIR_OK;
}
