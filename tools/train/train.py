#!/usr/bin/env python3
"""Trains the shapes-world models from scratch: tiny CLIP -> tiny VAE -> tiny UNet, and exports
models/tiny-clip (Hugging Face CLIP folder) and models/tiny-shapes (diffusers SD pipeline folder).

    .venv-tools/bin/python tools/train/train.py                 # everything, resumable
    .venv-tools/bin/python tools/train/train.py --stage clip    # one stage (clip|vae|unet|export)
    .venv-tools/bin/python tools/train/train.py --measure       # s/step of each stage's config
    options: --device cuda, --work DIR (checkpoints, default tools/train/checkpoints),
             --steps-clip N --steps-vae N --steps-unet N, --threads N

Checkpoints are safetensors (model, EMA and optimizer tensors) + a JSON with the step; every
stage resumes from its last checkpoint.  Data and noise are drawn from generators seeded by
(stage, step), so a resumed run sees the same batches as an uninterrupted one.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "shapes"))
import shapes as W  # noqa: E402

from safetensors.torch import load_file, save_file  # noqa: E402

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
TEXT_TRAIN_LEN = 32   # CLIP stage trains on 32 positions (captions are <= 28 tokens)
MAX_LEN = 77          # SD pads to 77

# ----------------------------------------------------------------------------- configs

CLIP_TEXT = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 max_position_embeddings=MAX_LEN, hidden_act="quick_gelu")
CLIP_VISION = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                   image_size=64, patch_size=8, num_channels=3, hidden_act="quick_gelu")
PROJ_DIM = 128

VAE_CFG = dict(in_channels=3, out_channels=3,
               down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
               block_out_channels=[32, 32, 64], layers_per_block=1, latent_channels=4,
               norm_num_groups=32, sample_size=64, act_fn="silu")

UNET_CFG = dict(sample_size=16, in_channels=4, out_channels=4,
                down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                mid_block_type="UNetMidBlock2DCrossAttn",
                up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                block_out_channels=[64, 128, 128], layers_per_block=1, attention_head_dim=4,
                cross_attention_dim=CLIP_TEXT["hidden_size"], norm_num_groups=32,
                use_linear_projection=False, act_fn="silu")

DEFAULTS = dict(
    # text_steps: both towers train until then; the text tower (EMA) is then frozen, saved as
    # clip_text.safetensors for the UNet stage, and the vision tower + projections go on alone.
    # focus_step: from then on each step contrasts only 8 whole scenes (+8 hard negatives) and
    # classifies every object of all 32 scenes through its mask (the scene loss is nearly solved
    # by then; the masked-object task is what the search metric needs).
    # whiten_step: the frozen text tower's pooled outputs of short phrases differ little between
    # shapes ("green circle" vs "green square": cosine 0.9996 after 200 text steps), so
    # text_projection is reset to a ZCA whitening of those outputs (times the old projection's
    # scale), which spreads the phrases apart; training goes on from there.
    clip=dict(steps=1450, text_steps=200, focus_step=400, whiten_step=600, batch=32, negs=16, lr=6e-4, warmup=50, wd=0.05,
              ema=0.99),
    # clip_ft: the vision tower and both projections only (the text tower stays the UNet's), from
    # the clip stage's EMA, on every object of 32 scenes per step, weighted towards the separate
    # colour-word and shape-word losses (the phrase classes are the seen combinations only, so
    # that loss alone teaches "a red object is never a star"), a quarter of the scenes in
    # greyscale, judged by shape alone: shape features that generalise to held-out colours.
    # clip_joint: the text tower trains again, with the vision tower, from clip_ft's EMA. The
    # second session measured (eval.py, "text encoder") that the tower frozen after 200 steps
    # barely told shapes and positions apart in its per-token outputs (relative change 0.17 and
    # 0.13 when a shape or position word changes, 1.44 for a colour word), so the UNet learned
    # colours but not shapes or places. 32 whole scenes per step are contrasted with 16 captions
    # that differ in one attribute; 16 more scenes give object views (a third in greyscale).
    clip_joint=dict(steps=1200, batch=48, negs=16, n_contrast=32, lr=3e-4, warmup=50, wd=0.05, ema=0.99,
                    grey=0.33, w_pair=0.5, w_attr=1.5),
    # unet_ft: the UNet, from the unet stage's EMA, on clip_joint's text tower.
    unet_ft=dict(steps=3000, batch=32, lr=3e-4, warmup=50, wd=0.0, ema=0.998, pool=32768, uncond=0.1),
    # (the committed run planned 6000 steps and stopped it at 4195, before the decay, for clip_joint)
    clip_ft=dict(steps=4195, batch=32, negs=8, lr=3e-4, warmup=50, wd=0.05, ema=0.995, grey=0.25, w_pair=0.5,
                 w_attr=1.5),
    # enc_steps: encoder + decoder train until then; the encoder (EMA) is then frozen and saved as
    # vae_encoder.safetensors for the UNet stage, and the decoder goes on alone (as SD's ft-MSE VAE).
    vae=dict(steps=1600, enc_steps=700, batch=16, crop=32, lr=8e-4, warmup=50, wd=0.0, kl=1e-6, ema=0.995),
    # vae_ft: the decoder alone, fine-tuned on whole 64x64 images from the vae stage's EMA (the
    # crops above give the mid-block attention 8x8 tokens; whole images give it 16x16).
    vae_ft=dict(steps=900, batch=16, crop=0, lr=3e-4, warmup=20, wd=0.0, kl=0.0, ema=0.995),
    # (the committed run planned 6500 steps and stopped at 2011, before the decay, for unet_ft)
    unet=dict(steps=2011, batch=32, lr=5e-4, warmup=200, wd=0.0, ema=0.999, pool=32768, uncond=0.1),
    # unet_more (issue 14): the shipped UNet trained on (fresh AdamW, gentler rate, longer EMA);
    # about 0.8 s a step on one core of the 2-core machine.
    unet_more=dict(steps=7000, batch=32, lr=2e-4, warmup=100, wd=0.0, ema=0.999, pool=32768, uncond=0.1),
)
SEEDS = dict(clip=1, vae=2, unet=3, pool=4, init=5, clip_ft=6, clip_joint=7, unet_ft=8, unet_more=9)


# ----------------------------------------------------------------------------- tokenizer

def bytes_to_unicode() -> Dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def learn_bpe(words: List[str]) -> List[Tuple[str, str]]:
    """Real BPE on the world's words (each word once) until every word is one token; ties are
    broken by the pair's text so the result is deterministic."""
    segs = {w: tuple(list(w[:-1]) + [w[-1] + "</w>"]) for w in words}
    merges: List[Tuple[str, str]] = []
    while any(len(s) > 1 for s in segs.values()):
        counts: Dict[Tuple[str, str], int] = {}
        for s in segs.values():
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for w, s in segs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = tuple(out)
    return merges


def build_tokenizer(folder: str):
    """Writes vocab.json + merges.txt (CLIP layout: 256 byte chars, 256 byte chars + </w>,
    merges, <|startoftext|>, <|endoftext|> last so it has the highest id) and returns a
    transformers CLIPTokenizer loaded from them."""
    from transformers import CLIPTokenizer
    os.makedirs(folder, exist_ok=True)
    b2u = list(bytes_to_unicode().values())
    vocab = b2u + [c + "</w>" for c in b2u]
    merges = learn_bpe(W.vocabulary_words())
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = CLIPTokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
                        pad_token="<|endoftext|>", model_max_length=MAX_LEN)
    for w in W.vocabulary_words():
        ids = tok(w, add_special_tokens=False).input_ids
        assert len(ids) == 1, (w, ids)
    return tok


