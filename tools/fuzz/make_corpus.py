"""Seed corpora for the fuzz harnesses (tests/fuzz/corpus/<target>/).

Standard library only (run it with .venv-tools/bin/python or any python3):

    python3 tools/fuzz/make_corpus.py

Rewrites every tests/fuzz/corpus/<target>/ folder from the repository's
fixtures and models: valid and near-valid inputs, each small (the fuzzers'
-max_len follows the largest seed). Deterministic: rerunning it changes
nothing unless the fixtures changed.
"""

import glob
import json
import os
import shutil
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def rel(p):
    return os.path.relpath(p, ROOT)


def slug(path):
    """tests/fixtures/sd/ref_vae.safetensors -> sd_ref_vae"""
    r = rel(path)
    for pre in ("tests/fixtures/", "tests/"):
        if r.startswith(pre):
            r = r[len(pre):]
    r = os.path.splitext(r)[0]
    return r.replace("/", "_").replace(".", "_")


class Corpus:
    def __init__(self, target):
        self.dir = os.path.join(OUT, target)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.names = set()
        self.total = 0

    def add(self, name, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        assert name not in self.names, name
        self.names.add(name)
        with open(os.path.join(self.dir, name), "wb") as f:
            f.write(data)
        self.total += len(data)

    def done(self):
        print("%-13s %4d files %8d bytes" % (os.path.basename(self.dir), len(self.names), self.total))


# ---- safetensors -----------------------------------------------------------

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
              "I8": 1, "U8": 1, "BOOL": 1}


def st_read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = f.read(n)
    return n, hdr, json.loads(hdr)


