#!/usr/bin/env python3
"""Regenerates the committed evaluation scene sets under bench/scenes/ (read by the C programs
of bench/shapes/ through one manifest.json per set).  Uses shapes.py's library API only.

    .venv-tools/bin/python tools/shapes/make_eval_sets.py [--out bench/scenes]
        [--heldout 100] [--single 100] [--multi 100] [--seed 0]

bench/scenes/heldout/  issue 4's held-out test scenes: NNN.png, NNN_obj<i>.png (exact mask of
                       object i, 255 = object), manifest.json with each scene's caption,
                       background and objects (colour, shape, position, mask file).  Every scene
                       holds at least one held-out colour+shape combination; the scenes are the
                       ones tools/train/eval.py draws (random_scene(default_rng(30_000_000),
                       heldout="require"), in order), so the C and Python numbers describe the
                       same images.
bench/scenes/edit/     issue 6's benchmark: shapes.write_benchmark (single/NNN.*, multi/NNN.*,
                       index.json: the authors' YAML per case) plus manifest.json, one entry per
                       case with everything the C benchmark needs: image, ground truth, prompts,
                       and per pair the mask, phrases, guided prompt and what the pair targets
                       (object index + expected colour/shape, or the background + its new name).

The manifests also carry the vocabulary (colours, shapes, backgrounds, held-out combinations),
so the C side classifies against exactly the world's phrases.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes as W  # noqa: E402

EVAL_SEED = 30_000_000  # tools/train/eval.py's held-out scene stream


def vocabulary() -> dict:
    return {"colours": list(W.COLOURS), "shapes": list(W.SHAPES), "backgrounds": list(W.BACKGROUNDS),
            "positions": list(W.POSITIONS), "heldout": [list(k) for k in W.HELDOUT],
            "object_phrase": "COLOUR SHAPE", "background_phrase": W.bg_phrase("NAME")}


def write_heldout(folder: str, n: int) -> int:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(EVAL_SEED)
    scenes = []
    for i in range(n):
        sc = W.random_scene(rng, heldout="require")
        img, masks, _bg = W.render(sc)
        name = f"{i:03d}"
        W.save_png(img, os.path.join(folder, f"{name}.png"))
        objs = []
        for j, (o, m) in enumerate(zip(sc.objects, masks)):
            W.save_png(m, os.path.join(folder, f"{name}_obj{j}.png"))
            objs.append({"colour": o.colour, "shape": o.shape, "position": o.position,
                         "phrase": W.phrase(o), "heldout": o.key() in W.HELDOUT_SET,
                         "mask": f"{name}_obj{j}.png"})
        scenes.append({"name": name, "image": f"{name}.png", "caption": W.caption(sc),
                       "background": sc.background, "objects": objs})
    man = {"kind": "heldout-scenes", "generator": "tools/shapes/make_eval_sets.py",
           "seed_stream": f"random_scene(default_rng({EVAL_SEED}), heldout='require')",
           "size": W.SIZE, **vocabulary(), "scenes": scenes}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    return len(scenes)


def _case_entry(case: "W.Case", sub: str, name: str) -> dict:
    pairs = []
    for i, e in enumerate(case.edits):
        p = {"from": case.origin_changes[i], "to": case.prompt_changes[i],
             "guided_prompt": case.guided_prompts[i], "mask": f"{sub}/{name}_mask{i}.png"}
        if e.target == "background":
            p.update(target="background", background=case.edited.background)
        else:
            o = case.edited.objects[e.target]
            p.update(target="object", object=int(e.target), colour=o.colour, shape=o.shape,
                     heldout=o.key() in W.HELDOUT_SET)
        pairs.append(p)
    edited_idx = {e.target for e in case.edits if e.target != "background"}
    objects = [{"colour": o.colour, "shape": o.shape, "position": o.position,
                "target_colour": t.colour, "target_shape": t.shape, "edited": j in edited_idx,
                "mask": f"{sub}/{name}_objmask{j}.png"}
               for j, (o, t) in enumerate(zip(case.scene.objects, case.edited.objects))]
    return {"name": f"{sub}/{name}", "seed": case.seed, "image": f"{sub}/{name}.png",
            "ground_truth": f"{sub}/{name}_gt.png", "yaml": f"{sub}/{name}.yaml",
            "source_prompt": case.origin_prompt, "target_prompt": case.target_prompt,
            "source_background": case.scene.background, "target_background": case.edited.background,
            "objects": objects, "pairs": pairs}


def write_edit(folder: str, n_single: int, n_multi: int, seed: int) -> int:
    # write_benchmark's own files (PNGs, YAML, index.json), then the same cases again through
    # make_case (deterministic from the same seeds) for the manifest.
    paths = W.write_benchmark(folder, n_single, n_multi, seed)
    base = W.SEED_OFFSETS["bench"] + seed * 100_000
    cases = []
    for i in range(n_single):
        cases.append(_case_entry(W.make_case(base + i, 1), "single", f"{i:03d}"))
    for i in range(n_multi):
        rng = np.random.default_rng(base + 50_000 + i)
        n = 2 + int(rng.integers(2))
        cases.append(_case_entry(W.make_case(base + 50_000 + i, n), "multi", f"{i:03d}"))
    assert len(cases) == len(paths)
    for c, p in zip(cases, paths):  # the manifest and write_benchmark describe the same files
        assert c["yaml"] == p, (c["yaml"], p)
        with open(os.path.join(folder, p)) as f:
            assert json.dumps(c["target_prompt"]) in f.read(), p
    man = {"kind": "edit-benchmark", "generator": "tools/shapes/make_eval_sets.py",
           "write_benchmark": {"n_single": n_single, "n_multi": n_multi, "seed": seed},
           "size": W.SIZE, **vocabulary(), "cases": cases}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    return len(cases)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "bench", "scenes"))
    ap.add_argument("--heldout", type=int, default=100, help="held-out test scenes (issue 4)")
    ap.add_argument("--single", type=int, default=100, help="single-pair edit cases (issue 6)")
    ap.add_argument("--multi", type=int, default=100, help="2-3 pair edit cases (issue 6)")
    ap.add_argument("--seed", type=int, default=0, help="write_benchmark seed")
    a = ap.parse_args(argv)
    if min(a.heldout, a.single, a.multi) < 0:
        print("make_eval_sets.py: error: counts must be >= 0", file=sys.stderr)
        return 2
    out = os.path.normpath(a.out)
    try:
        n = write_heldout(os.path.join(out, "heldout"), a.heldout)
        print(f"wrote {n} held-out scenes to {os.path.join(out, 'heldout')}")
        n = write_edit(os.path.join(out, "edit"), a.single, a.multi, a.seed)
        print(f"wrote {n} edit cases to {os.path.join(out, 'edit')}")
    except W.ShapesError as e:
        print(f"make_eval_sets.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
