#!/usr/bin/env python3
"""Shapes world: a deterministic renderer of 64x64 scenes for the tiny OIR model.

A scene = a named background + 1..3 objects; each object has a shape, a colour and a
position slot (non-overlapping).  Everything is pure numpy + PIL and deterministic from a seed.

Library API (used by tools/train and by the edit-quality benchmark):
    Obj(shape, colour, position)             one object
    Scene(background, objects)               a scene (objects in any order)
    make_scene(background, [(colour, shape, position), ...])  validated constructor
    random_scene(rng, n_objects=None, heldout="exclude"|"allow"|"require")
    render(scene) -> (image uint8 (64,64,3), [mask bool (64,64) per object], bg_mask bool)
    caption(scene), phrase(obj), bg_phrase(background)
    Edit(target, colour=None, shape=None, background=None)   target = object index or "background"
    apply_edits(scene, edits) -> edited scene (objects edited in place)
    make_case(seed, n_pairs, heldout=True) -> Case (scene, edits, prompts)
    write_case(case, folder, name)           PNGs + YAML in the OIR authors' config shape
    write_benchmark(folder, n_single, n_multi, seed)

Command line (bad requests exit with status 2 and a message on stderr):
    shapes.py scene  --background gray --object "red circle left" --object "blue square right" --out DIR
    shapes.py edit   --background gray --object "red circle left" --object "blue square right" \
                     --change "left=green star" --change "background=sky" --out DIR
    shapes.py bench  --out DIR [--single 100 --multi 100 --seed 0]
    shapes.py demo   --out examples/shapes
    shapes.py list   (shapes, colours, backgrounds, positions, held-out combinations)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64            # image side in pixels
SS = 4               # supersampling factor for anti-aliased edges
OBJ_RADIUS = 8.0     # object half-size in pixels (objects are ~16 px wide)

SHAPES = ["circle", "square", "triangle", "star", "heart", "cross", "diamond", "hexagon"]

COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (245, 215, 30),
    "purple": (140, 40, 180),
    "orange": (250, 130, 20),
    "pink": (250, 120, 190),
}

# Backgrounds: (top colour, bottom colour) of a vertical gradient.
BACKGROUNDS: Dict[str, Tuple[Tuple[int, int, int], Tuple[int, int, int]]] = {
    "white": ((250, 250, 250), (235, 235, 235)),
    "gray": ((150, 150, 150), (120, 120, 120)),
    "sky": ((110, 180, 245), (200, 230, 255)),
    "grass": ((120, 200, 90), (60, 140, 40)),
    "sand": ((240, 220, 170), (215, 190, 130)),
    "night": ((10, 15, 50), (40, 40, 90)),
}

# Position slots: word -> (centre x, centre y) in pixels, and the caption phrase.
# Centres are 19 px apart and objects at most 16+2 px wide, so slots never overlap.
POSITIONS: Dict[str, Tuple[float, float]] = {
    "left": (13.0, 32.0),
    "top": (32.0, 13.0),
    "center": (32.0, 32.0),
    "bottom": (32.0, 51.0),
    "right": (51.0, 32.0),
}
POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
MAX_OBJECTS = 3

# Colour/background pairs never drawn (too little contrast).
LOW_CONTRAST = {("green", "grass")}

# THE held-out attribute combinations: never drawn in training data; benchmark scenes and
# edits use them.  Each colour and each shape appears in at most two held-out pairs, so every
# attribute is still seen in training with most partners.
HELDOUT: Tuple[Tuple[str, str], ...] = (
    ("red", "star"),
    ("blue", "heart"),
    ("green", "triangle"),
    ("yellow", "hexagon"),
    ("purple", "circle"),
    ("orange", "cross"),
    ("pink", "diamond"),
    ("blue", "square"),
)
HELDOUT_SET = frozenset(HELDOUT)

SEED_OFFSETS = {"train": 0, "bench": 10_000_000, "demo": 20_000_000}


class ShapesError(ValueError):
    """An impossible request (unknown word, too many objects, overlapping slots...)."""


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    position: str
    angle: float = 0.0  # small rotation in degrees (kept 0 for the benchmark)

    def key(self) -> Tuple[str, str]:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class Scene:
    background: str
    objects: Tuple[Obj, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Edit:
    """An editing pair: target = object index into scene.objects, or "background"."""
    target: Union[int, str]
    colour: Optional[str] = None
    shape: Optional[str] = None
    background: Optional[str] = None


# ----------------------------------------------------------------------------- validation

def _check_word(kind: str, word: str, allowed: Sequence[str]) -> None:
    if word not in allowed:
        raise ShapesError(f"unknown {kind} '{word}'; known {kind}s: {', '.join(allowed)}")


def validate(scene: Scene) -> None:
    _check_word("background", scene.background, list(BACKGROUNDS))
    if not 1 <= len(scene.objects) <= MAX_OBJECTS:
        raise ShapesError(f"a scene has 1 to {MAX_OBJECTS} objects, got {len(scene.objects)}")
    used = set()
    keys = set()
    for o in scene.objects:
        _check_word("shape", o.shape, SHAPES)
        _check_word("colour", o.colour, list(COLOURS))
        _check_word("position", o.position, list(POSITIONS))
        if o.position in used:
            raise ShapesError(f"two objects at position '{o.position}'; each position holds one object")
        used.add(o.position)
        if o.key() in keys:
            raise ShapesError(f"two '{o.colour} {o.shape}' objects; objects must differ in colour or shape")
        keys.add(o.key())


def make_scene(background: str, objects: Sequence[Tuple[str, str, str]]) -> Scene:
    """objects: (colour, shape, position) triples.  Raises ShapesError on a bad request."""
    if len(objects) > len(POSITIONS):
        raise ShapesError(f"{len(objects)} objects requested but there are only {len(POSITIONS)} positions")
    if len(objects) > MAX_OBJECTS:
        raise ShapesError(f"{len(objects)} objects requested; at most {MAX_OBJECTS} per scene")
    scene = Scene(background, tuple(Obj(shape=s, colour=c, position=p) for c, s, p in objects))
    validate(scene)
    return Scene(background, tuple(sorted(scene.objects, key=lambda o: list(POSITIONS).index(o.position))))


# ----------------------------------------------------------------------------- geometry

def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> List[Tuple[float, float]]:
    def rot(pts):
        a = math.radians(angle)
        ca, sa = math.cos(a), math.sin(a)
        return [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in pts]

    if shape == "square":
        s = r * 0.86
        return rot([(-s, -s), (s, -s), (s, s), (-s, s)])
    if shape == "triangle":
        return rot([(0, -r), (r * 0.98, r * 0.75), (-r * 0.98, r * 0.75)])
    if shape == "diamond":
        return rot([(0, -r), (r * 0.75, 0), (0, r), (-r * 0.75, 0)])
    if shape == "hexagon":
        return rot([(r * math.cos(math.radians(60 * i)), r * math.sin(math.radians(60 * i))) for i in range(6)])
    if shape == "star":
        pts = []
        for i in range(10):
            rr = r if i % 2 == 0 else r * 0.45
            a = math.radians(-90 + 36 * i)
            pts.append((rr * math.cos(a), rr * math.sin(a)))
        return rot(pts)
    if shape == "cross":
        w = r * 0.36
        return rot([(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r),
                    (-w, w), (-r, w), (-r, -w), (-w, -w)])
    if shape == "heart":
        pts = []
        for i in range(64):
            t = 2 * math.pi * i / 64
            x = 16 * math.sin(t) ** 3
            y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
            pts.append((x * r / 16.5, (y + 2.5) * r / 16.5))
        return rot(pts)
    raise ShapesError(f"unknown shape '{shape}'")


def _object_coverage(o: Obj) -> np.ndarray:
    """Anti-aliased coverage in [0,1], shape (SIZE, SIZE)."""
    big = Image.new("L", (SIZE * SS, SIZE * SS), 0)
    d = ImageDraw.Draw(big)
    cx, cy = POSITIONS[o.position]
    r = OBJ_RADIUS
    if o.shape == "circle":
        rr = r * 0.95 * SS
        d.ellipse([cx * SS - rr, cy * SS - rr, cx * SS + rr, cy * SS + rr], fill=255)
    else:
        pts = _polygon(o.shape, cx * SS, cy * SS, r * SS, o.angle)
        d.polygon(pts, fill=255)
    small = big.resize((SIZE, SIZE), Image.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background(name: str) -> np.ndarray:
    top, bot = BACKGROUNDS[name]
    t = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)[:, None, None]
    img = np.asarray(top, np.float32)[None, None] * (1 - t) + np.asarray(bot, np.float32)[None, None] * t
    img = np.broadcast_to(img, (SIZE, SIZE, 3)).copy()
    if name == "night":  # a few fixed stars
        for x, y in [(5, 6), (20, 3), (40, 8), (58, 4), (50, 20), (8, 22), (60, 44), (3, 58), (26, 60)]:
            img[y, x] = (230, 230, 200)
    if name == "grass":  # gentle blades: a fixed stripe pattern
        xs = np.arange(SIZE)
        stripe = (np.sin(xs * 1.3) * 6.0).astype(np.float32)
        img += stripe[None, :, None] * np.array([0.3, 1.0, 0.3], np.float32)
    return img


def render(scene: Scene) -> Tuple[np.ndarray, List[np.ndarray], np.ndarray]:
    """Returns (image uint8 (64,64,3), per-object masks bool (64,64), background mask bool)."""
    validate(scene)
    img = _background(scene.background)
    masks = []
    for o in scene.objects:
        cov = _object_coverage(o)
        col = np.asarray(COLOURS[o.colour], np.float32)
        img = img * (1 - cov[..., None]) + col[None, None] * cov[..., None]
        masks.append(cov >= 0.5)
    union = np.zeros((SIZE, SIZE), bool)
    for m in masks:
        union |= m
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), masks, ~union


def dilate(mask: np.ndarray, px: int = 2) -> np.ndarray:
    """Square dilation (used for edit masks so that anti-aliased rims are inside the mask)."""
    out = mask.copy()
    for dy in range(-px, px + 1):
        for dx in range(-px, px + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


# ----------------------------------------------------------------------------- language

def phrase(o: Obj) -> str:
    return f"{o.colour} {o.shape}"


def bg_phrase(background: str) -> str:
    return f"{background} background"


def caption(scene: Scene) -> str:
    parts = [f"a {phrase(o)} {POSITION_PHRASE[o.position]}" for o in scene.objects]
    return " and ".join(parts) + f" on a {bg_phrase(scene.background)}"


def vocabulary_words() -> List[str]:
    """Every word any caption or phrase of this world can contain."""
    words = {"a", "and", "on", "background"}
    for p in POSITION_PHRASE.values():
        words.update(p.split())
    words.update(SHAPES)
    words.update(COLOURS)
    words.update(BACKGROUNDS)
    return sorted(words)


# ----------------------------------------------------------------------------- sampling

def random_scene(rng: np.random.Generator, n_objects: Optional[int] = None,
                 heldout: str = "exclude", background: Optional[str] = None) -> Scene:
    """heldout: "exclude" (training: no held-out combination), "allow", or "require"
    (at least one object is a held-out combination)."""
    if n_objects is None:
        n_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    if not 1 <= n_objects <= MAX_OBJECTS:
        raise ShapesError(f"a scene has 1 to {MAX_OBJECTS} objects, got {n_objects}")
    bg = background or list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    while True:
        positions = [list(POSITIONS)[i] for i in rng.permutation(len(POSITIONS))[:n_objects]]
        objs = []
        keys = set()
        for p in positions:
            while True:
                c = list(COLOURS)[int(rng.integers(len(COLOURS)))]
                s = SHAPES[int(rng.integers(len(SHAPES)))]
                if (c, bg) in LOW_CONTRAST or (c, s) in keys:
                    continue
                if heldout == "exclude" and (c, s) in HELDOUT_SET:
                    continue
                break
            keys.add((c, s))
            objs.append(Obj(shape=s, colour=c, position=p))
        if heldout == "require" and not any(o.key() in HELDOUT_SET for o in objs):
            # force one object to a held-out combination
            i = int(rng.integers(n_objects))
            choices = [k for k in HELDOUT if k not in keys and (k[0], bg) not in LOW_CONTRAST]
            c, s = choices[int(rng.integers(len(choices)))]
            objs[i] = Obj(shape=s, colour=c, position=objs[i].position)
        objs.sort(key=lambda o: list(POSITIONS).index(o.position))
        scene = Scene(bg, tuple(objs))
        validate(scene)
        return scene


def apply_edits(scene: Scene, edits: Sequence[Edit]) -> Scene:
    objs = list(scene.objects)
    bg = scene.background
    seen = set()
    for e in edits:
        if e.target in seen:
            raise ShapesError(f"two edits of the same target {e.target!r}")
        seen.add(e.target)
        if e.target == "background":
            if e.background is None:
                raise ShapesError("a background edit needs a new background")
            _check_word("background", e.background, list(BACKGROUNDS))
            bg = e.background
        else:
            if not isinstance(e.target, int) or not 0 <= e.target < len(objs):
                raise ShapesError(f"edit target {e.target!r} is not an object of this scene "
                                  f"(it has {len(objs)} objects)")
            o = objs[e.target]
            if e.colour is not None:
                _check_word("colour", e.colour, list(COLOURS))
            if e.shape is not None:
                _check_word("shape", e.shape, SHAPES)
            objs[e.target] = replace(o, colour=e.colour or o.colour, shape=e.shape or o.shape)
    new = Scene(bg, tuple(objs))
    validate(new)
    for o in new.objects:
        if (o.colour, new.background) in LOW_CONTRAST:
            raise ShapesError(f"'{o.colour}' objects are not drawn on a '{new.background}' background")
    return new


def edit_phrases(scene: Scene, e: Edit) -> Tuple[str, str]:
    """(origin_change, prompt_change): the phrase replaced in the source prompt and its new text."""
    new = apply_edits(scene, [e])
    if e.target == "background":
        return bg_phrase(scene.background), bg_phrase(new.background)
    return phrase(scene.objects[e.target]), phrase(new.objects[e.target])


@dataclass
class Case:
    seed: int
    scene: Scene
    edits: List[Edit]
    edited: Scene
    origin_prompt: str
    target_prompt: str
    guided_prompts: List[str]
    origin_changes: List[str]
    prompt_changes: List[str]


def _random_edit(rng: np.random.Generator, scene: Scene, target: Union[int, str],
                 want_heldout: bool, avoid: frozenset = frozenset()) -> Edit:
    if target == "background":
        choices = [b for b in BACKGROUNDS if b != scene.background
                   and not any((o.colour, b) in LOW_CONTRAST for o in scene.objects)
                   and not any((k[0], b) in LOW_CONTRAST for k in avoid)]
        return Edit("background", background=choices[int(rng.integers(len(choices)))])
    o = scene.objects[target]
    others = {x.key() for i, x in enumerate(scene.objects) if i != target} | set(avoid)
    cands = []
    for c in COLOURS:
        for s in SHAPES:
            if (c, s) == o.key() or (c, s) in others or (c, scene.background) in LOW_CONTRAST:
                continue
            cands.append((c, s))
    if want_heldout:
        h = [k for k in cands if k in HELDOUT_SET]
        cands = h or cands
    kind = int(rng.integers(3))  # 0: colour only, 1: shape only, 2: both
    pool = [k for k in cands if (kind == 0 and k[1] == o.shape) or (kind == 1 and k[0] == o.colour)
            or (kind == 2 and k[0] != o.colour and k[1] != o.shape)] or cands
    c, s = pool[int(rng.integers(len(pool)))]
    return Edit(target, colour=c if c != o.colour else None, shape=s if s != o.shape else None)


def make_case(seed: int, n_pairs: int, heldout: bool = True, background_edit_prob: float = 0.15) -> Case:
    """One benchmark case with n_pairs editing pairs (1..3).  With heldout=True the first
    edit's result is a held-out colour+shape combination when the scene allows it."""
    if not 1 <= n_pairs <= MAX_OBJECTS + 1:
        raise ShapesError(f"a case has 1 to {MAX_OBJECTS + 1} editing pairs, got {n_pairs}")
    rng = np.random.default_rng(seed)
    use_bg = n_pairs > 1 and rng.random() < background_edit_prob or (n_pairs == 1 and rng.random() < 0.1)
    n_obj_edits = n_pairs - (1 if use_bg else 0)
    n_objects = max(n_obj_edits, int(rng.integers(max(1, n_obj_edits), MAX_OBJECTS + 1)))
    if n_objects > MAX_OBJECTS:
        raise ShapesError(f"{n_pairs} editing pairs need more objects than a scene holds")
    scene = random_scene(rng, n_objects, heldout="exclude")
    targets: List[Union[int, str]] = [int(i) for i in sorted(rng.permutation(n_objects)[:n_obj_edits])]
    if use_bg:
        targets.append("background")
    edits: List[Edit] = []
    cur = scene
    for j, t in enumerate(targets):
        e = _random_edit(rng, cur, t, want_heldout=heldout and j == 0,
                         avoid=frozenset(o.key() for o in scene.objects))
        edits.append(e)
        cur = apply_edits(cur, [e])
    edited = apply_edits(scene, edits)
    origin = caption(scene)
    target = caption(edited)
    guided, ochg, pchg = [], [], []
    for e in edits:
        a, b = edit_phrases(scene, e)
        ochg.append(a)
        pchg.append(b)
        guided.append(caption(apply_edits(scene, [e])))
    return Case(seed, scene, edits, edited, origin, target, guided, ochg, pchg)


