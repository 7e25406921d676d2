#!/usr/bin/env python3
"""Python-side check of the shipped tiny models against issue 4's quality bars (the C engine
measures the same things with its own code; this is the reference the numbers can be compared to).

    .venv-tools/bin/python tools/train/eval.py [--models models] [--n 64] [--threads 2]

Prints, on held-out scenes (seeds disjoint from training; objects drawn with held-out
colour+shape combinations where stated):
  1. CLIP through the masked attention (DESIGN.md §2.4): object phrase / colour / shape accuracy
  2. VAE reconstruction PSNR (posterior mean)
  3. generation for held-out prompts (DDIM 50, CFG 7.5): share of images with every object right,
     judged by the tiny CLIP through each object's slot mask
  4. DDIM inversion (50 steps, source prompt, guidance 1) then reconstruction: PSNR
  5. how much the text encoder's per-token output moves when a colour, shape or position
     word changes (what the UNet's cross-attention has to tell captions apart by)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import train as T  # noqa: E402

W = T.W
EVAL_SEED = 30_000_000


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b in [0,1], (B,3,H,W) -> per-image PSNR in dB."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


class Scorer:
    def __init__(self, clip_dir: str):
        from transformers import CLIPModel, CLIPTokenizer
        self.clip = CLIPModel.from_pretrained(clip_dir).eval()
        self.tok = CLIPTokenizer.from_pretrained(clip_dir)
        self.pairs = [(c, s) for c in W.COLOURS for s in W.SHAPES]
        with torch.no_grad():
            ids = T.tokenize(self.tok, [f"{c} {s}" for c, s in self.pairs], T.MAX_LEN)
            self.t = torch.nn.functional.normalize(T.text_embeds(self.clip, ids), dim=-1)
        self.grid = self.clip.config.vision_config.image_size // self.clip.config.vision_config.patch_size

    @torch.no_grad()
    def classify(self, x01: torch.Tensor, masks: list) -> list:
        """x01 (B,3,64,64) in [0,1]; masks: one (64,64) bool per image -> predicted (colour, shape)."""
        pm = torch.from_numpy(np.stack([T.patch_mask(m, self.grid, "center").reshape(-1) for m in masks]))
        e = T.masked_image_embeds(self.clip, T.clip_normalize(x01), T.vision_attention_mask(pm))
        e = torch.nn.functional.normalize(e, dim=-1)
        return [self.pairs[i] for i in (e @ self.t.T).argmax(-1).tolist()]


@torch.no_grad()
def text_sensitivity(sd_dir: str, n: int = 64) -> dict:
    """How much the text encoder's per-token output (what the UNet's cross-attention reads)
    moves when one word of a caption changes: the first object's colour, its shape, or its
    position word ("left" -> "right", ...). Mean over n random captions of
    |h(changed) - h(original)| / |h(original)| at the changed token, and averaged over the
    tokens after it (up to the end of text)."""
    from transformers import CLIPTextModel, CLIPTokenizer
    tok = CLIPTokenizer.from_pretrained(os.path.join(sd_dir, "tokenizer"))
    te = CLIPTextModel.from_pretrained(os.path.join(sd_dir, "text_encoder")).eval()
    rng = np.random.default_rng(EVAL_SEED + 7)
    out = {}
    for kind in ("colour", "shape", "position"):
        at, after = [], []
        for _ in range(n):
            sc = W.random_scene(rng)
            o = sc.objects[0]
            if kind == "colour":
                o2 = W.Obj(o.shape, [c for c in W.COLOURS if c != o.colour][int(rng.integers(len(W.COLOURS) - 1))], o.position)
            elif kind == "shape":
                o2 = W.Obj([s for s in W.SHAPES if s != o.shape][int(rng.integers(len(W.SHAPES) - 1))], o.colour, o.position)
            else:
                used = {x.position for x in sc.objects}
                free = [p for p in W.POSITIONS if p not in used]
                if not free:
                    continue
                o2 = W.Obj(o.shape, o.colour, free[int(rng.integers(len(free)))])
            caps = [W.caption(sc), W.caption(W.Scene(sc.background, (o2,) + tuple(sc.objects[1:])))]
            ids = tok(caps, padding="max_length", max_length=T.MAX_LEN, return_tensors="pt").input_ids
            h = te(ids).last_hidden_state
            diff = (h[0] - h[1]).norm(dim=-1) / h[0].norm(dim=-1)
            changed = (ids[0] != ids[1]).nonzero().flatten()
            if len(changed) == 0:
                continue
            first = int(changed[0])
            end = int((ids[0] == tok.eos_token_id).nonzero()[0])
            at.append(float(diff[first]))
            if end > first + 1:
                after.append(float(diff[first + 1:end + 1].mean()))
        out[kind] = {"at_word": float(np.mean(at)), "after": float(np.mean(after))}
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--n", type=int, default=64, help="scenes per measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-gen", action="store_true")
    ap.add_argument("--quick", action="store_true", help="CLIP and VAE only (no UNet)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    sd = os.path.join(args.models, "tiny-shapes")
    scorer = Scorer(os.path.join(args.models, "tiny-clip"))
    vae = AutoencoderKL.from_pretrained(os.path.join(sd, "vae")).eval()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(sd, "unet")).float().eval()  # shipped in fp16
    text = CLIPTextModel.from_pretrained(os.path.join(sd, "text_encoder")).eval()
    tok = CLIPTokenizer.from_pretrained(os.path.join(sd, "tokenizer"))
    sched = DDIMScheduler.from_pretrained(os.path.join(sd, "scheduler"))
    sf = vae.config.scaling_factor
    res = {}

    # held-out scenes: every scene contains at least one held-out combination
    rng = np.random.default_rng(EVAL_SEED)
    scenes = [W.random_scene(rng, heldout="require") for _ in range(args.n)]
    rendered = [W.render(s) for s in scenes]
    x01 = T.to_unit(np.stack([r[0] for r in rendered]))

    # 1. CLIP through the mask
    imgs, masks, truth = [], [], []
    for i, (sc, r) in enumerate(zip(scenes, rendered)):
        for o, m in zip(sc.objects, r[1]):
            imgs.append(x01[i])
            masks.append(m)
            truth.append(o.key())
    pred = []
    for j in range(0, len(imgs), 128):
        pred += scorer.classify(torch.stack(imgs[j:j + 128]), masks[j:j + 128])
    ok = [p == t for p, t in zip(pred, truth)]
    held = [t in W.HELDOUT_SET for t in truth]
    res["clip_object_acc"] = float(np.mean(ok))
    res["clip_object_acc_heldout"] = float(np.mean([o for o, h in zip(ok, held) if h]))
    res["clip_object_acc_seen"] = float(np.mean([o for o, h in zip(ok, held) if not h]))
    res["clip_colour_acc"] = float(np.mean([p[0] == t[0] for p, t in zip(pred, truth)]))
    res["clip_shape_acc"] = float(np.mean([p[1] == t[1] for p, t in zip(pred, truth)]))
    print(f"1. CLIP masked: object {res['clip_object_acc']:.3f} (held-out combos "
          f"{res['clip_object_acc_heldout']:.3f}, seen {res['clip_object_acc_seen']:.3f}); colour "
          f"{res['clip_colour_acc']:.3f}, shape {res['clip_shape_acc']:.3f}  [bar >= 0.95]", flush=True)

    # 2. VAE
    with torch.no_grad():
        lat = vae.encode(x01 * 2 - 1).latent_dist.mean
        rec = ((vae.decode(lat).sample + 1) / 2).clamp(0, 1)
    res["vae_psnr"] = float(psnr(rec, x01).mean())
    res["text_sensitivity"] = text_sensitivity(sd)
    print("5. text encoder: relative change of the per-token output when one word changes "
          + ", ".join(f"{k}: {v['at_word']:.2f} at the word, {v['after']:.2f} after it"
                      for k, v in res["text_sensitivity"].items()), flush=True)
    print(f"2. VAE reconstruction PSNR {res['vae_psnr']:.2f} dB  [bar >= 30]", flush=True)

    if args.quick:
        if args.json:
            json.dump(res, open(args.json, "w"), indent=1)
        return 0

    def encode_text(prompts):
        with torch.no_grad():
            return text(input_ids=T.tokenize(tok, prompts, T.MAX_LEN)).last_hidden_state

    src = encode_text([W.caption(s) for s in scenes])

    # 4. DDIM inversion + reconstruction (guidance 1)
    sched.set_timesteps(50)
    ts = sched.timesteps.flip(0)  # increasing
    acp = sched.alphas_cumprod
    z = lat * sf
    with torch.no_grad():
        for t in ts:
            t_prev = int(t) - 1000 // 50
            a = acp[t_prev] if t_prev >= 0 else sched.final_alpha_cumprod
            b = acp[int(t)]
            eps = unet(z, t, encoder_hidden_states=src).sample
            x0 = (z - (1 - a).sqrt() * eps) / a.sqrt()
            z = b.sqrt() * x0 + (1 - b).sqrt() * eps
        for t in sched.timesteps:
            eps = unet(z, t, encoder_hidden_states=src).sample
            z = sched.step(eps, t, z).prev_sample
        rec2 = ((vae.decode(z / sf).sample + 1) / 2).clamp(0, 1)
    res["inversion_psnr"] = float(psnr(rec2, x01).mean())
    print(f"4. DDIM inversion+reconstruction PSNR {res['inversion_psnr']:.2f} dB  [bar >= 25]", flush=True)

    # 3. generation for held-out prompts
    if not args.skip_gen:
        g = torch.Generator().manual_seed(0)
        uncond = encode_text([""] * len(scenes))
        z = torch.randn(len(scenes), 4, lat.shape[2], lat.shape[3], generator=g)
        with torch.no_grad():
            for t in sched.timesteps:
                e = unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([uncond, src])).sample
                eu, ec = e.chunk(2)
                z = sched.step(eu + 7.5 * (ec - eu), t, z).prev_sample
            gen = ((vae.decode(z / sf).sample + 1) / 2).clamp(0, 1)
        all_ok, obj_ok = [], []
        for i, (sc, r) in enumerate(zip(scenes, rendered)):
            p = scorer.classify(gen[i:i + 1].expand(len(sc.objects), -1, -1, -1), r[1])
            oks = [pp == o.key() for pp, o in zip(p, sc.objects)]
            obj_ok += oks
            all_ok.append(all(oks))
        res["gen_all_objects_right"] = float(np.mean(all_ok))
        res["gen_object_right"] = float(np.mean(obj_ok))
        print(f"3. generation (held-out prompts): every object right {res['gen_all_objects_right']:.3f}, "
              f"per object {res['gen_object_right']:.3f}  [bar >= 0.80]", flush=True)
        from PIL import Image
        k8 = min(16, len(scenes)) // 8
    if not args.skip_gen and k8:
        grid = (gen[:16].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        src_grid = np.stack([r[0] for r in rendered[:16]])
        rows = [np.concatenate(list(src_grid[k * 8:(k + 1) * 8]), 1) for k in range(k8)]
        rows += [np.concatenate(list(grid[k * 8:(k + 1) * 8]), 1) for k in range(k8)]
        Image.fromarray(np.concatenate(rows, 0)).resize((1024, 256 * k8), Image.NEAREST).save(
            os.path.join(HERE, "samples.png"))
    if args.json:
        json.dump(res, open(args.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
