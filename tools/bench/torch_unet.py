"""PyTorch side of bench/bench_unet.c: the same UNet forward and VAE decode, same folder, same
sizes, same thread count, fp32, no grad.

    .venv-tools/bin/python tools/bench/torch_unet.py /tmp/sd15 [--what unet|vae|text|all] [--threads 2]
                                                     [--iters 3] [--batch 2] [--latent 64] [--ctx 77]

Debian's torch (the tools venv) with diffusers 0.16.1: on torch < 2.0 attention is the plain
baddbmm + softmax (AttnProcessor), as a user of those versions gets it. Prints seconds per pass
(best and mean of --iters after one warm-up), CPU seconds per pass (all threads) and the
process's peak resident memory.
"""
import argparse
import os
import resource
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0 * 1024.0)


def report(what, ts, cpu):
    print(f"{what}: best {min(ts):.3f} s, mean {sum(ts) / len(ts):.3f} s over {len(ts)} runs "
          f"({' '.join(f'{t:.3f}' for t in ts)}); CPU time best {min(cpu):.3f} s")


@torch.no_grad()
def bench_unet(d, args):
    t0 = time.time()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(d, "unet")).float().eval()
    n = sum(p.numel() for p in unet.parameters())
    wgb = n * 4 / 2**30
    print(f"unet: {n} parameters ({wgb:.2f} GiB fp32), loaded in {time.time() - t0:.2f} s")
    g = torch.Generator().manual_seed(0)
    B, lat, L = args.batch, args.latent, args.ctx
    x = torch.randn(B, unet.config.in_channels, lat, lat, generator=g)
    ctx = torch.randn(B, L, unet.config.cross_attention_dim, generator=g)
    ts = torch.tensor([float(981 - 480 * b % 1000) for b in range(B)])  # one timestep per row
    print(f"unet: batch {B}, latent {lat}x{lat}, context {L}x{unet.config.cross_attention_dim}")
    times, cpu = [], []
    for i in range(-1, args.iters):
        s, cs = time.time(), time.process_time()
        out = unet(x, ts, encoder_hidden_states=ctx).sample
        if i >= 0:
            times.append(time.time() - s)
            cpu.append(time.process_time() - cs)
        else:
            print(f"unet: warm-up {time.time() - s:.3f} s")
    report("unet forward", times, cpu)
    print(f"unet: process peak RSS {peak_rss_gib():.2f} GiB (weights {wgb:.2f} GiB + "
          f"{peak_rss_gib() - wgb:.2f} GiB); checksum {out.double().sum().item():.6g}")
    del unet


@torch.no_grad()
def bench_vae(d, args):
    vae = AutoencoderKL.from_pretrained(os.path.join(d, "vae")).float().eval()
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    lat = args.latent
    z = torch.randn(1, vae.config.latent_channels, lat, lat, generator=torch.Generator().manual_seed(1))
    print(f"vae: decode {lat}x{lat} latent -> {lat * f}x{lat * f} image")
    times, cpu = [], []
    for i in range(-1, args.iters):
        s, cs = time.time(), time.process_time()
        vae.decode(z)
        if i >= 0:
            times.append(time.time() - s)
            cpu.append(time.process_time() - cs)
        else:
            print(f"vae: warm-up {time.time() - s:.3f} s")
    report("vae decode", times, cpu)
    print(f"vae: process peak RSS {peak_rss_gib():.2f} GiB")


@torch.no_grad()
def bench_text(d, args):
    from transformers import CLIPTextModel
    te = CLIPTextModel.from_pretrained(os.path.join(d, "text_encoder")).float().eval()
    V = te.config.vocab_size
    ids = torch.tensor([[(i * 7919) % (V - 1) for i in range(b * args.ctx, (b + 1) * args.ctx)]
                        for b in range(args.batch)])
    print(f"text: batch {args.batch} x {args.ctx} tokens, hidden {te.config.hidden_size}")
    times, cpu = [], []
    for i in range(-1, args.iters):
        s, cs = time.time(), time.process_time()
        te(ids)
        if i >= 0:
            times.append(time.time() - s)
            cpu.append(time.process_time() - cs)
    report("text encoder forward", times, cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--what", default="all", choices=["unet", "vae", "text", "all"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=77)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch_unet: {args.dir}, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    if args.what in ("unet", "all"):
        bench_unet(args.dir, args)
    if args.what in ("vae", "all"):
        bench_vae(args.dir, args)
    if args.what in ("text", "all"):
        bench_text(args.dir, args)


if __name__ == "__main__":
    main()
