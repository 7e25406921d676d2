"""Writes a random-weight model with the exact Stable Diffusion 1.5 configuration.

    .venv-tools/bin/python tools/make_random_sd.py OUT_DIR [--single-file PATH] [--fp16]
                                                   [--seed N] [--ldm-extras] [--no-folder]

OUT_DIR gets a diffusers StableDiffusionPipeline folder (model_index.json, scheduler/ (DDIM with
SD's settings), tokenizer/ (the real CLIP BPE files copied from data/clip-tokenizer),
text_encoder/ (CLIP ViT-L/14 text tower: 12 layers, 768 wide), unet/ (320/640/1280/1280,
layers_per_block 2, 8 heads, cross-attention 768), vae/ (128/256/512/512)), weights in
*.safetensors under the standard names. --single-file also writes the same weights as one
original-LDM checkpoint (model.diffusion_model.*, first_stage_model.*,
cond_stage_model.transformer.*; key mapping in tools/sd_keys.py). --fp16 stores fp16 instead of fp32
(under the standard file names, as in the "fp16" branch of the SD 1.5 repository).
--ldm-extras adds to the single file the DDPM schedule buffers the original checkpoints carry
(betas, alphas_cumprod, ... : 12 tensors of shape (1000,)), which a loader must ignore.

Weights: each tensor is drawn from its own generator seeded by (seed, tensor name), so the folder
and the single file hold identical values and nothing is kept in memory: matrices and convs
~ N(0, 1/fan_in), embeddings ~ N(0, 0.02), norm scales 1, biases 0. The outputs are meaningless;
this is for shape/loader checks and benchmarks. About 1.07e9 parameters (4.3 GB fp32, 2.1 GB fp16)
per copy.
"""
import argparse
import math
import os
import shutil
import sys
import time
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_keys  # noqa: E402

from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402
from transformers.modeling_utils import no_init_weights  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_TOKENIZER = os.environ.get("OIR_CLIP_TOKENIZER", os.path.join(ROOT, "data", "clip-tokenizer"))

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)
SD15_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
# CLIPTextConfig defaults are the ViT-L/14 text tower except the size fields; bos/eos/pad ids are
# left at the library defaults (0, 2, 1), exactly as in SD 1.5's text_encoder/config.json.
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                 projection_dim=768)
SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    clip_sample=False, set_alpha_to_one=False, steps_offset=1)


class _no_torch_init:
    """Skip the default parameter init while building the modules (they stay torch.empty)."""

    CLASSES = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.GroupNorm, torch.nn.LayerNorm,
               torch.nn.Embedding)

    def __enter__(self):
        self.saved = [(c, c.reset_parameters) for c in self.CLASSES]
        for c in self.CLASSES:
            c.reset_parameters = lambda self: None
        self.hf = no_init_weights(_enable=True)
        self.hf.__enter__()

    def __exit__(self, *a):
        self.hf.__exit__(*a)
        for c, f in self.saved:
            c.reset_parameters = f


def build_models():
    with _no_torch_init():
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    return unet, vae, text


def lazy_state(model, part, seed, dtype):
    """{name: Lazy} for a model's state dict; parameters random, buffers as they are."""
    params = dict(model.named_parameters())
    out = {}
    for name, t in model.state_dict().items():
        if name not in params:  # buffers (text position_ids, int64): keep the real values
            out[name] = t.clone()
            continue
        shape = tuple(t.shape)
        s = (seed * 1000003 + zlib.crc32(f"{part}/{name}".encode())) % (2 ** 63)

        def make(shape=shape, s=s, name=name):
            if name.endswith("bias"):
                return torch.zeros(shape, dtype=dtype)
            if len(shape) == 1:  # norm scales
                return torch.ones(shape, dtype=dtype)
            g = torch.Generator().manual_seed(s)
            if "embedding" in name:
                std = 0.02
            else:
                std = 1.0 / math.sqrt(math.prod(shape[1:]))
            return (torch.randn(shape, generator=g) * std).to(dtype)

        out[name] = sd_keys.Lazy(shape, dtype, make)
    return out


def ldm_extras(dtype):
    """The DDPM buffers of ldm.models.diffusion.ddpm.DDPM.register_schedule (linear_start 0.00085,
    linear_end 0.012, v-posterior 0), as stored in the original SD 1.x checkpoints."""
    import numpy as np

    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    acp = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - acp) / (1.0 - ac)
    d = dict(betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=acp, sqrt_alphas_cumprod=np.sqrt(ac),
             sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ac), log_one_minus_alphas_cumprod=np.log(1.0 - ac),
             sqrt_recip_alphas_cumprod=np.sqrt(1.0 / ac), sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / ac - 1),
             posterior_variance=post_var, posterior_log_variance_clipped=np.log(np.maximum(post_var, 1e-20)),
             posterior_mean_coef1=betas * np.sqrt(acp) / (1.0 - ac),
             posterior_mean_coef2=(1.0 - acp) * np.sqrt(alphas) / (1.0 - ac))
    return {k: torch.from_numpy(v).to(dtype) for k, v in d.items()}


