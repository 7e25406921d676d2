"""Tensor-name mapping between diffusers/transformers and the original LDM (CompVis) SD 1.x layout.

Shared by tools/fixtures/make_sd_fixtures.py and tools/make_random_sd.py.

The original single-file SD 1.x checkpoint holds three models under fixed prefixes:
    model.diffusion_model.*            UNet (ldm.modules.diffusionmodules.openaimodel.UNetModel)
    first_stage_model.*                VAE  (ldm.models.autoencoder.AutoencoderKL)
    cond_stage_model.transformer.*     CLIP text encoder (transformers CLIPTextModel, keys text_model.*)

The mapping is derived from the LDM module layout and works for any SD1-style config
(n levels, layers_per_block L, attention on some levels), not only the SD 1.5 one:

UNet (diffusers name -> LDM name, without the prefix):
    conv_in                              input_blocks.0.0
    time_embedding.linear_1 / linear_2   time_embed.0 / time_embed.2
    down_blocks.i.resnets.j              input_blocks.(1 + i*(L+1) + j).0      (resnet renames below)
    down_blocks.i.attentions.j           input_blocks.(1 + i*(L+1) + j).1      (same inner names)
    down_blocks.i.downsamplers.0.conv    input_blocks.(1 + i*(L+1) + L).0.op
    mid_block.resnets.0 / .1             middle_block.0 / middle_block.2
    mid_block.attentions.0               middle_block.1
    up_blocks.i.resnets.j                output_blocks.(i*(L+1) + j).0
    up_blocks.i.attentions.j             output_blocks.(i*(L+1) + j).1
    up_blocks.i.upsamplers.0             output_blocks.(i*(L+1) + L).(2 if level has attention else 1)
    conv_norm_out / conv_out             out.0 / out.2
  resnet inner names: norm1 -> in_layers.0, conv1 -> in_layers.2, time_emb_proj -> emb_layers.1,
    norm2 -> out_layers.0, conv2 -> out_layers.3, conv_shortcut -> skip_connection.
  Transformer2DModel inner names (norm, proj_in, transformer_blocks.0.{attn1,attn2}.{to_q,to_k,to_v,
    to_out.0}, norm1..3, ff.net.0.proj, ff.net.2, proj_out) are the same in LDM's SpatialTransformer.

VAE (n levels):
    encoder.down_blocks.i.resnets.j          encoder.down.i.block.j
    encoder.down_blocks.i.downsamplers.0     encoder.down.i.downsample
    decoder.up_blocks.i.resnets.j            decoder.up.(n-1-i).block.j       (REVERSED level order)
    decoder.up_blocks.i.upsamplers.0         decoder.up.(n-1-i).upsample
    {en,de}coder.mid_block.resnets.0 / .1    {en,de}coder.mid.block_1 / block_2
    {en,de}coder.mid_block.attentions.0      {en,de}coder.mid.attn_1
        group_norm -> norm, query -> q, key -> k, value -> v, proj_attn -> proj_out
        q/k/v/proj_out WEIGHTS are 1x1 convs in LDM: shape (C, C, 1, 1) vs diffusers 0.16.1 Linear (C, C)
    {en,de}coder.conv_norm_out               {en,de}coder.norm_out
    resnet conv_shortcut                     nin_shortcut
    conv_in, conv_out, quant_conv, post_quant_conv, norm1/2, conv1/2: unchanged

Text encoder: cond_stage_model.transformer. + the transformers name (text_model.*), unchanged.
"""
import json
import re
import struct

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

_UNET_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
]
_VAE_ATTN = [
    ("group_norm", "norm"),
    ("query", "q"),
    ("key", "k"),
    ("value", "v"),
    ("proj_attn", "proj_out"),
]


def _rename_first(rest, table, what):
    head, _, tail = rest.partition(".")
    for old, new in table:
        if head == old:
            return new + "." + tail
    raise KeyError(f"{what}: unexpected inner name {rest!r}")


def _unet_resnet(rest):
    return _rename_first(rest, _UNET_RESNET, "unet resnet")


