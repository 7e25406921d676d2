/* Internal to the loader: loader.c (the model, shared building),
 * loader_plan.c (paths and folder plans), loader_diffusers.c (diffusers and
 * component folders), loader_single.c (single-file checkpoints),
 * loader_clip.c (the CLIP scorer). */
#ifndef OIR_MODELS_LOADER_IMPL_H
#define OIR_MODELS_LOADER_IMPL_H

#include "models/loader.h"

#define SD_MAX_OPEN 128

struct sd_model_files {
    st_file *files[SD_MAX_OPEN];
    int nfiles;
    weights *text, *unet, *vae;
    int other_count; /* single file: tensors outside the three models */
    char **unused;   /* "unet: <name>", built once loading succeeded */
    int n_unused;
};

void sd_note(sd_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Opens a safetensors file, kept open (and closed) with the model. */
int sd_files_open(sd_model_files *mf, const char *path, st_file **out, oir_error *err);
/* Loads a tokenizer folder and checks its ids fit the text encoder (if
 * loaded); dir NULL: the built-in CLIP vocabulary if it fits the text
 * encoder, else no tokenizer (a note says why). Sets the mode. */
int sd_load_tokenizer(sd_model *m, const char *dir, tokenizer_mode mode, oir_error *err);
/* Builds each requested model from its weights and finishes the weights
 * (fails on missing / mis-shaped tensors); then the cross-component checks. */
int sd_build_text(sd_model *m, const clip_text_config *cfg, oir_error *err);
int sd_build_unet(sd_model *m, const unet_config *cfg, oir_error *err);
int sd_build_vae(sd_model *m, const vae_config *cfg, oir_error *err);
int sd_check_components(sd_model *m, oir_error *err);
/* m->scheduler from a scheduler_config.json, or (config NULL) SD 1.x's with
 * the note "scheduler: <default_note>". */
int sd_load_scheduler(sd_model *m, const char *config, const char *default_note, oir_error *err);

/* The sources, each filling m (the caller frees it on failure). */
int sd_load_diffusers(sd_model *m, const char *path, const sd_load_params *p, oir_error *err);
int sd_load_single(sd_model *m, const char *path, const sd_load_params *p, oir_error *err);
int sd_load_component_folder(sd_model *m, const char *dir, int component, const char *variant,
                             oir_error *err);

/* "<dir>/<name>" into buf (NULL on overflow). */
const char *sd_join(char *buf, size_t cap, const char *dir, const char *name);
int sd_is_file(const char *path);
int sd_is_dir(const char *path);
int sd_ends_with(const char *s, const char *suffix);
/* A pickle format's file name (.ckpt, .bin, .pt, ...). */
int sd_is_pickle_name(const char *name);
/* The last path component ("a/b/c.safetensors" -> "c.safetensors"). */
const char *sd_base_name(const char *path);
/* A component's weight file base name: "model" (transformers, CLIP) or
 * "diffusion_pytorch_model". */
const char *sd_weights_base(const char *library, const char *class_name);
const sd_component_plan *sd_plan_find(const sd_plan *plan, const char *name);

#endif