def tokenize(tok, texts: List[str], length: int) -> torch.Tensor:
    return torch.tensor(tok(texts, padding="max_length", max_length=length, truncation=True).input_ids)


# ----------------------------------------------------------------------------- data

def scene_batch(rng: np.random.Generator, n: int, heldout: str = "exclude"):
    scenes = [W.random_scene(rng, heldout=heldout) for _ in range(n)]
    rendered = [W.render(s) for s in scenes]
    imgs = np.stack([r[0] for r in rendered])
    return scenes, imgs, [r[1] for r in rendered], [r[2] for r in rendered]


def to_unit(imgs: np.ndarray) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [0,1]."""
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0


def clip_normalize(x01: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(CLIP_MEAN, device=x01.device).view(1, 3, 1, 1)
    s = torch.tensor(CLIP_STD, device=x01.device).view(1, 3, 1, 1)
    return (x01 - m) / s


def patch_mask(mask: np.ndarray, grid: int, mode: str) -> np.ndarray:
    """(H,W) bool -> (grid,grid) bool.  Modes: 'center' (PIL-style nearest, samples patch
    centres), 'corner' (torch-style nearest, samples top-left pixels), 'area' (coverage >= 0.5),
    'any' (coverage > 0)."""
    h = mask.shape[0]
    p = h // grid
    if mode == "center":
        idx = (np.arange(grid) * p + p // 2)
        g = mask[np.ix_(idx, idx)]
    elif mode == "corner":
        idx = np.arange(grid) * p
        g = mask[np.ix_(idx, idx)]
    else:
        cov = mask.reshape(grid, p, grid, p).mean(axis=(1, 3))
        g = cov >= 0.5 if mode == "area" else cov > 0
    return g


def vision_attention_mask(pmasks: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """pmasks (B, P) bool (True = inside the object) -> additive mask (B, 1, 1+P, 1+P): the class
    token and the patches inside attend only to each other (DESIGN.md §2.4); outside patches
    attend only to outside patches."""
    b = pmasks.shape[0]
    inside = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=pmasks.device), pmasks], 1)  # (B, T)
    allowed = inside[:, :, None] == inside[:, None, :]
    m = torch.zeros(allowed.shape, dtype=dtype, device=pmasks.device)
    m.masked_fill_(~allowed, torch.finfo(dtype).min)
    return m[:, None]


def masked_image_embeds(clip, pixel_values: torch.Tensor, attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """CLIP image embedding (projected, not normalised) with an optional additive attention mask."""
    vm = clip.vision_model
    h = vm.embeddings(pixel_values)
    h = vm.pre_layrnorm(h)
    h = vm.encoder(inputs_embeds=h, attention_mask=attn_mask).last_hidden_state
    pooled = vm.post_layernorm(h[:, 0, :])
    return clip.visual_projection(pooled)


def text_embeds(clip, ids: torch.Tensor) -> torch.Tensor:
    out = clip.text_model(input_ids=ids)
    return clip.text_projection(out.pooler_output)


def augment(x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mild degradations so the scorer also judges imperfect generated images."""
    b = x01.shape[0]
    dev = x01.device
    blur = torch.rand(b, 1, 1, 1, generator=g).to(dev) < 0.3
    k = torch.tensor([1.0, 2.0, 1.0], device=dev)
    k = (k[:, None] * k[None, :]) / 16.0
    xb = F.conv2d(F.pad(x01, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3).contiguous(), groups=3)
    x = torch.where(blur, xb, x01)
    gain = 1.0 + 0.08 * (torch.rand(b, 3, 1, 1, generator=g).to(dev) * 2 - 1)
    x = x * gain
    noise = torch.randn(x.shape, generator=g).to(dev) * (0.03 * torch.rand(b, 1, 1, 1, generator=g).to(dev))
    return (x + noise).clamp(0, 1)


# ----------------------------------------------------------------------------- checkpoints

