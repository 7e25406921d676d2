/* Loader: Stable Diffusion 1.x models and CLIP scorers from the files users
 * have (DESIGN.md §3).
 *
 *   (a) a diffusers folder: model_index.json + text_encoder/, tokenizer/,
 *       unet/, vae/, scheduler/, each with config.json and .safetensors
 *       weights (fp32 or fp16; `*.fp16.safetensors` variants; sharded
 *       `*.safetensors.index.json`);
 *   (b) a single-file original checkpoint (.safetensors with
 *       model.diffusion_model.*, first_stage_model.*,
 *       cond_stage_model.transformer.*): configs are SD 1.x's, sized to the
 *       checkpoint's shapes (or read from a diffusers folder given as
 *       config_dir); SD 2.x and SDXL checkpoints are refused, naming what
 *       gave them away;
 *   (c) a Hugging Face CLIP folder (config.json, model.safetensors,
 *       vocab.json, merges.txt, preprocessor_config.json) for the scorer.
 *
 * Pickle files (.ckpt, .bin, .pt, .pth) are never opened: they can run code
 * when loaded. The error says how to convert them.
 *
 *     sd_model *m;
 *     sd_load_params p = sd_load_default_params();
 *     p.variant = "fp16";                                   // optional
 *     if (sd_model_load(&m, "models/sd15", &p, &err)) ...   // names missing /
 *     ... m->unet, m->vae, m->text_encoder, m->tokenizer,   //  mis-shaped tensors
 *     ... m->scheduler (a ddim_config)
 *     for (int i = 0; i < sd_model_unused_count(m); i++)    // extras in the files
 *         puts(sd_model_unused_at(m, i));
 *     sd_model_free(m);
 *
 * A loaded model is read-only; the models' forwards may run from several
 * threads at once (each with its own arena). Loading itself is not
 * thread-safe. F32 weights stay in the read-only file mappings; F16/BF16 are
 * converted to float32 once, at load. */
#ifndef OIR_MODELS_LOADER_H
#define OIR_MODELS_LOADER_H

#include "core/error.h"
#include "models/scheduler_config.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "models/tokenizer.h"
#include "core/backend.h"
#include "models/unet.h"
#include "models/vae.h"
#include "models/weights.h"

/* Which components to build (sd_load_params.components). */
enum {
    SD_TOKENIZER = 1,
    SD_TEXT_ENCODER = 2,
    SD_UNET = 4,
    SD_VAE = 8,
    SD_ALL = 15
};

typedef struct {
    /* "fp16": each component prefers <name>.fp16.safetensors (or the fp16
     * shard index) and falls back to the plain file when it has no such
     * variant, as diffusers does. NULL: plain files only. */
    const char *variant;
    /* Single-file checkpoints: a diffusers folder (or any folder with
     * unet/, vae/, text_encoder/, scheduler/, tokenizer/ configs) whose
     * config.json files describe the checkpoint, as diffusers'
     * from_single_file(config=...). NULL: SD 1.x configs sized to the
     * checkpoint's shapes. */
    const char *config_dir;
    /* Single-file checkpoints: tokenizer folder (vocab.json, merges.txt).
     * NULL: config_dir/tokenizer, else $OIR_TOKENIZER, else the built-in
     * CLIP vocabulary (tokenizer_load_builtin) when it fits the text
     * encoder's vocab_size (a diffusers folder without a tokenizer falls
     * back to it too), else no tokenizer. */
    const char *tokenizer_dir;
    int components; /* SD_* bits; SD_ALL by default */
    tokenizer_mode tokenizer_mode; /* text normalisation; TOKENIZER_CLIP by default */
    /* Where the UNet, the VAE and the text encoder run (one backend): "cpu"
     * (NULL: the default), "vulkan" or "vulkan:N" (be_parse_device).
     * OIR_E_UNSUPPORTED naming the device when Vulkan, its driver or the
     * device is missing. */
    const char *device;
} sd_load_params;

sd_load_params sd_load_default_params(void);

typedef enum { SD_SOURCE_DIFFUSERS = 1, SD_SOURCE_SINGLE_FILE, SD_SOURCE_COMPONENT } sd_source;

typedef struct sd_model_files sd_model_files; /* internal: open files and weights */

typedef struct {
    tokenizer *tokenizer;          /* NULL if not requested or none found */
    clip_text_model *text_encoder; /* NULL if not requested */
    int text_projection;           /* text_encoder has text_projection (a CLIPTextModelWithProjection folder) */
    unet_model *unet;              /* NULL if not requested */
    vae_model *vae;                /* NULL if not requested */
    ddim_config scheduler;         /* scheduler_config.json, or SD 1.x's */
    sd_source source;
    char path[1024];
    /* What the loader did, for reports: e.g. "unet: diffusion_pytorch_model.fp16.safetensors
     * (F16, converted to F32)", "scheduler: SD 1.x defaults (no scheduler_config.json)". */
    char notes[8][256];
    int n_notes;
    sd_model_files *files;
    oir_backend *backend; /* the models', when not the CPU (owned); NULL: the CPU */
    char device[32];      /* their device: "cpu", "vulkan:0" */
} sd_model;

/* Where a component ("unet", "vae", "text_encoder") runs, for reports:
 * "cpu", "vulkan:0" (--device vulkan). */
const char *sd_model_device(const sd_model *m, const char *component);