def st_build(entries, meta=None, pad=True):
    """entries: [(name, dtype, shape, data bytes)] -> safetensors bytes."""
    header, off, blob = {}, 0, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dt, shape, data in entries:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors_corpus():
    c = Corpus("safetensors")
    files = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/**/*.safetensors"), recursive=True))
    files += sorted(glob.glob(os.path.join(ROOT, "models/**/*.safetensors"), recursive=True))
    for path in files:
        n, hdr, h = st_read_header(path)
        name = slug(path)
        meta = h.get("__metadata__")
        # header only: valid JSON, every data_offsets past the end
        if n <= 48 << 10:
            c.add("hdr_" + name, struct.pack("<Q", n) + hdr)
        # a valid file: the first tensors (in offset order) holding <= 1 KiB of data
        with open(path, "rb") as f:
            f.seek(8 + n)
            data = f.read(1 << 20)
        tensors = sorted(((k, v) for k, v in h.items() if k != "__metadata__"),
                         key=lambda kv: kv[1]["data_offsets"][0])
        keep, size = [], 0
        for k, v in tensors:
            b, e = v["data_offsets"]
            if size + (e - b) > 1024 or e > len(data):
                continue
            keep.append((k, v["dtype"], v["shape"], data[b:e]))
            size += e - b
            if len(keep) >= 12:
                break
        if keep:
            c.add("small_" + name, st_build(keep, meta))
    # single-file checkpoints (the loader's detection and shape inference):
    # tiny-pipe's names with every dimension 1, F32, and with the first
    # dimension kept (up to 8) for the tensors the loader infers sizes from
    _, _, h = st_read_header(os.path.join(ROOT, "tests/fixtures/sd/tiny-pipe.safetensors"))
    names = sorted(k for k in h if k != "__metadata__")
    ones = [(k, "F32", [1] * len(h[k]["shape"]), b"\0\0\x80\x3f") for k in names]
    c.add("ckpt_tiny_pipe_ones", st_build(ones, {"format": "pt"}))
    zeros = [(k, "F16", [0] + h[k]["shape"][1:], b"") for k in names]
    c.add("ckpt_tiny_pipe_empty", st_build(zeros, {"format": "pt"}))
    # the real shapes where the loader infers sizes from them (shape[0] of most
    # tensors, shape[1] of conv_in, to_k and the token embedding), one other
    # dimension 0 so that no data is needed: the loader gets past inference
    # to the weight lookups and shape checks
    # (tiny-pipe's text width is 32; the _w64 variant has CLIP's head size 64,
    # which inference without a config folder needs)
    for suffix, width in (("", None), ("_w64", 64)):
        shaped = []
        for k in names:
            shape = list(h[k]["shape"])
            if k.endswith("token_embedding.weight"):
                w = width or shape[1]
                shaped.append((k, "U8", [8, w], bytes(8 * w)))
                continue
            if len(shape) == 2 and "attn2.to_k" in k:
                shape[0] = 0
            elif shape:
                shape[-1] = 0
            shaped.append((k, "F32", shape, b""))
        c.add("ckpt_tiny_pipe_shapes" + suffix, st_build(shaped, {"format": "pt"}))
    sdxl = [("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", "F32", [1], b"\0" * 4),
            ("model.diffusion_model.label_emb.0.0.weight", "F32", [1, 1], b"\0" * 4),
            ("model.diffusion_model.input_blocks.0.0.weight", "F32", [1, 1, 1, 1], b"\0" * 4)]
    c.add("ckpt_sdxl_keys", st_build(sdxl))
    sd2 = [("cond_stage_model.model.ln_final.weight", "F32", [1], b"\0" * 4),
           ("model.diffusion_model.input_blocks.0.0.weight", "F32", [1, 1, 1, 1], b"\0" * 4)]
    c.add("ckpt_sd2_keys", st_build(sd2))
    # every dtype, odd shapes
    ent = []
    for dt, sz in sorted(DTYPE_SIZE.items()):
        ent.append(("t_" + dt.lower(), dt, [2, 3], bytes(range(6 * sz))))
    c.add("dtypes_all", st_build(ent, {"format": "pt", "note": "every dtype"}))
    c.add("shapes_odd", st_build([("scalar", "F32", [], b"\0\0\x80\x3f"),
                                  ("empty", "F16", [0, 5], b""),
                                  ("empty2", "BF16", [3, 0], b""),
                                  ("eight_dims", "F16", [1] * 8, b"\0\x3c"),
                                  ("f16_odd", "F16", [3], b"\x00\x7c\x00\xfc\x01\x7c")]))
    c.add("unaligned_f32", st_build([("a", "U8", [1], b"\1"), ("b", "F32", [2], b"\0" * 8)], pad=False))
    c.add("empty_header", struct.pack("<Q", 2) + b"{}")
    c.add("meta_only", st_build([], {"format": "pt"}))
    c.add("trailing_space", st_build([("x", "F32", [1], b"\0" * 4)]))
    c.done()


# ---- model configs ----------------------------------------------------------

def model_config_corpus():
    c = Corpus("model_config")
    pats = ["models/**/*config.json", "models/**/model_index.json",
            "tests/fixtures/sd/**/*config.json", "tests/fixtures/sd/**/model_index.json"]
    seen = set()
    for pat in pats:
        for path in sorted(glob.glob(os.path.join(ROOT, pat), recursive=True)):
            data = open(path, "rb").read()
            if data in seen or "tokenizer" in rel(path):
                continue
            seen.add(data)
            c.add(slug(path) + ".json", data)
    index = {"metadata": {"total_size": 64},
             "weight_map": {"conv_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors",
                            "conv_in.bias": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
    c.add("shard_index.json", json.dumps(index, indent=2))
    comp = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.16.1",
            "weight_map": {"a": "diffusion_pytorch_model.fp16.safetensors", "b": "model.bin"}}
    c.add("component_with_index.json", json.dumps(comp))
    c.add("clip_vision_only.json", json.dumps({
        "model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 37,
        "num_attention_heads": 4, "num_hidden_layers": 2, "image_size": 30, "patch_size": 2,
        "projection_dim": 16, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}))
    c.add("preprocessor_ints.json", json.dumps({
        "size": 224, "crop_size": 224, "do_resize": True, "do_center_crop": True,
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "resample": 3, "rescale_factor": 0.00392156862745098}))
    c.add("scheduler_edge.json", json.dumps({
        "_class_name": "DDIMScheduler", "num_train_timesteps": 2, "beta_start": 0.5,
        "beta_end": 0.9, "beta_schedule": "linear", "steps_offset": 1, "clip_sample": True,
        "clip_sample_range": 1.0, "set_alpha_to_one": True, "prediction_type": "epsilon",
        "thresholding": False, "trained_betas": None}))
    c.add("unet_lists.json", json.dumps({
        "_class_name": "UNet2DConditionModel", "sample_size": [32, 32],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "mid_block_type": None,
        "block_out_channels": [32, 64], "layers_per_block": [1, 2],
        "attention_head_dim": [2, 4], "cross_attention_dim": [32, 32],
        "transformer_layers_per_block": 1, "use_linear_projection": True}))
    c.add("model_index_odd.json", json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": [None, None], "text_encoder": ["transformers", "CLIPTextModel"],
        "scheduler": ["diffusers", "DDIMScheduler"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "feature_extractor": ["transformers", "CLIPImageProcessor"], "../up": ["a", "b"]}))
    c.add("empty_object.json", "{}")
    c.add("not_object.json", "[1, 2, 3]")
    c.done()


