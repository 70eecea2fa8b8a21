#!/usr/bin/env python3
"""Writes a tiny stand-in dataset in the layout of `hawkeye synth --dataset` (for testing train.py).

Scenes are coloured shapes on a road-like background; one shape style per class. This is only
for exercising the training / export / evaluation code paths, not for training a real model.
"""
import argparse
import os
import random

from PIL import Image, ImageDraw

CLASSES = ["person", "goods", "garbage", "water", "bicycle", "vehicle"]
W, H = 640, 360

# (min w, max w, min h, max h, colour) per class, frame pixels.
STYLE = {
    0: (10, 30, 30, 90, (200, 60, 60)),
    1: (30, 80, 20, 50, (230, 200, 40)),
    2: (15, 35, 15, 35, (30, 30, 30)),
    3: (80, 400, 20, 150, (95, 105, 120)),
    4: (30, 60, 20, 40, (40, 160, 60)),
    5: (80, 200, 50, 110, (40, 80, 210)),
}


def scene(rng):
    img = Image.new("RGB", (W, H), (120, 120, 118))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, W, 90], fill=(150, 130, 110))  # storefronts
    d.rectangle([0, 90, W, 140], fill=(170, 170, 165))  # sidewalk
    for _ in range(rng.randint(2, 6)):  # distractor texture
        x, y = rng.randint(0, W), rng.randint(0, H)
        d.ellipse([x, y, x + rng.randint(5, 40), y + rng.randint(5, 20)],
                  fill=tuple(rng.randint(90, 160) for _ in range(3)))
    labels = []
    for _ in range(rng.randint(1, 7)):
        c = rng.randrange(len(CLASSES))
        w0, w1, h0, h1, col = STYLE[c]
        w, h = rng.randint(w0, w1), rng.randint(h0, h1)
        x1, y1 = rng.randint(0, W - w), rng.randint(60, H - h)
        col = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in col)
        if c == 3:
            d.ellipse([x1, y1, x1 + w, y1 + h], fill=col)
        elif c == 4:
            r = h // 2
            d.ellipse([x1, y1 + h - 2 * r, x1 + 2 * r, y1 + h], outline=col, width=3)
            d.ellipse([x1 + w - 2 * r, y1 + h - 2 * r, x1 + w, y1 + h], outline=col, width=3)
        else:
            d.rectangle([x1, y1, x1 + w, y1 + h], fill=col)
        labels.append((c, (x1 + w / 2) / W, (y1 + h / 2) / H, w / W, h / H))
    return img, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/fake-ds")
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--val", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for split, n in (("train", a.train), ("val", a.val)):
        os.makedirs(f"{a.out}/images/{split}", exist_ok=True)
        os.makedirs(f"{a.out}/labels/{split}", exist_ok=True)
        for i in range(n):
            img, labels = scene(rng)
            img.save(f"{a.out}/images/{split}/{i:06d}.jpg", quality=85)
            with open(f"{a.out}/labels/{split}/{i:06d}.txt", "w") as f:
                for c, cx, cy, w, h in labels:
                    f.write(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    with open(f"{a.out}/classes.txt", "w") as f:
        f.write("\n".join(CLASSES) + "\n")


if __name__ == "__main__":
    main()