def unet_ldm_name(name, config):
    """diffusers UNet2DConditionModel tensor name -> LDM name (with model.diffusion_model. prefix)."""
    L = int(config["layers_per_block"])
    up_types = list(config["up_block_types"])
    simple = {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    base, _, leaf = name.rpartition(".")
    if base in simple:
        return UNET_PREFIX + simple[base] + "." + leaf
    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.+)$", name)
    if m:
        i, kind, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if kind == "resnets":
            out = f"input_blocks.{1 + i * (L + 1) + j}.0.{_unet_resnet(rest)}"
        elif kind == "attentions":
            out = f"input_blocks.{1 + i * (L + 1) + j}.1.{rest}"
        else:
            if j != 0 or not rest.startswith("conv."):
                raise KeyError(f"unet: unexpected downsampler tensor {name!r}")
            out = f"input_blocks.{1 + i * (L + 1) + L}.0.op.{rest[len('conv.'):]}"
        return UNET_PREFIX + out
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", name)
    if m:
        kind, j, rest = m.group(1), int(m.group(2)), m.group(3)
        if kind == "resnets":
            out = f"middle_block.{2 * j}.{_unet_resnet(rest)}"
        else:
            out = f"middle_block.1.{rest}"
        return UNET_PREFIX + out
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.+)$", name)
    if m:
        i, kind, j, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if kind == "resnets":
            out = f"output_blocks.{i * (L + 1) + j}.0.{_unet_resnet(rest)}"
        elif kind == "attentions":
            out = f"output_blocks.{i * (L + 1) + j}.1.{rest}"
        else:
            has_attn = "CrossAttn" in up_types[i]
            out = f"output_blocks.{i * (L + 1) + L}.{2 if has_attn else 1}.{rest}"
        return UNET_PREFIX + out
    raise KeyError(f"unet: no LDM name for {name!r}")


def vae_ldm_name(name, config):
    """diffusers AutoencoderKL (0.16.1) tensor name -> LDM name (with first_stage_model. prefix)."""
    n = len(config["block_out_channels"])
    if name.split(".")[0] in ("quant_conv", "post_quant_conv"):
        return VAE_PREFIX + name
    part, _, rest = name.partition(".")
    if part not in ("encoder", "decoder"):
        raise KeyError(f"vae: no LDM name for {name!r}")
    base, _, leaf = rest.rpartition(".")
    if base in ("conv_in", "conv_out"):
        return VAE_PREFIX + name
    if base == "conv_norm_out":
        return f"{VAE_PREFIX}{part}.norm_out.{leaf}"

    def resnet(r):
        head, _, tail = r.partition(".")
        if head in ("norm1", "conv1", "norm2", "conv2"):
            return r
        if head == "conv_shortcut":
            return "nin_shortcut." + tail
        raise KeyError(f"vae resnet: unexpected inner name {r!r} in {name!r}")

    m = re.match(r"(down_blocks|up_blocks)\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)$", rest)
    if m:
        blocks, i, kind, j, r = m.group(1), int(m.group(2)), m.group(3), int(m.group(4)), m.group(5)
        if blocks == "down_blocks" and part == "encoder":
            lvl = f"down.{i}"
        elif blocks == "up_blocks" and part == "decoder":
            lvl = f"up.{n - 1 - i}"
        else:
            raise KeyError(f"vae: unexpected block {name!r}")
        if kind == "resnets":
            return f"{VAE_PREFIX}{part}.{lvl}.block.{j}.{resnet(r)}"
        if j != 0 or not r.startswith("conv."):
            raise KeyError(f"vae: unexpected sampler tensor {name!r}")
        samp = "downsample" if kind == "downsamplers" else "upsample"
        return f"{VAE_PREFIX}{part}.{lvl}.{samp}.{r}"
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", rest)
    if m:
        kind, j, r = m.group(1), int(m.group(2)), m.group(3)
        if kind == "resnets":
            return f"{VAE_PREFIX}{part}.mid.block_{j + 1}.{resnet(r)}"
        if j != 0:
            raise KeyError(f"vae: unexpected mid attention {name!r}")
        return f"{VAE_PREFIX}{part}.mid.attn_1.{_rename_first(r, _VAE_ATTN, 'vae attention')}"
    raise KeyError(f"vae: no LDM name for {name!r}")


def text_ldm_name(name):
    """transformers CLIPTextModel tensor name (text_model.*) -> LDM name."""
    if not name.startswith("text_model."):
        raise KeyError(f"text encoder: unexpected name {name!r}")
    return TEXT_PREFIX + name


def is_vae_conv_attn(ldm_name):
    """True for the VAE attention weights stored as 1x1 convs (C, C, 1, 1) in LDM checkpoints."""
    return re.search(r"\.mid\.attn_1\.(q|k|v|proj_out)\.weight$", ldm_name) is not None