# ---- images -----------------------------------------------------------------

def image_corpus():
    c = Corpus("image")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/images/*"))):
        if path.endswith(".safetensors") or os.path.getsize(path) > 8 << 10:
            continue
        c.add(os.path.basename(path), open(path, "rb").read())
    c.add("box_spec", "1, 2, 30,20")
    c.done()


# ---- edit configs -----------------------------------------------------------

AUTHORS_MULTI = """multi_object:
  image_path: "dog.png"
  origin_prompt: "a dog sitting next to a gift"
  target_prompt: "a cat sitting next to a cake"
  guided_prompt: [["a ", " sitting next to a gift"], ["a dog sitting next to a ", ""]]
  origin_change: ['dog', 'gift']
  prompt_change: ['cat', 'cake']
  prompt_change_mask: ['masks/dog.png', '/abs/gift.png']
  reassembly_step: 10
  reinversion_steps: 5
  generation_image_path: "results/"
"""

AUTHORS_SINGLE = """single_object:
  image_path: "bird.png"
  origin_prompt: "a bird perched on a branch"
  target_prompt_list: ['a ', ' perched on a branch']
  target_changes: ['duck', 'penguin']
  origin_prompt_mask: 'bird_mask.png'
"""

ANCHORS = """base: &b
  image_path: case.yaml
  origin_prompt: &p "a red circle"
  origin_change: &f [red circle]
  prompt_change: [blue square]
  prompt_change_mask: [case.yaml]
copy:
  image_path: *p
  origin_prompt: *p
  origin_change: *f
  prompt_change: [x]
  prompt_change_mask: [m.png]
  guided_prompt: [whole prompt]
"""


def edit_config_corpus():
    c = Corpus("edit_config")
    c.add("demo.yaml", open(os.path.join(ROOT, "examples/shapes/demo.yaml"), "rb").read())
    for kind in ("multi", "single"):
        for path in sorted(glob.glob(os.path.join(ROOT, "bench/scenes/edit/%s/*.yaml" % kind)))[:3]:
            c.add("bench_%s_%s" % (kind, os.path.basename(path)), open(path, "rb").read())
    c.add("authors_multi.yaml", AUTHORS_MULTI)
    c.add("authors_single.yaml", AUTHORS_SINGLE)
    c.add("authors_both.yaml", AUTHORS_MULTI + AUTHORS_SINGLE)
    c.add("anchors.yaml", ANCHORS)
    c.add("flow.yaml", '{a: {image_path: i.png, origin_prompt: "x y", origin_change: [x],'
                       ' prompt_change: [z], prompt_change_mask: [m.png], reassembly_step: "3"}}\n')
    c.add("documents.yaml", "%YAML 1.1\n---\n" + AUTHORS_SINGLE + "...\n---\nb: 1\n")
    c.add("scalar.yaml", "just a string\n")
    c.done()


# ---- tokenizer --------------------------------------------------------------

def tokenizer_corpus():
    c = Corpus("tokenizer")
    texts = []
    for f in ("cases", "tiny_cases", "small_cases", "order_cases"):
        d = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/%s.json" % f)))
        texts += [case["text"] for case in d["cases"]]
    for path in sorted(glob.glob(os.path.join(ROOT, "bench/scenes/edit/multi/*.yaml")))[:2]:
        for line in open(path, encoding="utf-8"):
            if line.startswith("origin_prompt:"):
                p = json.loads(line.split(":", 1)[1])
                texts.append(p + "\n" + p.split(" and ")[0][2:])
    seen, i = set(), 0
    for t in texts:
        if not t or "\0" in t or t in seen or len(t.encode()) > 4096:
            continue
        seen.add(t)
        c.add("text_%03d" % i, t)
        i += 1
    # folders: vocab \0 merges \0 special_tokens_map \0 added_tokens \0 tokenizer_config \0 text
    folders = {"tiny": "tests/fixtures/tokenizer/tiny", "order": "tests/fixtures/tokenizer/order",
               "small": "tests/fixtures/tokenizer/small", "shipped": "models/tiny-shapes/tokenizer"}
    files = ("vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json",
             "tokenizer_config.json")
    for name, d in sorted(folders.items()):
        parts = []
        for f in files:
            p = os.path.join(ROOT, d, f)
            parts.append(open(p, "rb").read() if os.path.exists(p) else b"")
        parts.append("a photo of a cat <|endoftext|> ababa\ncat".encode())
        c.add("folder_" + name, b"\0".join(parts))
    c.add("folder_minimal", b'{"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}\0#version: 0.2\n\0')
    c.done()


# ---- dictionaries (tests/fuzz/<target>.dict) -------------------------------

def dict_escape(tok):
    """Tokens are byte strings written as str: "\\xff" is the byte 0xff (latin-1);
    a token with characters above U+00FF is taken as UTF-8."""
    raw = tok.encode("latin-1") if max(map(ord, tok)) < 256 else tok.encode("utf-8")
    out = ""
    for b in raw:
        ch = chr(b)
        if ch in '\\"' or b < 0x20 or b >= 0x7f:
            out += "\\x%02x" % b
        else:
            out += ch
    return '"%s"' % out


def write_dict(target, header, tokens):
    toks = sorted(set(t for t in tokens if t))
    path = os.path.join(ROOT, "tests", "fuzz", target + ".dict")
    with open(path, "w") as f:
        f.write("# libFuzzer dictionary for fuzz_%s (made by tools/fuzz/make_corpus.py)\n" % target)
        f.write("# %s\n" % header)
        for t in toks:
            f.write(dict_escape(t) + "\n")
    print("%-13s %4d dictionary entries" % (target, len(toks)))


JSON_SYNTAX = ["{", "}", "[", "]", ":", ",", '"', "null", "true", "false", "-0", "1e999",
               "-1", "0.5", "9007199254740993", "2147483648", "1e9", "\\u0000", "\\ud800", "\\n"]


def json_keys(obj, acc):
    if isinstance(obj, dict):
        for k, v in obj.items():
            acc.add(k)
            json_keys(v, acc)
    elif isinstance(obj, list):
        for v in obj:
            json_keys(v, acc)
    elif isinstance(obj, str) and len(obj) < 48:
        acc.add(obj)


def source_strings(paths):
    import re
    acc = set()
    for p in paths:
        for m in re.finditer(r'"([A-Za-z_][A-Za-z0-9_.]{1,47})"', open(os.path.join(ROOT, p)).read()):
            acc.add(m.group(1))
    return acc


def dictionaries():
    keys = set()
    for pat in ("models/**/*.json", "tests/fixtures/sd/**/*config.json", "tests/fixtures/sd/**/model_index.json"):
        for path in glob.glob(os.path.join(ROOT, pat), recursive=True):
            if "vocab" in path:
                continue
            json_keys(json.load(open(path)), keys)
    keys |= source_strings(["src/models/unet.c", "src/models/vae.c", "src/models/clip_text.c",
                            "src/models/clip_vision.c", "src/models/loader.c", "src/models/scheduler_config.c"])
    write_dict("model_config", "JSON syntax, config keys and values of the shipped models, strings the readers test",
               JSON_SYNTAX + ['"%s"' % k for k in keys])
    st = ["__metadata__", "dtype", "shape", "data_offsets", "format", "pt"] + list(DTYPE_SIZE)
    st = ['"%s"' % t for t in st] + JSON_SYNTAX
    st += ["model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.",
           "cond_stage_model.model.", "conditioner.embedders.", "label_emb", ".weight", ".bias",
           "text_model.", "input_blocks.", "output_blocks.", "middle_block.", "proj_in",
           "\x00\x00\x00\x00\x00\x00\x00"]
    write_dict("safetensors", "header JSON keys, dtypes, checkpoint name prefixes", st)
    img = ["\x89PNG\r\n\x1a\n", "IHDR", "IDAT", "IEND", "PLTE", "tRNS", "gAMA", "iCCP", "sBIT",
           "bKGD", "pHYs", "tEXt", "zTXt", "iTXt", "acTL", "fcTL", "\xff\xd8\xff", "\xff\xe0",
           "\xff\xe1", "\xff\xdb", "\xff\xc0", "\xff\xc1", "\xff\xc2", "\xff\xc4", "\xff\xda",
           "\xff\xdd", "\xff\xd9", "\xff\xee", "JFIF\x00", "Exif\x00\x00", "Adobe", "GIF89a",
           "\xff\xff", "\x00\x00\x40\x00", "\x7f\xff\xff\xff", ",", " ", "-1"]
    write_dict("image", "PNG chunk names, JPEG markers, box-string bytes", img)
    ec = ["multi_object:", "single_object:", "image_path:", "origin_prompt:", "target_prompt:",
          "guided_prompt:", "origin_change:", "prompt_change:", "prompt_change_mask:",
          "reassembly_step:", "reinversion_steps:", "target_prompt_list:", "target_changes:",
          "origin_prompt_mask:", "- ", ": ", "[", "]", "{", "}", ", ", "&a ", "*a", "!!str ",
          "!!seq", "!!map", "? ", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "|\n",
          ">-\n", "'", '"', "\n  ", "\n- ", "#", "~", "<<: *a", "\t", "\\u00e9", "\xef\xbb\xbf"]
    write_dict("edit_config", "libyaml syntax and the two schemas' keys", ec)
    tk = ["<|startoftext|>", "<|endoftext|>", "</w>", "#version: 0.2\n", "\x00", "\n", "'s", "'t",
          "'re", "'ve", "'m", "'ll", "'d", "\xc3\xa9", "e\xcc\x81", "\xce\xa3", "\xcf\x82",
          "\xe4\xb8\x80", "\xf0\x9f\x98\x80", "\xe2\x80\x8b", "\xc2\xa0", "\xe3\x80\x80", "\r\n",
          "\t", "123", "a photo of a ", '{"', '": ', "bos_token", "eos_token", "unk_token",
          "pad_token", "additional_special_tokens", "content", "model_max_length",
          "do_lower_case", "errors", "add_prefix_space"]
    write_dict("tokenizer", "special tokens, BPE markers, Unicode edge cases, tokenizer file keys", tk)


def main():
    targets = {"safetensors": safetensors_corpus, "model_config": model_config_corpus,
               "image": image_corpus, "edit_config": edit_config_corpus,
               "tokenizer": tokenizer_corpus}
    for name in sys.argv[1:] or sorted(targets):
        targets[name]()
    if not sys.argv[1:]:
        dictionaries()


if __name__ == "__main__":
    main()