def human(n):
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def main():
    ap = argparse.ArgumentParser(description="Random-weight SD 1.5-configuration model (diffusers folder and/or "
                                             "original single-file checkpoint).")
    ap.add_argument("out_dir", help="diffusers folder to write")
    ap.add_argument("--single-file", metavar="PATH", help="also write an original-LDM single-file .safetensors")
    ap.add_argument("--fp16", action="store_true", help="store fp16 weights (default fp32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ldm-extras", action="store_true", help="add the DDPM schedule buffers to the single file")
    ap.add_argument("--no-folder", action="store_true", help="only write --single-file")
    args = ap.parse_args()
    if args.no_folder and not args.single_file:
        ap.error("--no-folder needs --single-file")
    hf_logging.set_verbosity_error()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    dtype = torch.float16 if args.fp16 else torch.float32
    t0 = time.time()

    unet, vae, text = build_models()
    states = {
        "unet": lazy_state(unet, "unet", args.seed, dtype),
        "vae": lazy_state(vae, "vae", args.seed, dtype),
        "text_encoder": lazy_state(text, "text_encoder", args.seed, dtype),
    }
    nparams = {k: sum(v.numel() for n, v in s.items() if isinstance(v, sd_keys.Lazy)) for k, s in states.items()}
    sd_keys.crosscheck_with_diffusers({k: tuple(v.shape) for k, v in states["unet"].items()}, dict(unet.config),
                                      {k: tuple(v.shape) for k, v in states["vae"].items()}, dict(vae.config))
    sizes = {}
    meta = {"format": "pt"}

    if not args.no_folder:
        out = args.out_dir
        os.makedirs(out, exist_ok=True)
        for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            os.makedirs(os.path.join(out, sub), exist_ok=True)
        sched = DDIMScheduler(**SD_SCHEDULER)
        tok = CLIPTokenizer.from_pretrained(REAL_TOKENIZER, model_max_length=77)
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.save_config(out)  # model_index.json
        sched.save_pretrained(os.path.join(out, "scheduler"))
        tok.save_pretrained(os.path.join(out, "tokenizer"))
        for fn in ("vocab.json", "merges.txt"):  # the real files, byte for byte
            shutil.copyfile(os.path.join(REAL_TOKENIZER, fn), os.path.join(out, "tokenizer", fn))
        unet.save_config(os.path.join(out, "unet"))
        vae.save_config(os.path.join(out, "vae"))
        text.config.torch_dtype = dtype
        text.config.save_pretrained(os.path.join(out, "text_encoder"))
        files = {
            "unet": os.path.join(out, "unet", "diffusion_pytorch_model.safetensors"),
            "vae": os.path.join(out, "vae", "diffusion_pytorch_model.safetensors"),
            "text_encoder": os.path.join(out, "text_encoder", "model.safetensors"),
        }
        for part, path in files.items():
            t = time.time()
            sizes[path] = sd_keys.write_safetensors(path, states[part], meta)
            print(f"  {path}: {human(sizes[path])} ({nparams[part] / 1e6:.1f} M params, {time.time() - t:.1f} s)",
                  flush=True)

    if args.single_file:
        ldm, _ = sd_keys.to_ldm_state_dict(states["unet"], dict(unet.config), states["vae"], dict(vae.config),
                                           states["text_encoder"])
        if args.ldm_extras:
            ldm.update(ldm_extras(dtype))
        t = time.time()
        sizes[args.single_file] = sd_keys.write_safetensors(args.single_file, ldm, meta)
        print(f"  {args.single_file}: {human(sizes[args.single_file])} ({len(ldm)} tensors, {time.time() - t:.1f} s)",
              flush=True)

    total = sum(nparams.values())
    print(f"random SD 1.5 ({'fp16' if args.fp16 else 'fp32'}): unet {nparams['unet'] / 1e6:.1f} M, "
          f"vae {nparams['vae'] / 1e6:.1f} M, text encoder {nparams['text_encoder'] / 1e6:.1f} M params "
          f"({total / 1e6:.1f} M); wrote {human(sum(sizes.values()))} in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
