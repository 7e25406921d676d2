/* A pipeline's scheduler/scheduler_config.json, read as the DDIM scheduler's
 * config. It lives with the model files (the loader reads it with the other
 * configs, sd_model.scheduler); the scheduler itself is diffusion/ddim.h,
 * which includes this header. Models never include diffusion/. */
#ifndef OIR_MODELS_SCHEDULER_CONFIG_H
#define OIR_MODELS_SCHEDULER_CONFIG_H

#include "core/error.h"

typedef enum { DDIM_BETA_LINEAR = 0, DDIM_BETA_SCALED_LINEAR } ddim_beta_schedule;

/* scheduler_config.json fields (diffusers names). */
typedef struct {
    int num_train_timesteps;          /* 1000 */
    double beta_start, beta_end;      /* 0.00085, 0.012 for SD 1.x */
    ddim_beta_schedule beta_schedule; /* "linear" | "scaled_linear" */
    int steps_offset;                 /* 1 for SD 1.x */
    int set_alpha_to_one;             /* 0 for SD 1.x: final alphabar = alphabar[0] */
    int clip_sample;                  /* clamp predicted x0 to +-clip_sample_range */
    double clip_sample_range;         /* 1.0 */
} ddim_config;

/* diffusers' DDIMScheduler() defaults (used for keys a config leaves out). */
ddim_config ddim_default_config(void);
/* Stable Diffusion 1.x: scaled_linear 0.00085..0.012, 1000 steps,
 * steps_offset 1, set_alpha_to_one false, clip_sample false. */
ddim_config ddim_sd1_config(void);

/* Reads scheduler_config.json (any diffusers scheduler class: SD ships a
 * PNDMScheduler config; the beta fields are what matter). Keys absent take
 * ddim_default_config's values, as DDIMScheduler.from_config does. Refuses
 * prediction_type other than "epsilon", thresholding, trained_betas and
 * unknown beta schedules, naming the field. */
int ddim_config_load(ddim_config *out, const char *path, oir_error *err);
/* Same from JSON text; `what` names the source in messages. */
int ddim_config_parse(ddim_config *out, const char *json, const char *what, oir_error *err);

#endif