def save_ckpt(path: str, step: int, modules: Dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
              extra: Optional[dict] = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            t[f"{name}.{k}"] = v.detach().cpu().contiguous()
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            v = v if torch.is_tensor(v) else torch.tensor(float(v))
            t[f"opt.{pid}.{k}"] = v.detach().cpu().reshape(v.shape).contiguous()
    tmp = path + ".tmp"
    save_file(t, tmp)
    os.replace(tmp, path)
    with open(path[:-len(".safetensors")] + ".json", "w") as f:
        json.dump({"step": step, **(extra or {})}, f)


def load_ckpt(path: str, modules: Dict[str, torch.nn.Module], opt: Optional[torch.optim.Optimizer]) -> dict:
    t = load_file(path)
    for name, m in modules.items():
        sd = {k[len(name) + 1:]: v for k, v in t.items() if k.startswith(name + ".")}
        m.load_state_dict(sd)
    if opt is not None:
        sd = opt.state_dict()
        state: Dict[int, dict] = {}
        for k, v in t.items():
            if k.startswith("opt."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v
        sd["state"] = state
        opt.load_state_dict(sd)
    with open(path[:-len(".safetensors")] + ".json") as f:
        return json.load(f)


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, constant, then a cosine decay to 10% over the last 15% of the steps.
    Before the decay starts the rate does not depend on `total`, so a run resumed with a
    smaller --steps-* (before its decay) equals a fresh run with that step count."""
    if step < warmup:
        return base * (step + 1) / warmup
    d0 = int(0.85 * total)
    if step < d0:
        return base
    p = (step - d0) / max(1, total - d0)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


class Log:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), exist_ok=True)

    def write(self, rec: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def read(self) -> List[dict]:
        if not os.path.exists(self.path):
            return []
        return [json.loads(l) for l in open(self.path) if l.strip()]

    def truncate_after(self, step: int) -> None:
        recs = [r for r in self.read() if r["step"] < step]
        with open(self.path, "w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")


def plot_curves(log_path: str, png: str, keys: List[str], title: str) -> None:
    """Loss curves drawn with PIL (matplotlib is not in the tools venv); log10 y axis,
    smoothed with a running mean."""
    from PIL import Image, ImageDraw
    recs = [json.loads(l) for l in open(log_path) if l.strip()] if os.path.exists(log_path) else []
    Wd, Ht, m = 720, 420, 60
    img = Image.new("RGB", (Wd, Ht), "white")
    d = ImageDraw.Draw(img)
    d.text((m, 10), title, fill="black")
    if not recs:
        img.save(png)
        return
    steps = np.array([r["step"] for r in recs], float)
    cols = [(200, 30, 30), (30, 90, 200), (30, 150, 60), (160, 60, 180), (230, 130, 20)]
    series = []
    for k in keys:
        ys = np.array([r.get(k, np.nan) for r in recs], float)
        if np.all(np.isnan(ys)):
            continue
        n = max(1, len(ys) // 100)
        ok = ~np.isnan(ys)
        ys = np.convolve(np.where(ok, ys, 0.0), np.ones(n), mode="same") / np.maximum(
            np.convolve(ok.astype(float), np.ones(n), mode="same"), 1)  # edge-normalised running mean
        series.append((k, np.log10(np.maximum(ys, 1e-8))))
    lo = min(s.min() for _, s in series)
    hi = max(s.max() for _, s in series)
    hi = hi if hi > lo else lo + 1
    x0, x1, y0, y1 = m, Wd - 20, Ht - 40, 40
    d.rectangle([x0, y1, x1, y0], outline="black")
    for e in range(int(math.floor(lo)), int(math.ceil(hi)) + 1):
        y = y0 - (e - lo) / (hi - lo) * (y0 - y1)
        if y1 <= y <= y0:
            d.line([x0, y, x1, y], fill=(220, 220, 220))
            d.text((5, y - 6), f"1e{e}", fill="black")
    smax = max(steps.max(), 1)
    d.text((x1 - 80, y0 + 8), f"step {int(smax)}", fill="black")
    for i, (k, ys) in enumerate(series):
        pts = [(x0 + s / smax * (x1 - x0), y0 - (v - lo) / (hi - lo) * (y0 - y1)) for s, v in zip(steps, ys)]
        d.line(pts, fill=cols[i % len(cols)], width=2)
        d.text((x0 + 10 + 150 * i, y0 + 8), f"{k}: {10 ** ys[-1]:.4g}", fill=cols[i % len(cols)])
    img.save(png)


# ----------------------------------------------------------------------------- models

def new_clip(tok):
    from transformers import CLIPConfig, CLIPModel
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    cfg = CLIPConfig(text_config=dict(vocab_size=len(tok.get_vocab()), bos_token_id=bos, eos_token_id=eos,
                                      pad_token_id=eos, **CLIP_TEXT),
                     vision_config=dict(CLIP_VISION), projection_dim=PROJ_DIM)
    torch.manual_seed(SEEDS["init"])
    return CLIPModel(cfg)


def new_vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(SEEDS["init"] + 1)
    return AutoencoderKL(**VAE_CFG)


def new_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(SEEDS["init"] + 2)
    return UNet2DConditionModel(**UNET_CFG)


def new_train_scheduler():
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", clip_sample=False)


def nparams(m) -> int:
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- stages

class Ctx:
    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.work = args.work
        os.makedirs(self.work, exist_ok=True)
        self.tok = build_tokenizer(os.path.join(self.work, "tokenizer"))

    def ckpt(self, stage: str) -> str:
        return os.path.join(self.work, f"{stage}.safetensors")

    def hp(self, stage: str) -> dict:
        h = dict(DEFAULTS[stage])
        s = getattr(self.args, f"steps_{stage}", None)
        if s is not None:
            h["steps"] = s
        if stage == "clip" and self.args.clip_text_steps is not None:
            h["text_steps"] = self.args.clip_text_steps
        if stage == "vae" and self.args.vae_enc_steps is not None:
            h["enc_steps"] = self.args.vae_enc_steps
        if stage in ("unet", "unet_more") and self.args.pool:
            h["pool"] = self.args.pool
        return h


def _phrase_sets():
    train_pairs = [(c, s) for c in W.COLOURS for s in W.SHAPES if (c, s) not in W.HELDOUT_SET]
    return train_pairs


def _hard_negative(rng: np.random.Generator, scene: W.Scene) -> str:
    """A caption that differs from the scene in exactly one attribute."""
    objs = list(scene.objects)
    kind = int(rng.integers(5))
    if kind == 4 or not objs:
        bgs = [b for b in W.BACKGROUNDS if b != scene.background]
        return W.caption(W.Scene(bgs[int(rng.integers(len(bgs)))], tuple(objs)))
    i = int(rng.integers(len(objs)))
    o = objs[i]
    if kind == 0:
        o = W.Obj(o.shape, [c for c in W.COLOURS if c != o.colour][int(rng.integers(len(W.COLOURS) - 1))], o.position)
    elif kind == 1:
        o = W.Obj([s for s in W.SHAPES if s != o.shape][int(rng.integers(len(W.SHAPES) - 1))], o.colour, o.position)
    else:
        free = [p for p in W.POSITIONS if p not in {x.position for x in objs}]
        if len(objs) >= 2 and kind == 3:  # swap two objects' positions
            j = (i + 1) % len(objs)
            a, b = objs[i], objs[j]
            objs[i] = W.Obj(a.shape, a.colour, b.position)
            objs[j] = W.Obj(b.shape, b.colour, a.position)
            objs.sort(key=lambda x: list(W.POSITIONS).index(x.position))
            return W.caption(W.Scene(scene.background, tuple(objs)))
        o = W.Obj(o.shape, o.colour, free[int(rng.integers(len(free)))])
    objs[i] = o
    objs.sort(key=lambda x: list(W.POSITIONS).index(x.position))
    return W.caption(W.Scene(scene.background, tuple(objs)))


def clip_step_fn(ctx: Ctx, clip, n_negs: int = 16, focus_step: int = 1 << 30, seed: int = SEEDS["clip"],
                 grey: float = 0.0, w_pair: float = 1.0, w_attr: float = 0.5, n_contrast: int = 8):
    """grey: fraction of scenes shown in greyscale, whose objects are then judged by shape alone
    (shape cues that do not lean on colour); w_pair / w_attr: weights of the colour+shape phrase
    loss and of the separate colour-word and shape-word losses; n_contrast: whole scenes in the
    caption-contrastive loss after focus_step (the rest of the batch: object views only)."""
    tok = ctx.tok
    dev = ctx.dev
    pairs = _phrase_sets()
    phrase_ids = tokenize(tok, [f"{c} {s}" for c, s in pairs], 8).to(dev)
    colour_ids = tokenize(tok, list(W.COLOURS), 8).to(dev)
    shape_ids = tokenize(tok, list(W.SHAPES), 8).to(dev)
    bg_ids = tokenize(tok, [W.bg_phrase(b) for b in W.BACKGROUNDS], 8).to(dev)
    pair_index = {p: i for i, p in enumerate(pairs)}
    grid = CLIP_VISION["image_size"] // CLIP_VISION["patch_size"]
    modes = ["center", "corner", "area", "any"]

    def step(s: int, batch: int):
        rng = np.random.default_rng([seed, s])
        g = torch.Generator().manual_seed(seed * 1_000_003 + s)
        scenes, imgs, masks, bgmasks = scene_batch(rng, batch)
        focus = s >= focus_step
        n_full = min(n_contrast, len(scenes)) if focus else len(scenes)
        n_neg = min(n_negs, n_full)
        caps = [W.caption(sc) for sc in scenes[:n_full]]
        negs = [_hard_negative(rng, sc) for sc in scenes[:n_neg]]
        x01 = augment(to_unit(imgs), g)
        # greyscale scenes only after the whole-scene ones (their captions name colours)
        is_grey = [grey > 0 and i >= n_full and rng.random() < grey for i in range(len(scenes))]
        if any(is_grey):
            sel = torch.tensor(is_grey)
            luma = (x01 * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x01 = torch.where(sel.view(-1, 1, 1, 1), luma.expand_as(x01), x01)
        x = clip_normalize(x01).to(dev)
        # masked views: one object per scene (focus: every object), or, 1 in 8, the background
        pm, obj_t, col_t, shp_t, is_bg, bg_t, src = [], [], [], [], [], [], []
        for i, sc in enumerate(scenes):
            use_bg = rng.random() < 0.125
            if use_bg:
                views = [None]
            elif focus:
                views = list(range(len(sc.objects)))
            else:
                views = [int(rng.integers(len(sc.objects)))]
            for j in views:
                if j is None:
                    m = bgmasks[i]
                else:
                    m = masks[i][j]
                    px = int(rng.integers(0, 4))
                    if px:
                        m = W.dilate(m, px)
                p = patch_mask(m, grid, modes[int(rng.integers(len(modes)))])
                if not p.any():
                    p = patch_mask(m, grid, "any")
                pm.append(p.reshape(-1))
                src.append(i)
                is_bg.append(j is None)
                bg_t.append(list(W.BACKGROUNDS).index(sc.background))
                if j is None:
                    obj_t.append(-100); col_t.append(-100); shp_t.append(-100)
                    if is_grey[i]:
                        bg_t[-1] = -100
                else:
                    o = sc.objects[j]
                    obj_t.append(-100 if is_grey[i] else pair_index[o.key()])
                    col_t.append(-100 if is_grey[i] else list(W.COLOURS).index(o.colour))
                    shp_t.append(W.SHAPES.index(o.shape))
        amask = vision_attention_mask(torch.from_numpy(np.stack(pm)).to(dev))
        ids = tokenize(tok, caps + negs, TEXT_TRAIN_LEN).to(dev)

        img_full = F.normalize(masked_image_embeds(clip, x[:n_full], None), dim=-1)
        img_obj = F.normalize(masked_image_embeds(clip, x[torch.tensor(src)], amask), dim=-1)
        txt = F.normalize(text_embeds(clip, ids), dim=-1)
        t_ph = F.normalize(text_embeds(clip, torch.cat([phrase_ids, colour_ids, shape_ids, bg_ids])), dim=-1)
        nP, nC, nS = len(pairs), len(W.COLOURS), len(W.SHAPES)
        t_pair, t_col, t_shp, t_bg = t_ph[:nP], t_ph[nP:nP + nC], t_ph[nP + nC:nP + nC + nS], t_ph[nP + nC + nS:]
        scale = clip.logit_scale.exp().clamp(max=100)
        b = n_full
        target = torch.arange(b, device=dev)
        li = scale * img_full @ txt.T              # (B, 2B): captions + hard negatives
        lt = scale * txt[:b] @ img_full.T           # (B, B)
        loss_scene = 0.5 * (F.cross_entropy(li, target) + F.cross_entropy(lt, target))
        obj_t = torch.tensor(obj_t, device=dev)
        col_t = torch.tensor(col_t, device=dev)
        shp_t = torch.tensor(shp_t, device=dev)
        isb = torch.tensor(is_bg, device=dev)
        zero = torch.zeros((), device=dev)
        loss_obj = F.cross_entropy(scale * img_obj @ t_pair.T, obj_t, ignore_index=-100) if (obj_t >= 0).any() else zero
        loss_col = F.cross_entropy(scale * img_obj @ t_col.T, col_t, ignore_index=-100) if (col_t >= 0).any() else zero
        loss_attr = 0.5 * (loss_col + F.cross_entropy(scale * img_obj @ t_shp.T, shp_t, ignore_index=-100))
        bgt = torch.tensor(bg_t, device=dev)
        if (isb & (bgt >= 0)).any():
            loss_bg = F.cross_entropy(scale * img_obj[isb] @ t_bg.T, bgt[isb], ignore_index=-100)
        else:
            loss_bg = zero
        loss = loss_scene + w_pair * loss_obj + w_attr * loss_attr + 0.25 * loss_bg
        with torch.no_grad():
            keep = obj_t >= 0
            acc = ((img_obj @ t_pair.T).argmax(-1)[keep] == obj_t[keep]).float().mean().item() if keep.any() else 0.0
            sacc = ((img_full @ txt.T).argmax(-1) == target).float().mean().item()
            shacc = ((img_obj @ t_shp.T).argmax(-1)[shp_t >= 0] == shp_t[shp_t >= 0]).float().mean().item()
        return loss, dict(loss=loss.item(), scene=loss_scene.item(), obj=loss_obj.item(),
                          attr=loss_attr.item(), bg=loss_bg.item(), obj_acc=acc, scene_acc=sacc,
                          shape_acc=shacc)
    return step


def vae_step_fn(ctx: Ctx, vae, kl_w: float, crop: int = 0, seed_offset: int = 0):
    dev = ctx.dev

    def step(s: int, batch: int):
        rng = np.random.default_rng([SEEDS["vae"] + seed_offset, s])
        g = torch.Generator().manual_seed((SEEDS["vae"] + seed_offset) * 1_000_003 + s)
        _, imgs, _, _ = scene_batch(rng, batch)
        x = (to_unit(imgs) * 2 - 1).to(dev)
        if crop:  # random crops (the VAE is convolutional); aligned to the 4-pixel latent grid
            n_pos = (W.SIZE - crop) // 4 + 1
            oy = rng.integers(0, n_pos, len(imgs)) * 4
            ox = rng.integers(0, n_pos, len(imgs)) * 4
            x = torch.stack([x[i, :, oy[i]:oy[i] + crop, ox[i]:ox[i] + crop] for i in range(len(imgs))])
        with torch.set_grad_enabled(vae.encoder.conv_in.weight.requires_grad):
            post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g).to(dev)
        rec = vae.decode(z).sample
        mse = F.mse_loss(rec, x)
        l1 = (rec - x).abs().mean()
        kl = post.kl().mean() / (x.shape[1] * x.shape[2] * x.shape[3])  # per pixel
        loss = mse + 0.1 * l1 + kl_w * post.kl().mean()
        with torch.no_grad():
            psnr = 10 * math.log10(4.0 / max(F.mse_loss(vae.decode(post.mean).sample.clamp(-1, 1), x).item(), 1e-10)) \
                if s % 50 == 0 else float("nan")
        return loss, dict(loss=loss.item(), mse=mse.item(), l1=l1.item(), kl=kl.item(), psnr=psnr)
    return step


STOP = {"flag": False}


def _request_stop(signum, frame):  # SIGTERM / SIGINT / SIGUSR1: checkpoint after this step, then stop
    STOP["flag"] = True


def run_stage(ctx: Ctx, stage: str, modules: Dict[str, torch.nn.Module], params, step_fn, hp: dict,
              ema: Optional[torch.nn.Module] = None, ema_src: Optional[torch.nn.Module] = None,
              before_step=None) -> None:
    opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["wd"], betas=(0.9, 0.99))
    log = Log(os.path.join(ctx.work, f"{stage}_log.jsonl"))
    start = 0
    all_mods = dict(modules)
    if ema is not None:
        all_mods["ema"] = ema
    if os.path.exists(ctx.ckpt(stage)):
        start = load_ckpt(ctx.ckpt(stage), all_mods, opt)["step"]
        print(f"[{stage}] resumed at step {start}", flush=True)
    log.truncate_after(start)
    total = hp["steps"]
    every = ctx.args.ckpt_every
    t0 = time.time()
    for m in modules.values():
        m.train()
    for s in range(start, total):
        if before_step is not None:
            before_step(s)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(s, total, hp["lr"], hp["warmup"])
        loss, rec = step_fn(s, hp["batch"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], 1.0)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                d = min(hp["ema"], (1 + s) / (10 + s))
                for pe, pm in zip(ema.parameters(), ema_src.parameters()):
                    if not pm.requires_grad:
                        continue
                    pe.mul_(d).add_(pm.detach(), alpha=1 - d)
        rec = {"step": s, **rec, "lr": opt.param_groups[0]["lr"], "t": time.time() - t0}
        log.write(rec)
        if s % 25 == 0 or s == total - 1:
            done = s + 1 - start
            print(f"[{stage}] step {s + 1}/{total} " + " ".join(f"{k}={v:.4g}" for k, v in rec.items()
                  if k not in ("step",) and isinstance(v, float) and not math.isnan(v))
                  + f" {(time.time() - t0) / done:.2f}s/step", flush=True)
        if (s + 1) % every == 0 or s == total - 1 or STOP["flag"]:
            save_ckpt(ctx.ckpt(stage), s + 1, all_mods, opt)
        if STOP["flag"]:
            print(f"[{stage}] stopped on request after step {s + 1}; resume by running it again", flush=True)
            break
    keys = {"clip": ["loss", "scene", "obj", "attr"], "clip_ft": ["loss", "scene", "obj", "attr"],
            "clip_joint": ["loss", "scene", "obj", "attr"], "unet_ft": ["loss"], "unet_more": ["loss"], "vae": ["mse", "l1", "kl"], "vae_ft": ["mse", "l1"],
            "unet": ["loss"]}[stage]
    plot_curves(log.path, os.path.join(ctx.work, f"{stage}_loss.png"), keys, f"{stage} training loss")


@torch.no_grad()
def whiten_text_projection(ctx: Ctx, clip, ema) -> None:
    """text_projection <- c * ZCA-whitening of the frozen tower's pooled outputs over the training
    phrases, colour / shape / background words and 512 training captions (fixed seed)."""
    rng = np.random.default_rng([SEEDS["clip"], 999])
    phrases = [f"{c} {s}" for c, s in _phrase_sets()]
    texts = phrases + list(W.COLOURS) + list(W.SHAPES) + [W.bg_phrase(b) for b in W.BACKGROUNDS]
    texts += [W.caption(W.random_scene(rng)) for _ in range(512)]
    pooled = clip.text_model(input_ids=tokenize(ctx.tok, texts, TEXT_TRAIN_LEN).to(ctx.dev)).pooler_output
    mean = pooled.mean(0, keepdim=True)
    x = pooled - mean
    cov = x.T @ x / x.shape[0]
    evals, evecs = torch.linalg.eigh(cov)
    zca = evecs @ torch.diag(1.0 / torch.sqrt(evals.clamp_min(0) + 1e-5 * evals.max())) @ evecs.T
    u = F.normalize(mean, dim=-1)
    w = zca @ (torch.eye(u.shape[1], device=u.device) - u.T @ u)  # no bias: project the mean out
    w_old = clip.text_projection.weight
    if w.shape[0] != w_old.shape[0]:
        raise RuntimeError("whitening needs projection_dim == text hidden size")
    w = w * ((pooled @ w_old.T).norm(dim=-1).mean() / (pooled @ w.T).norm(dim=-1).mean())
    clip.text_projection.weight.copy_(w)
    ema.text_projection.weight.copy_(w)
    n = len(phrases)
    ph = F.normalize(pooled[:n] @ w.T, dim=-1)
    off = (ph @ ph.T - 2 * torch.eye(n, device=ph.device)).max().item()
    print(f"[clip] text_projection whitened; max phrase cosine now {off:.4f}", flush=True)


def stage_clip(ctx: Ctx) -> None:
    hp = ctx.hp("clip")
    clip = new_clip(ctx.tok).to(ctx.dev)
    ema = new_clip(ctx.tok).to(ctx.dev)
    ema.load_state_dict(clip.state_dict())
    ema.requires_grad_(False)
    print(f"[clip] {nparams(clip) / 1e6:.2f} M params", flush=True)
    text_path = os.path.join(ctx.work, "clip_text.safetensors")

    def before_step(s: int) -> None:
        if s < hp["text_steps"] or not clip.text_model.embeddings.token_embedding.weight.requires_grad:
            return
        if s == hp["text_steps"]:  # freeze: the live text tower becomes the EMA one, saved for the UNet
            clip.text_model.load_state_dict(ema.text_model.state_dict())
            save_file({k: v.contiguous() for k, v in ema.text_model.state_dict().items()}, text_path)
            print(f"[clip] text tower frozen at step {s}: {text_path}", flush=True)
        elif not os.path.exists(text_path):
            raise RuntimeError(f"resuming after the text freeze but {text_path} is missing")
        clip.text_model.requires_grad_(False)
        flag = os.path.join(ctx.work, "clip_whitened.json")
        if s >= hp["whiten_step"] and not os.path.exists(flag):
            whiten_text_projection(ctx, clip, ema)
            json.dump({"step": s}, open(flag, "w"))

    run_stage(ctx, "clip", {"clip": clip}, list(clip.parameters()), clip_step_fn(ctx, clip, hp["negs"], hp["focus_step"]), hp,
              ema=ema, ema_src=clip, before_step=before_step)


def stage_clip_ft(ctx: Ctx) -> None:
    hp = ctx.hp("clip_ft")
    clip = new_clip(ctx.tok).to(ctx.dev)
    load_ckpt(ctx.ckpt("clip"), {"ema": clip}, None)
    if not os.path.exists(os.path.join(ctx.work, "clip_whitened.json")):
        raise RuntimeError("clip_ft starts from a finished clip stage (text tower frozen, projection whitened)")
    clip.text_model.requires_grad_(False)
    ema = new_clip(ctx.tok).to(ctx.dev)
    ema.load_state_dict(clip.state_dict())
    ema.requires_grad_(False)
    params = [p for p in clip.parameters() if p.requires_grad]
    print(f"[clip_ft] {sum(p.numel() for p in params) / 1e6:.2f} M trained params", flush=True)
    step = clip_step_fn(ctx, clip, hp["negs"], focus_step=0, seed=SEEDS["clip_ft"], grey=hp["grey"],
                        w_pair=hp["w_pair"], w_attr=hp["w_attr"])
    run_stage(ctx, "clip_ft", {"clip": clip}, params, step, hp, ema=ema, ema_src=clip)


def stage_clip_joint(ctx: Ctx) -> None:
    hp = ctx.hp("clip_joint")
    clip = new_clip(ctx.tok).to(ctx.dev)
    load_ckpt(ctx.ckpt("clip_ft"), {"ema": clip}, None)
    ema = new_clip(ctx.tok).to(ctx.dev)
    ema.load_state_dict(clip.state_dict())
    ema.requires_grad_(False)
    print(f"[clip_joint] {nparams(clip) / 1e6:.2f} M trained params (both towers)", flush=True)
    step = clip_step_fn(ctx, clip, hp["negs"], focus_step=0, seed=SEEDS["clip_joint"], grey=hp["grey"],
                        w_pair=hp["w_pair"], w_attr=hp["w_attr"], n_contrast=hp["n_contrast"])
    run_stage(ctx, "clip_joint", {"clip": clip}, list(clip.parameters()), step, hp, ema=ema, ema_src=clip)
    if json.load(open(ctx.ckpt("clip_joint")[:-len(".safetensors")] + ".json"))["step"] >= hp["steps"]:
        path = os.path.join(ctx.work, "clip_text2.safetensors")
        save_file({k: v.contiguous() for k, v in ema.text_model.state_dict().items()}, path)
        print(f"[clip_joint] text tower (EMA) saved for unet_ft: {path}", flush=True)


def stage_vae(ctx: Ctx) -> None:
    hp = ctx.hp("vae")
    vae = new_vae().to(ctx.dev)
    ema = new_vae().to(ctx.dev)
    ema.load_state_dict(vae.state_dict())
    ema.requires_grad_(False)
    print(f"[vae] {nparams(vae) / 1e6:.2f} M params", flush=True)
    enc_path = os.path.join(ctx.work, "vae_encoder.safetensors")

    def before_step(s: int) -> None:
        if s < hp["enc_steps"] or not vae.encoder.conv_in.weight.requires_grad:
            return
        if s == hp["enc_steps"]:
            for name in ("encoder", "quant_conv"):
                getattr(vae, name).load_state_dict(getattr(ema, name).state_dict())
            save_file({k: v.contiguous() for k, v in ema.state_dict().items()
                       if k.startswith(("encoder.", "quant_conv."))}, enc_path)
            print(f"[vae] encoder frozen at step {s}: {enc_path}", flush=True)
        elif not os.path.exists(enc_path):
            raise RuntimeError(f"resuming after the encoder freeze but {enc_path} is missing")
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)

    run_stage(ctx, "vae", {"vae": vae}, list(vae.parameters()), vae_step_fn(ctx, vae, hp["kl"], hp["crop"]), hp,
              ema=ema, ema_src=vae, before_step=before_step)


def load_trained_clip(ctx: Ctx):
    """The final CLIP: the EMA of the last CLIP stage that has run (clip_joint, clip_ft, clip)."""
    clip = new_clip(ctx.tok)
    stage = next(st for st in ("clip_joint", "clip_ft", "clip") if os.path.exists(ctx.ckpt(st)))
    load_ckpt(ctx.ckpt(stage), {"ema": clip}, None)
    return clip.to(ctx.dev).eval()


def load_frozen_encoder(ctx: Ctx):
    """The VAE with its encoder as frozen at vae enc_steps (what the UNet's latents come from)."""
    vae = new_vae()
    path = os.path.join(ctx.work, "vae_encoder.safetensors")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run the vae stage past enc_steps first")
    missing, unexpected = vae.load_state_dict(load_file(path), strict=False)
    assert not unexpected and all(not k.startswith(("encoder.", "quant_conv.")) for k in missing)
    return vae.to(ctx.dev).eval()


def load_frozen_text(ctx: Ctx, name: str = "clip_text"):
    """A frozen CLIP text tower: clip_text (clip stage, text_steps; the unet stage's) or clip_text2
    (clip_joint's; the unet_ft stage's and the shipped one)."""
    from transformers import CLIPTextModel
    clip = new_clip(ctx.tok)
    text = CLIPTextModel(clip.config.text_config)
    path = os.path.join(ctx.work, f"{name}.safetensors")
    if not os.path.exists(path):
        raise RuntimeError(f"{path} is missing: run the clip stage past text_steps first")
    text.text_model.load_state_dict(load_file(path))
    return text.to(ctx.dev).eval()


def load_trained_vae(ctx: Ctx):
    """The final VAE: the vae_ft stage's EMA when that stage has run, else the vae stage's."""
    vae = new_vae()
    load_ckpt(ctx.ckpt("vae_ft") if os.path.exists(ctx.ckpt("vae_ft")) else ctx.ckpt("vae"), {"ema": vae}, None)
    return vae.to(ctx.dev).eval()


def stage_vae_ft(ctx: Ctx) -> None:
    hp = ctx.hp("vae_ft")
    vae = new_vae().to(ctx.dev)
    load_ckpt(ctx.ckpt("vae"), {"ema": vae}, None)
    enc = load_file(os.path.join(ctx.work, "vae_encoder.safetensors"))
    for k, v in enc.items():
        assert torch.equal(v, vae.state_dict()[k]), f"vae stage EMA encoder differs from the frozen one at {k}"
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    ema = new_vae().to(ctx.dev)
    ema.load_state_dict(vae.state_dict())
    ema.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    run_stage(ctx, "vae_ft", {"vae": vae}, params, vae_step_fn(ctx, vae, hp["kl"], hp["crop"], seed_offset=7), hp,
              ema=ema, ema_src=vae)


def latent_pool(ctx: Ctx, vae, n: int):
    """Renders n training scenes and encodes them: (mean, std) latents, captions.  Cached."""
    path = os.path.join(ctx.work, f"pool_{n}.safetensors")
    cap_path = path[:-len(".safetensors")] + ".json"
    if os.path.exists(path) and os.path.exists(cap_path):
        t = load_file(path)
        return t["mean"], t["std"], json.load(open(cap_path))["captions"]
    rng = np.random.default_rng([SEEDS["pool"]])
    means, stds, caps = [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, n, 256):
            scenes, imgs, _, _ = scene_batch(rng, min(256, n - i))
            caps += [W.caption(s) for s in scenes]
            post = vae.encode((to_unit(imgs) * 2 - 1).to(ctx.dev)).latent_dist
            means.append(post.mean.cpu())
            stds.append(post.std.cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    print(f"[unet] encoded {n} scenes in {time.time() - t0:.0f}s", flush=True)
    save_file({"mean": mean.contiguous(), "std": std.contiguous()}, path)
    json.dump({"captions": caps}, open(cap_path, "w"))
    return mean, std, caps


def scaling_factor(mean: torch.Tensor, std: torch.Tensor) -> float:
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(mean.shape[0], generator=g)[:4096]
    z = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)
    return float(1.0 / z.flatten().std())


def unet_step_fn(ctx: Ctx, stage: str, unet, text, mean, std, caps, sf: float, hp: dict):
    """One eps-prediction step on a batch of pool latents (a fresh posterior sample each time);
    batches and noise are a function of (stage, step), so a resumed run equals an uninterrupted one."""
    tok = ctx.tok
    dev = ctx.dev
    n = mean.shape[0]
    acp = new_train_scheduler().alphas_cumprod.to(dev)

    def step(s: int, batch: int):
        g = torch.Generator().manual_seed(SEEDS[stage] * 1_000_003 + s)
        idx = torch.randint(0, n, (batch,), generator=g)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)).to(dev) * sf
        flip = torch.rand(batch, generator=g) < hp["uncond"]
        texts = ["" if f else caps[i] for f, i in zip(flip.tolist(), idx.tolist())]
        with torch.no_grad():
            cond = text(input_ids=tokenize(tok, texts, MAX_LEN).to(dev)).last_hidden_state
        t = torch.randint(0, 1000, (batch,), generator=g).to(dev)
        eps = torch.randn(z0.shape, generator=g).to(dev)
        a = acp[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, eps)
        return loss, dict(loss=loss.item())
    return step


def stage_unet(ctx: Ctx, stage: str = "unet") -> None:
    """stage unet: from scratch on clip_text; unet_ft: from the unet stage's EMA on clip_text2."""
    hp = ctx.hp(stage)
    vae = load_frozen_encoder(ctx)
    text = load_frozen_text(ctx, "clip_text2" if stage == "unet_ft" else "clip_text").text_model
    for p in text.parameters():
        p.requires_grad_(False)
    mean, std, caps = latent_pool(ctx, vae, hp["pool"])
    sf = scaling_factor(mean, std)
    json.dump({"scaling_factor": sf}, open(os.path.join(ctx.work, "vae_scaling.json"), "w"))
    print(f"[unet] vae scaling_factor = {sf:.5f}", flush=True)
    unet = new_unet().to(ctx.dev)
    if stage == "unet_ft":
        load_ckpt(ctx.ckpt("unet"), {"ema": unet}, None)
    ema = new_unet().to(ctx.dev)
    ema.load_state_dict(unet.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    print(f"[{stage}] {nparams(unet) / 1e6:.2f} M params", flush=True)
    step = unet_step_fn(ctx, stage, unet, text, mean, std, caps, sf, hp)
    run_stage(ctx, stage, {"unet": unet}, list(unet.parameters()), step, hp, ema=ema, ema_src=unet)


def stage_unet_more(ctx: Ctx) -> None:
    """unet_more (issue 14, a stronger tiny model): the shipped UNet trained further, from the
    committed weights alone (models/tiny-shapes: its UNet, text encoder, VAE encoder and scaling
    factor), with a fresh AdamW. Needs no earlier stage's checkpoint, so any session can run it."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel
    hp = ctx.hp("unet_more")
    sd_dir = os.path.join(ctx.args.base, "tiny-shapes")
    vae = AutoencoderKL.from_pretrained(os.path.join(sd_dir, "vae")).to(ctx.dev).eval()
    text = CLIPTextModel.from_pretrained(os.path.join(sd_dir, "text_encoder")).text_model.to(ctx.dev).eval()
    text.requires_grad_(False)
    mean, std, caps = latent_pool(ctx, vae, hp["pool"])
    sf = float(vae.config.scaling_factor)  # the shipped one: the engine scales latents by it
    init = ctx.args.init_unet or os.path.join(sd_dir, "unet")
    unet = UNet2DConditionModel.from_pretrained(init).float().to(ctx.dev)
    ema = UNet2DConditionModel.from_pretrained(init).float().to(ctx.dev)
    ema.requires_grad_(False)
    print(f"[unet_more] UNet from {init}, the rest from {sd_dir}: {nparams(unet) / 1e6:.2f} M params, "
          f"scaling_factor {sf}", flush=True)
    step = unet_step_fn(ctx, "unet_more", unet, text, mean, std, caps, sf, hp)
    run_stage(ctx, "unet_more", {"unet": unet}, list(unet.parameters()), step, hp, ema=ema, ema_src=unet)


def export_unet_more(ctx: Ctx, out_dir: str) -> None:
    """Writes OUT/tiny-shapes: the shipped pipeline with the unet_more stage's EMA UNet (fp16, as
    shipped). OUT may be models/ itself (then only unet/ is replaced)."""
    from diffusers import UNet2DConditionModel
    src = os.path.join(ctx.args.base, "tiny-shapes")
    dst = os.path.join(out_dir, "tiny-shapes")
    unet = UNet2DConditionModel.from_pretrained(os.path.join(src, "unet")).float()
    meta = load_ckpt(ctx.ckpt("unet_more"), {"ema": unet}, None)
    if os.path.abspath(src) != os.path.abspath(dst):
        if os.path.exists(dst):
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
    tmp = os.path.join(dst, "unet.tmp")
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    unet.half().save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(os.path.join(dst, "unet"))
    os.replace(tmp, os.path.join(dst, "unet"))
    print(f"[export-more] {dst}: UNet of unet_more step {meta['step']}", flush=True)


# ----------------------------------------------------------------------------- export

RESUME_DIR = os.path.join(HERE, "resume")


def pack_resume(ctx: Ctx, out_dir: str) -> None:
    """Writes tools/train/resume/: the live weights and AdamW state of the stages that have not
    reached their planned steps (their EMA weights are the shipped models, not repeated here)."""
    os.makedirs(RESUME_DIR, exist_ok=True)
    for stage in ("clip", "clip_ft", "clip_joint", "vae", "vae_ft", "unet", "unet_ft"):
        if not os.path.exists(ctx.ckpt(stage)):
            continue
        meta = json.load(open(ctx.ckpt(stage)[:-len(".safetensors")] + ".json"))
        if meta["step"] >= ctx.hp(stage)["steps"]:
            continue
        t = {k: v for k, v in load_file(ctx.ckpt(stage)).items() if not k.startswith("ema.")}
        save_file(t, os.path.join(RESUME_DIR, f"{stage}.safetensors"))
        json.dump(meta, open(os.path.join(RESUME_DIR, f"{stage}.json"), "w"))
        for extra in ("clip_whitened.json", "vae_scaling.json"):
            if os.path.exists(os.path.join(ctx.work, extra)):
                shutil.copy(os.path.join(ctx.work, extra), RESUME_DIR)
        print(f"[resume] packed {stage} at step {meta['step']}", flush=True)


def unpack_resume(ctx: Ctx, models_dir: str) -> None:
    """Rebuilds the work folder from tools/train/resume/ + the shipped models, so that every
    stage resumes where the committed run stopped."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPModel
    os.makedirs(ctx.work, exist_ok=True)
    clip = CLIPModel.from_pretrained(os.path.join(models_dir, "tiny-clip"))
    vae = AutoencoderKL.from_pretrained(os.path.join(models_dir, "tiny-shapes", "vae"))
    unet = UNet2DConditionModel.from_pretrained(os.path.join(models_dir, "tiny-shapes", "unet"))
    save_file({k: v.contiguous() for k, v in clip.text_model.state_dict().items()},
              os.path.join(ctx.work, "clip_text.safetensors"))
    save_file({k: v.contiguous() for k, v in vae.state_dict().items() if k.startswith(("encoder.", "quant_conv."))},
              os.path.join(ctx.work, "vae_encoder.safetensors"))
    json.dump({"scaling_factor": vae.config.scaling_factor}, open(os.path.join(ctx.work, "vae_scaling.json"), "w"))
    for stage, model in (("clip", clip), ("clip_ft", clip), ("vae", vae), ("vae_ft", vae), ("unet", unet)):
        ema = {f"ema.{k}": v.contiguous() for k, v in model.state_dict().items()}
        rp = os.path.join(RESUME_DIR, f"{stage}.safetensors")
        if os.path.exists(rp):
            t = {**load_file(rp), **ema}
            meta = json.load(open(rp[:-len(".safetensors")] + ".json"))
        else:  # finished stage: live = EMA is all that later stages and the export read
            t = {**{f"{stage}.{k}": v.contiguous() for k, v in model.state_dict().items()}, **ema}
            meta = {"step": ctx.hp(stage)["steps"]}
        save_file(t, ctx.ckpt(stage))
        json.dump(meta, open(ctx.ckpt(stage)[:-len(".safetensors")] + ".json", "w"))
    if os.path.exists(os.path.join(RESUME_DIR, "clip_whitened.json")):
        shutil.copy(os.path.join(RESUME_DIR, "clip_whitened.json"), ctx.work)
    print(f"[resume] work folder {ctx.work} rebuilt; run the stages again to continue", flush=True)


def stage_export(ctx: Ctx, out_dir: str) -> None:
    from diffusers import DDIMScheduler
    from transformers import CLIPImageProcessor
    clip = load_trained_clip(ctx).cpu()
    vae = load_trained_vae(ctx).cpu()
    unet = new_unet()
    unet_stage = "unet_ft" if os.path.exists(ctx.ckpt("unet_ft")) else "unet"
    load_ckpt(ctx.ckpt(unet_stage), {"ema": unet}, None)
    sf = json.load(open(os.path.join(ctx.work, "vae_scaling.json")))["scaling_factor"]
    enc = load_file(os.path.join(ctx.work, "vae_encoder.safetensors"))
    for k, v in enc.items():
        assert torch.equal(v, vae.state_dict()[k]), f"VAE encoder differs from the UNet's at {k}"
    vae.register_to_config(scaling_factor=round(sf, 5))
    clip_dir = os.path.join(out_dir, "tiny-clip")
    sd_dir = os.path.join(out_dir, "tiny-shapes")
    for d in (clip_dir, sd_dir):
        if os.path.exists(d):
            shutil.rmtree(d)
    clip.save_pretrained(clip_dir, safe_serialization=True)
    ctx.tok.save_pretrained(clip_dir)
    CLIPImageProcessor(size={"shortest_edge": CLIP_VISION["image_size"]},
                       crop_size={"height": CLIP_VISION["image_size"], "width": CLIP_VISION["image_size"]},
                       image_mean=CLIP_MEAN, image_std=CLIP_STD).save_pretrained(clip_dir)
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTextModel
    text = load_frozen_text(ctx, "clip_text2" if unet_stage == "unet_ft" else "clip_text").cpu()
    for k, v in text.text_model.state_dict().items():
        assert torch.equal(v, clip.text_model.state_dict()[k]), f"text tower of CLIP and SD differ at {k}"
    sched = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                          beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                          steps_offset=1)
    # The UNet ships in fp16, as most SD 1.x checkpoints do (and it keeps both folders under 40 MB);
    # the engine computes in fp32 from it. The small VAE and text tower stay fp32.
    unet = unet.half()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=ctx.tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(sd_dir, safe_serialization=True)
    for d in (clip_dir, sd_dir):
        tot = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
        print(f"[export] {d}: {tot / 1e6:.1f} MB", flush=True)
    for st in ("clip", "clip_ft", "clip_joint", "vae", "vae_ft", "unet", "unet_ft"):
        png = os.path.join(ctx.work, f"{st}_loss.png")
        if os.path.exists(png):
            shutil.copy(png, os.path.join(HERE, f"{st}_loss.png"))