def build_map(names, fn):
    """{diffusers name: LDM name} for every name; checks that the map is one-to-one."""
    out = {}
    seen = {}
    for k in names:
        v = fn(k)
        if v in seen:
            raise ValueError(f"LDM name {v!r} produced by both {seen[v]!r} and {k!r}")
        seen[v] = k
        out[k] = v
    return out


def key_maps(unet_names, unet_config, vae_names, vae_config, text_names):
    return {
        "unet": build_map(unet_names, lambda k: unet_ldm_name(k, unet_config)),
        "vae": build_map(vae_names, lambda k: vae_ldm_name(k, vae_config)),
        "text_encoder": build_map(text_names, text_ldm_name),
    }


def to_ldm_state_dict(unet_sd, unet_config, vae_sd, vae_config, text_sd):
    """Returns (ldm_state_dict, key_maps). Values (torch tensors or Lazy) are shared, not copied; the
    VAE attention weights are reshaped (C, C) -> (C, C, 1, 1)."""
    maps = key_maps(list(unet_sd), unet_config, list(vae_sd), vae_config, list(text_sd))
    out = {}
    for part, sd in (("unet", unet_sd), ("vae", vae_sd), ("text_encoder", text_sd)):
        for k, t in sd.items():
            ln = maps[part][k]
            if part == "vae" and is_vae_conv_attn(ln) and len(t.shape) == 2:
                t = t.reshape(t.shape[0], t.shape[1], 1, 1)
            out[ln] = t
    if len(out) != sum(len(m) for m in maps.values()):
        raise ValueError("LDM names collide across models")
    return out, maps


def crosscheck_with_diffusers(unet_shapes, unet_config, vae_shapes, vae_config):
    """Independent check of the UNet and VAE maps against diffusers 0.16.1's own LDM -> diffusers
    converter (diffusers.pipelines.stable_diffusion.convert_from_ckpt). *_shapes: {diffusers name:
    shape}. Each tensor is stood in for by a tiny tensor carrying its index, so this is cheap at any
    model size. Raises on any difference."""
    import torch
    from diffusers.pipelines.stable_diffusion import convert_from_ckpt as cc

    for part, shapes, cfg, fn, conv in (
        ("unet", unet_shapes, unet_config, lambda k: unet_ldm_name(k, unet_config), cc.convert_ldm_unet_checkpoint),
        ("vae", vae_shapes, vae_config, lambda k: vae_ldm_name(k, vae_config), cc.convert_ldm_vae_checkpoint),
    ):
        names = sorted(shapes)
        m = build_map(names, fn)
        ldm = {}
        for i, k in enumerate(names):
            nd = len(shapes[k]) + (2 if part == "vae" and is_vae_conv_attn(m[k]) and len(shapes[k]) == 2 else 0)
            ldm[m[k]] = torch.full((1,) * max(nd, 1), float(i))
        got = conv(ldm, dict(cfg))
        if set(got) != set(names):
            raise ValueError(f"{part}: diffusers converter disagrees on names: {sorted(set(got) ^ set(names))[:10]}")
        for i, k in enumerate(names):
            if got[k].flatten()[0].item() != float(i):
                raise ValueError(f"{part}: diffusers converter maps a different LDM tensor to {k!r}")


# --- a streaming safetensors writer (no whole-file copy in memory; for the full-size model) ---

_ST_DTYPES = {
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.uint8": "U8",
}


class Lazy:
    """A tensor made only when written: shape, dtype and a function returning it."""

    def __init__(self, shape, dtype, make):
        self.shape, self.dtype, self.make = tuple(shape), dtype, make

    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def element_size(self):
        import torch

        return torch.empty(0, dtype=self.dtype).element_size()

    def reshape(self, *shape):
        return Lazy(shape, self.dtype, lambda: self.make().reshape(*shape))


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: torch.Tensor or Lazy} as a .safetensors file, one tensor at a time, in name
    order (a Lazy is made just before it is written). Returns the file size."""
    import torch

    names = sorted(tensors)
    header = {}
    off = 0
    for k in names:
        t = tensors[k]
        dt = _ST_DTYPES[str(t.dtype)]
        n = t.numel() * t.element_size()
        header[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    if metadata:
        header["__metadata__"] = {str(a): str(b) for a, b in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for k in names:
            t = tensors[k]
            if isinstance(t, Lazy):
                want = (t.shape, t.dtype)
                t = t.make()
                if (tuple(t.shape), t.dtype) != want:
                    raise ValueError(f"{k}: made {tuple(t.shape)} {t.dtype}, declared {want}")
            t = t.detach().contiguous().cpu()
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            f.write(t.numpy().tobytes())
    return off + 8 + len(hb)