# ----------------------------------------------------------------------------- files

def save_png(arr: np.ndarray, path: str) -> None:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    Image.fromarray(arr).save(path, optimize=True)


def _yaml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid YAML scalar


def scene_dict(scene: Scene) -> dict:
    return {"background": scene.background,
            "objects": [{"colour": o.colour, "shape": o.shape, "position": o.position} for o in scene.objects]}


def write_case(case: Case, folder: str, name: str, dilate_px: int = 1) -> str:
    """Writes NAME.png (source), NAME_gt.png (ground-truth edit), NAME_mask<i>.png (one mask per
    pair, 255 = edit region), NAME_objmask<i>.png (exact object masks of the source scene) and
    NAME.yaml in the shape of the OIR authors' config.  Returns the YAML path."""
    os.makedirs(folder, exist_ok=True)
    img, masks, bg = render(case.scene)
    gt, gt_masks, gt_bg = render(case.edited)
    save_png(img, os.path.join(folder, f"{name}.png"))
    save_png(gt, os.path.join(folder, f"{name}_gt.png"))
    for i, m in enumerate(masks):
        save_png(m, os.path.join(folder, f"{name}_objmask{i}.png"))
    mask_files = []
    for i, e in enumerate(case.edits):
        if e.target == "background":
            union = np.zeros_like(bg)
            for m in masks + gt_masks:
                union |= m
            m = ~dilate(union, dilate_px)
        else:
            m = dilate(masks[e.target] | gt_masks[e.target], dilate_px)
        fn = f"{name}_mask{i}.png"
        save_png(m, os.path.join(folder, fn))
        mask_files.append(fn)
    lines = [
        f"# shapes-world case, seed {case.seed}: tools/shapes/shapes.py",
        f"image_path: {_yaml_str(name + '.png')}",
        f"ground_truth_path: {_yaml_str(name + '_gt.png')}",
        f"origin_prompt: {_yaml_str(case.origin_prompt)}",
        f"target_prompt: {_yaml_str(case.target_prompt)}",
        "guided_prompt:",
        *[f"  - {_yaml_str(g)}" for g in case.guided_prompts],
        "origin_change:",
        *[f"  - {_yaml_str(g)}" for g in case.origin_changes],
        "prompt_change:",
        *[f"  - {_yaml_str(g)}" for g in case.prompt_changes],
        "prompt_change_mask:",
        *[f"  - {_yaml_str(g)}" for g in mask_files],
        "reassembly_step: 10",
        "reinversion_steps: 10",
        "num_ddim_steps: 50",
        "guidance_scale: 7.5",
        f"seed: {case.seed}",
        f"heldout_in_target: {str(any(o.key() in HELDOUT_SET for o in case.edited.objects)).lower()}",
        f"source_scene: {json.dumps(scene_dict(case.scene))}",
        f"target_scene: {json.dumps(scene_dict(case.edited))}",
        "object_masks:",
        *[f"  - {_yaml_str(f'{name}_objmask{i}.png')}" for i in range(len(masks))],
    ]
    path = os.path.join(folder, f"{name}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def write_benchmark(folder: str, n_single: int = 100, n_multi: int = 100, seed: int = 0) -> List[str]:
    """Regenerates the benchmark set: single/NNN.* (1 pair) and multi/NNN.* (2 or 3 pairs),
    plus index.json listing every case.  Deterministic from seed."""
    base = SEED_OFFSETS["bench"] + seed * 100_000
    paths = []
    for i in range(n_single):
        c = make_case(base + i, 1)
        paths.append(os.path.relpath(write_case(c, os.path.join(folder, "single"), f"{i:03d}"), folder))
    for i in range(n_multi):
        rng = np.random.default_rng(base + 50_000 + i)
        n = 2 + int(rng.integers(2))
        c = make_case(base + 50_000 + i, n)
        paths.append(os.path.relpath(write_case(c, os.path.join(folder, "multi"), f"{i:03d}"), folder))
    with open(os.path.join(folder, "index.json"), "w") as f:
        json.dump({"seed": seed, "heldout": [list(k) for k in HELDOUT], "cases": paths}, f, indent=1)
    return paths


# ----------------------------------------------------------------------------- CLI

def _parse_object(text: str) -> Tuple[str, str, str]:
    words = text.replace(",", " ").split()
    if len(words) != 3:
        raise ShapesError(f"object '{text}': expected 'COLOUR SHAPE POSITION', e.g. 'red circle left'")
    c, s, p = words
    _check_word("colour", c, list(COLOURS))
    _check_word("shape", s, SHAPES)
    _check_word("position", p, list(POSITIONS))
    return c, s, p


def _parse_change(scene: Scene, text: str) -> Edit:
    if "=" not in text:
        raise ShapesError(f"change '{text}': expected 'POSITION=COLOUR SHAPE' or 'background=NAME'")
    where, what = (x.strip() for x in text.split("=", 1))
    if where == "background":
        return Edit("background", background=what)
    idx = [i for i, o in enumerate(scene.objects) if o.position == where]
    if not idx:
        raise ShapesError(f"change '{text}': no object at position '{where}'")
    colour = shape = None
    for w in what.split():
        if w in COLOURS:
            colour = w
        elif w in SHAPES:
            shape = w
        else:
            raise ShapesError(f"change '{text}': '{w}' is neither a colour ({', '.join(COLOURS)}) "
                              f"nor a shape ({', '.join(SHAPES)})")
    return Edit(idx[0], colour=colour, shape=shape)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="shapes-world renderer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sc = sub.add_parser("scene", help="render one scene")
    ed = sub.add_parser("edit", help="render a scene and an edited version (one case)")
    for p in (sc, ed):
        p.add_argument("--background", default="gray")
        p.add_argument("--object", action="append", default=[], help="'COLOUR SHAPE POSITION'")
        p.add_argument("--seed", type=int, default=None, help="random scene from this seed instead")
        p.add_argument("--out", required=True)
        p.add_argument("--name", default="scene")
    ed.add_argument("--change", action="append", default=[], help="'POSITION=COLOUR SHAPE' or 'background=NAME'")
    bp = sub.add_parser("bench", help="regenerate the benchmark set")
    bp.add_argument("--out", required=True)
    bp.add_argument("--single", type=int, default=100)
    bp.add_argument("--multi", type=int, default=100)
    bp.add_argument("--seed", type=int, default=0)
    dp = sub.add_parser("demo", help="write the two-object demo scene")
    dp.add_argument("--out", default="examples/shapes")
    sub.add_parser("list", help="print the world's vocabulary")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "list":
            print("shapes:", " ".join(SHAPES))
            print("colours:", " ".join(COLOURS))
            print("backgrounds:", " ".join(BACKGROUNDS))
            print("positions:", " ".join(POSITIONS))
            print("held-out:", ", ".join(f"{c} {s}" for c, s in HELDOUT))
            return 0
        if args.cmd == "bench":
            paths = write_benchmark(args.out, args.single, args.multi, args.seed)
            print(f"wrote {len(paths)} cases to {args.out}")
            return 0
        if args.cmd == "demo":
            scene = make_scene("gray", [("red", "circle", "left"), ("blue", "triangle", "right")])
            edits = [Edit(0, colour="green", shape="square"), Edit(1, colour="yellow", shape="star")]
            case = _case_from(scene, edits, seed=0)
            print(write_case(case, args.out, "demo"))
            return 0
        if args.seed is not None:
            scene = random_scene(np.random.default_rng(SEED_OFFSETS["demo"] + args.seed))
        else:
            if not args.object:
                raise ShapesError("give at least one --object 'COLOUR SHAPE POSITION' (or --seed)")
            scene = make_scene(args.background, [_parse_object(t) for t in args.object])
        if args.cmd == "scene":
            os.makedirs(args.out, exist_ok=True)
            img, masks, bg = render(scene)
            save_png(img, os.path.join(args.out, f"{args.name}.png"))
            for i, m in enumerate(masks):
                save_png(m, os.path.join(args.out, f"{args.name}_objmask{i}.png"))
            with open(os.path.join(args.out, f"{args.name}.json"), "w") as f:
                json.dump({"caption": caption(scene), **scene_dict(scene)}, f, indent=1)
            print(caption(scene))
            return 0
        if not args.change:
            raise ShapesError("give at least one --change")
        edits = [_parse_change(scene, t) for t in args.change]
        case = _case_from(scene, edits, seed=args.seed or 0)
        print(write_case(case, args.out, args.name))
        return 0
    except ShapesError as e:
        print(f"shapes.py: error: {e}", file=sys.stderr)
        return 2


def _case_from(scene: Scene, edits: List[Edit], seed: int) -> Case:
    edited = apply_edits(scene, edits)
    guided, ochg, pchg = [], [], []
    for e in edits:
        a, b = edit_phrases(scene, e)
        ochg.append(a)
        pchg.append(b)
        guided.append(caption(apply_edits(scene, [e])))
    return Case(seed, scene, list(edits), edited, caption(scene), caption(edited), guided, ochg, pchg)


if __name__ == "__main__":
    sys.exit(main())