# ----------------------------------------------------------------------------- measure

def measure(ctx: Ctx, n: int = 4) -> None:
    def timeit(name, fn, params):
        opt = torch.optim.AdamW(params, lr=1e-4)
        ts = []
        for s in range(n + 1):
            t = time.time()
            loss, _ = fn(s)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ts.append(time.time() - t)
        print(f"[measure] {name}: {np.mean(ts[1:]):.2f} s/step", flush=True)

    clip = new_clip(ctx.tok).to(ctx.dev)
    print(f"clip {nparams(clip) / 1e6:.2f}M")
    f = clip_step_fn(ctx, clip)
    timeit(f"clip batch {DEFAULTS['clip']['batch']}", lambda s: f(s, DEFAULTS["clip"]["batch"]), list(clip.parameters()))
    vae = new_vae().to(ctx.dev)
    print(f"vae {nparams(vae) / 1e6:.2f}M")
    f2 = vae_step_fn(ctx, vae, 1e-6)
    timeit(f"vae batch {DEFAULTS['vae']['batch']}", lambda s: f2(s + 1, DEFAULTS["vae"]["batch"]), list(vae.parameters()))
    unet = new_unet().to(ctx.dev)
    print(f"unet {nparams(unet) / 1e6:.2f}M")
    b = DEFAULTS["unet"]["batch"]
    cond = torch.randn(b, MAX_LEN, CLIP_TEXT["hidden_size"], device=ctx.dev)

    def f3(s):
        z = torch.randn(b, 4, 16, 16, device=ctx.dev)
        t = torch.randint(0, 1000, (b,), device=ctx.dev)
        with torch.no_grad():
            clip.text_model(input_ids=tokenize(ctx.tok, ["a red circle on the left"] * b, MAX_LEN).to(ctx.dev))
        return F.mse_loss(unet(z, t, encoder_hidden_states=cond).sample, z), None
    timeit(f"unet batch {b}", f3, list(unet.parameters()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="all",
                    choices=["all", "clip", "clip_ft", "clip_joint", "vae", "vae_ft", "unet", "unet_ft", "export", "pack-resume",
                             "unpack-resume", "unet_more", "export-more"])
    ap.add_argument("--base", default=os.path.join(ROOT, "models"),
                    help="the models unet_more starts from and export-more copies (default: the shipped ones)")
    ap.add_argument("--init-unet", default=None,
                    help="unet_more: a UNet folder to start from instead of BASE/tiny-shapes/unet (e.g. "
                         "tools/train/resume/unet_more, an earlier session's run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", default=os.path.join(HERE, "checkpoints"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models"))
    ap.add_argument("--steps-clip", type=int, default=None)
    ap.add_argument("--steps-clip-ft", type=int, default=None)
    ap.add_argument("--steps-clip-joint", type=int, default=None)
    ap.add_argument("--steps-unet-ft", type=int, default=None)
    ap.add_argument("--steps-vae", type=int, default=None)
    ap.add_argument("--steps-unet", type=int, default=None)
    ap.add_argument("--steps-unet-more", type=int, default=None)
    ap.add_argument("--clip-text-steps", type=int, default=None, help="freeze the text tower after N CLIP steps")
    ap.add_argument("--vae-enc-steps", type=int, default=None, help="freeze the VAE encoder after N steps")
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--pool", type=int, default=None, help="UNet latent pool size (smoke tests)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("train.py: error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    for k in ("steps_clip", "steps_clip_ft", "steps_clip_joint", "steps_vae", "steps_unet", "steps_unet_ft",
              "steps_unet_more"):
        v = getattr(args, k)
        if v is not None and v < 1:
            print(f"train.py: error: --{k.replace('_', '-')} must be >= 1, got {v}", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, _request_stop)
    ctx = Ctx(args)
    if args.measure:
        measure(ctx)
        return 0
    stages = ["clip", "clip_ft", "clip_joint", "vae", "vae_ft", "unet", "unet_ft", "export"] if args.stage == "all" else [args.stage]
    for st in stages:
        if STOP["flag"]:
            return 1
        if st == "clip":
            stage_clip(ctx)
        elif st == "clip_ft":
            stage_clip_ft(ctx)
        elif st == "clip_joint":
            stage_clip_joint(ctx)
        elif st == "unet_ft":
            stage_unet(ctx, "unet_ft")
        elif st == "vae":
            stage_vae(ctx)
        elif st == "vae_ft":
            stage_vae_ft(ctx)
        elif st == "unet":
            stage_unet(ctx)
        elif st == "pack-resume":
            pack_resume(ctx, args.out)
        elif st == "unpack-resume":
            unpack_resume(ctx, args.out)
        elif st == "unet_more":
            stage_unet_more(ctx)
        elif st == "export-more":
            export_unet_more(ctx, args.out)
        else:
            stage_export(ctx, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
