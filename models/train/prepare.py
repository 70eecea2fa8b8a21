"""Step 1 of training hawkeye_urban: composite pictures on real frames and cache the frozen
teacher's stem features for them (the trunk is never trained, so it runs once per picture).

    python prepare.py --sprites /tmp/sprites --out /tmp/city-cache --n 8000
"""
import argparse
import os
import time

import numpy as np
from tqdm import tqdm

import composite as C
import realdata as R


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sprites", help="folder from `hawkeye synth --sprites`")
    ap.add_argument("--teacher", default="../shared/models/yolox_nano.onnx")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synthetic", help="a `hawkeye synth --dataset` folder: cache it instead (into data_syn.npz)")
    a = ap.parse_args()
    if a.synthetic:
        return synthetic(a)
    t0 = time.time()
    frames = R.training_frames()
    teacher = R.Teacher(a.teacher, a.threads)
    law = R.person_height_law(teacher, frames["vtest"])
    print(f"vtest ground plane: person height = {law[0]:.4f}·y + {law[1]:.2f} px "
          f"({law[2]} teacher persons, feet at y {law[3]:.0f}–{law[4]:.0f})")
    sprites = C.Sprites(a.sprites)
    rng = np.random.default_rng(a.seed)
    sources = ["vtest"] * 7 + ["stills"] * 2 + ["tree"]
    n = a.n
    stems = [np.zeros((n, 64, 416 // s, 416 // s), np.float16) for s in (8, 16, 32)]
    masks = np.zeros((n, C.MASK, C.MASK), np.float16)
    valid = np.zeros((n, C.MASK, C.MASK), np.uint8)
    boxes, srcs = [], []
    for i in tqdm(range(n), desc="composite + teacher", mininterval=5):
        src = sources[rng.integers(len(sources))]
        bg = frames[src][rng.integers(len(frames[src]))]
        lb, b, m, v = C.compose(bg, src, sprites, law[:2], rng)
        _, st = teacher.run(lb[None])
        for k in range(3):
            stems[k][i] = st[k][0]
        masks[i], valid[i] = m, v
        boxes.append(b)
        srcs.append(src)
    os.makedirs(a.out, exist_ok=True)
    np.savez(os.path.join(a.out, "data.npz"), s8=stems[0], s16=stems[1], s32=stems[2], masks=masks, valid=valid,
             nbox=np.array([len(b) for b in boxes]), boxes=np.concatenate(boxes) if boxes else np.zeros((0, 5)),
             src=np.array(srcs), law=np.array(law))
    print(f"{n} pictures, {sum(len(b) for b in boxes)} objects, {sum(1 for b in boxes if len(b) == 0)} without; "
          f"{(masks.reshape(n, -1).max(1) > 0.5).sum()} with water; {time.time() - t0:.0f} s")


# synth's classes → the urban head's training classes (see train_city.URBAN); water is a mask
SYN_CLASSES = {"person": "person", "bicycle": "bicycle", "vehicle": "car", "goods": "goods", "garbage": "garbage"}


def synthetic(a):
    """Caches hawkeye's rendered street pictures (their boxes and water masks are exact), so the
    urban head also knows the renderer's people, bikes and cars the teacher misses."""
    import glob
    import cv2
    from train_city import URBAN
    names = open(os.path.join(a.synthetic, "classes.txt")).read().split()
    teacher = R.Teacher(a.teacher, a.threads)
    files = sorted(glob.glob(os.path.join(a.synthetic, "images", "*", "*.jpg")))[:a.n]
    n = len(files)
    stems = [np.zeros((n, 64, 416 // s, 416 // s), np.float16) for s in (8, 16, 32)]
    masks = np.zeros((n, C.MASK, C.MASK), np.float16)
    valid = np.zeros((n, C.MASK, C.MASK), np.uint8)
    boxes = []
    for i, f in enumerate(tqdm(files, desc="synthetic + teacher", mininterval=5)):
        img = cv2.imread(f)
        h, w = img.shape[:2]
        lb, r = R.letterbox(img)
        _, st = teacher.run(lb[None])
        for k in range(3):
            stems[k][i] = st[k][0]
        m = cv2.imread(f.replace("/images/", "/masks/").replace(".jpg", ".png"), cv2.IMREAD_GRAYSCALE)
        full = np.zeros((R.INPUT, R.INPUT), np.float32)
        nh, nw = round(h * r), round(w * r)
        full[:nh, :nw] = cv2.resize((m > 127).astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
        masks[i] = cv2.resize(full, (C.MASK, C.MASK), interpolation=cv2.INTER_AREA)
        valid[i, :int(np.ceil(nh / 4)), :int(np.ceil(nw / 4))] = 1
        b = []
        for line in open(f.replace("/images/", "/labels/").replace(".jpg", ".txt")):
            c, cx, cy, bw, bh = line.split()
            name = SYN_CLASSES.get(names[int(c)])
            if name is None:
                continue
            cx, cy, bw, bh = float(cx) * w * r, float(cy) * h * r, float(bw) * w * r, float(bh) * h * r
            b.append([URBAN.index(name), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        boxes.append(np.array(b, np.float32).reshape(-1, 5))
    np.savez(os.path.join(a.out, "data_syn.npz"), s8=stems[0], s16=stems[1], s32=stems[2], masks=masks, valid=valid,
             nbox=np.array([len(b) for b in boxes]), boxes=np.concatenate(boxes), src=np.array(["synth"] * n))
    print(f"{n} synthetic pictures, {sum(len(b) for b in boxes)} objects")


if __name__ == "__main__":
    main()