/* Loads from a diffusers folder or a single-file .safetensors checkpoint.
 * Fails with OIR_E_MISSING / OIR_E_SHAPE naming tensors (missing tensors
 * always fail), OIR_E_UNSUPPORTED for pickle files, SD 2.x / SDXL and
 * other architectures, OIR_E_IO / OIR_E_FORMAT for absent or malformed
 * files, naming the file and field. p may be NULL (defaults). */
int sd_model_load(sd_model **out, const char *path, const sd_load_params *p, oir_error *err);
/* One model's folder (MODEL_PATH_COMPONENT: config.json + weights) as an
 * sd_model holding that model alone: component SD_UNET (a
 * UNet2DConditionModel), SD_VAE (AutoencoderKL) or SD_TEXT_ENCODER
 * (CLIPTextModel, or CLIPTextModelWithProjection: text_projection set).
 * p: variant and device are used (NULL: defaults). OIR_E_UNSUPPORTED when
 * the folder holds another class, and the same file and tensor errors as
 * sd_model_load. source is SD_SOURCE_COMPONENT. */
int sd_component_load(sd_model **out, const char *dir, int component, const sd_load_params *p,
                      oir_error *err);
void sd_model_free(sd_model *m);

/* Tensors in the component files that no model read ("unet: <file name>"),
 * after the loader's ignore list (position_ids buffers). Single-file
 * checkpoints also carry tensors outside the three models (EMA copies,
 * schedule buffers): those are counted by sd_model_other_count. */
int sd_model_unused_count(const sd_model *m);
const char *sd_model_unused_at(const sd_model *m, int i);
int sd_model_other_count(const sd_model *m);
/* The weights of a component ("unet", "vae", "text_encoder"), or NULL. */
const weights *sd_model_weights(const sd_model *m, const char *component);

/* The model's native image side in pixels: unet/config.json sample_size x
 * the VAE factor (else vae/config.json sample_size) of a diffusers folder,
 * or of config_dir (may be NULL) for a single-file checkpoint; 64 x the VAE
 * factor when no config says (SD 1.x: 512). */
int sd_model_native_size(const sd_model *m, const char *config_dir, int *size, oir_error *err);

/* ---- CLIP scorer ---------------------------------------------------------- */

typedef struct clip_model_files clip_model_files;

typedef struct {
    tokenizer *tokenizer;
    clip_text_model *text;          /* with text_projection */
    clip_vision_model *vision;      /* with visual_projection */
    clip_preprocess_config preprocess;
    char path[1024];
    clip_model_files *files;
    char device[32]; /* where both towers run: "cpu", "vulkan:0" */
} clip_model;

/* A Hugging Face CLIPModel folder: config.json (CLIPConfig), model.safetensors
 * (or shards / a variant as for SD components), vocab.json + merges.txt,
 * preprocessor_config.json (optional: CLIPImageProcessor defaults). */
int clip_model_load(clip_model **out, const char *dir, oir_error *err);
void clip_model_free(clip_model *m);
/* Both towers onto the backend of sd's models (one backend per context;
 * nothing when sd runs on the CPU). sd owns that backend: free m before
 * sd. On failure both towers are back on the CPU. */
int clip_model_share_device(clip_model *m, const sd_model *sd, oir_error *err);
/* "cpu", "vulkan:0", for reports. */
const char *clip_model_device(const clip_model *m);
int clip_model_unused_count(const clip_model *m);
const char *clip_model_unused_at(const clip_model *m, int i);

/* ---- what is where (no model is built) ------------------------------------- */

typedef enum {
    MODEL_PATH_UNKNOWN = 0,
    MODEL_PATH_DIFFUSERS,   /* folder with model_index.json */
    MODEL_PATH_COMPONENT,   /* folder with one component's config.json + weights */
    MODEL_PATH_CLIP,        /* Hugging Face CLIP folder */
    MODEL_PATH_SINGLE_FILE, /* .safetensors file */
    MODEL_PATH_PICKLE       /* a pickle file, or a folder with only pickle weights */
} model_path_kind;

/* Classifies a path by its name, contents and magic bytes (never unpickles). */
model_path_kind model_path_detect(const char *path);

/* OIR_E_UNSUPPORTED with the advice on converting a pickle file `what`. */
int loader_refuse_pickle(const char *what, oir_error *err);

#define SD_PLAN_MAX_FILES 64

/* One component of a folder, as the loader would read it. */
typedef struct {
    char name[32];        /* "unet", "text_encoder", ... */
    char library[32];     /* model_index.json: "diffusers", "transformers" */
    char class_name[64];  /* "UNet2DConditionModel" */
    char dir[1024];
    char config[1024];    /* config.json / scheduler_config.json path, "" if absent */
    int nfiles;           /* weight files chosen (shards: several) */
    char *files[SD_PLAN_MAX_FILES];
    char variants[128];   /* variant names present, comma-separated ("fp16") */
    int pickle_only;      /* only .bin/.ckpt weights present */
} sd_component_plan;

typedef struct {
    model_path_kind kind;
    char class_name[64];  /* model_index.json _class_name, or config.json's */
    int n;
    sd_component_plan comp[8];
} sd_plan;

/* Finds the components of a folder (diffusers pipeline, single component or
 * CLIP) and the weight files the loader would take for `variant` (NULL:
 * plain). Missing weight files are reported in the plan (nfiles 0), not as
 * errors; a folder that is none of those kinds is OIR_E_FORMAT. */
int sd_plan_folder(sd_plan *plan, const char *dir, const char *variant, oir_error *err);
void sd_plan_free(sd_plan *plan);

#endif
