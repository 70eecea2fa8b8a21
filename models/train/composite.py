"""Composites hawkeye's rendered goods and garbage, and standing water, onto real frames.

Every object is matched to the scene it lands in: its size follows the scene's ground plane
(the height of a standing person against the y of their feet, fitted on the teacher's persons),
its brightness and colour follow the background around it, it gets a contact shadow, a little
texture and blur, and the whole picture gets sensor noise and JPEG compression. Water is a
darkened, blue-grey region of the ground that mirrors what stands above it, with ripples and a
soft edge; wet-but-not-flooded patches (darker, no reflection) are negatives, as are frames with
nothing composited at all.
"""
import json
import os

import cv2
import numpy as np

from realdata import INPUT, letterbox

GOODS, GARBAGE = 0, 1
MASK = INPUT // 4  # water mask side (stride 4)


class Sprites:
    def __init__(self, folder):
        idx = json.load(open(os.path.join(folder, "sprites.json")))
        self.items = {GOODS: [], GARBAGE: []}
        for s in idx:
            im = cv2.imread(os.path.join(folder, s["file"]), cv2.IMREAD_UNCHANGED)  # BGRA
            self.items[GOODS if s["class"] == "goods" else GARBAGE].append(im)


def ground_model(source, shape, rng, law):
    """(y range of the ground, person height at y) for a background."""
    h, w = shape[:2]
    if source == "vtest":
        a, b = law
        return (0.25 * h, 0.99 * h), lambda y: a * y + b
    # stills and the tree: no measured ground; a plausible one, different per picture
    top = rng.uniform(0.35, 0.6) * h
    near = rng.uniform(0.25, 0.6) * h
    return (top, 0.99 * h), lambda y: near * (0.3 + 0.7 * (y - top) / (h - top + 1e-6))


def local_mean(img, x0, y0, x1, y1):
    h, w = img.shape[:2]
    x0, x1 = int(max(0, x0)), int(min(w, x1))
    y0, y1 = int(max(0, y0)), int(min(h, y1))
    if x1 <= x0 or y1 <= y0:
        return np.array([110.0, 110.0, 110.0])
    return img[y0:y1, x0:x1].reshape(-1, 3).mean(0)


def soft_noise(shape, rng, cells=4):
    """Smooth noise in [-1, 1]: random values on a coarse grid, upsampled."""
    g = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def paste(img, spr, fx, fy, height, rng):
    """Pastes sprite `spr` (BGRA) with its bottom centre at (fx, fy), `height` px tall; returns
    its box or None when it is too small or off the picture."""
    H, W = img.shape[:2]
    sh, sw = spr.shape[:2]
    height = max(4.0, height)
    width = sw * height / sh
    nh, nw = int(round(height)), max(2, int(round(width)))
    if nh < 6 or nw < 4:
        return None
    s = cv2.resize(spr, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
    rgb, a = s[:, :, :3], s[:, :, 3:] / 255.0
    x0, y0 = int(round(fx - nw / 2)), int(round(fy - nh))
    bg_mean = local_mean(img, x0 - nw, y0 - nh * 0.5, x0 + 2 * nw, fy + nh * 0.3)
    # light: follow the surroundings' brightness, a slight cast toward their colour, texture
    lum_bg = bg_mean.mean()
    gain = (lum_bg / 120.0) ** 0.6 * rng.uniform(0.75, 1.15)
    rgb = rgb * gain
    rgb = rgb * (1 - 0.15) + bg_mean[None, None, :] * 0.15 * (rgb.mean() / max(lum_bg, 1))
    rgb = rgb * (1 + 0.12 * soft_noise((nh, nw), rng, 5)[:, :, None])
    # shading from above: the bottom is darker
    rgb = rgb * np.linspace(1.05, 0.8, nh)[:, None, None]
    if rng.random() < 0.7:
        k = rng.choice([1, 3])
        rgb = cv2.GaussianBlur(rgb, (k, k), 0) if k > 1 else rgb
    a = cv2.GaussianBlur(a, (3, 3), 0)[:, :, None] if min(nh, nw) > 8 else a
    # contact shadow: a soft dark ellipse on the ground under the object
    sh_w, sh_h = int(nw * rng.uniform(0.55, 0.8)), max(2, int(nh * rng.uniform(0.08, 0.18)))
    shadow = np.zeros((H, W), np.float32)
    cv2.ellipse(shadow, (int(fx + rng.uniform(-0.1, 0.2) * nw), int(fy)), (sh_w, sh_h), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, sh_h * 0.6))
    img[:] = np.clip(img * (1 - rng.uniform(0.25, 0.5) * shadow[:, :, None]), 0, 255)
    # paste, clipped to the picture
    ix0, iy0, ix1, iy1 = max(0, x0), max(0, y0), min(W, x0 + nw), min(H, y0 + nh)
    if ix1 - ix0 < 3 or iy1 - iy0 < 3:
        return None
    sx0, sy0 = ix0 - x0, iy0 - y0
    sub_a = a[sy0:sy0 + iy1 - iy0, sx0:sx0 + ix1 - ix0]
    sub_rgb = rgb[sy0:sy0 + iy1 - iy0, sx0:sx0 + ix1 - ix0]
    region = img[iy0:iy1, ix0:ix1]
    img[iy0:iy1, ix0:ix1] = region * (1 - sub_a) + np.clip(sub_rgb, 0, 255) * sub_a
    ys, xs = np.nonzero(sub_a[:, :, 0] > 0.5)
    if len(xs) < 10:
        return None
    return [ix0 + xs.min(), iy0 + ys.min(), ix0 + xs.max() + 1, iy0 + ys.max() + 1]


def blob(H, W, cx, cy, rx, ry, rng):
    """A puddle-shaped mask: an ellipse with a wobbly edge."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    ang = np.arctan2((yy - cy) / ry, (xx - cx) / rx)
    r = np.hypot((xx - cx) / rx, (yy - cy) / ry)
    edge = np.ones_like(ang)
    for k in range(2, 7):
        edge += rng.uniform(-0.12, 0.12) * np.cos(k * ang + rng.uniform(0, 6.28))
    return (r < edge).astype(np.float32)


def water(img, mask_acc, cx, cy, rx, ry, rng):
    """Standing water: mirrors the scene above its far edge, darkened and tinted, rippled."""
    H, W = img.shape[:2]
    m = blob(H, W, cx, cy, rx, ry, rng)
    if m.sum() < 50:
        return
    top = cy - ry
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    ripple = rng.uniform(0.5, 2.5) * np.sin(yy * rng.uniform(0.3, 0.9) + xx * 0.05)
    src_y = np.clip(2 * top - yy - rng.uniform(0, 0.3) * ry, 0, H - 1)
    src_x = np.clip(xx + ripple, 0, W - 1)
    refl = cv2.remap(img, src_x, src_y, cv2.INTER_LINEAR)
    refl = cv2.GaussianBlur(refl, (0, 0), rng.uniform(0.8, 2.5))
    tint = np.array([rng.uniform(95, 140), rng.uniform(85, 120), rng.uniform(70, 105)])  # BGR, blue-grey
    k_refl = rng.uniform(0.35, 0.7)
    dark = rng.uniform(0.35, 0.6)
    look = refl * k_refl + img * dark * (1 - k_refl) + tint * 0.25
    look = look * rng.uniform(0.75, 1.05)
    soft = cv2.GaussianBlur(m, (0, 0), rng.uniform(1.0, 3.0))[:, :, None]
    img[:] = img * (1 - soft) + look * soft
    mask_acc[:] = np.maximum(mask_acc, m)


def wet_patch(img, cx, cy, rx, ry, rng):
    """Wet but not flooded: a darker patch of ground with no reflection (a negative)."""
    H, W = img.shape[:2]
    m = cv2.GaussianBlur(blob(H, W, cx, cy, rx, ry, rng), (0, 0), rng.uniform(2, 6))[:, :, None]
    img[:] = img * (1 - m * rng.uniform(0.15, 0.35))


def compose(bg, source, sprites, law, rng):
    """One training picture: (416×416 BGR uint8, boxes [[cls, x1, y1, x2, y2]] in letterbox
    pixels, water mask [104, 104] float)."""
    img = bg.astype(np.float32).copy()
    H, W = img.shape[:2]
    (gy0, gy1), person_h = ground_model(source, img.shape, rng, law)
    water_m = np.zeros((H, W), np.float32)
    boxes = []
    if rng.random() < 0.35:
        for _ in range(1 + int(rng.random() < 0.35)):
            cy = rng.uniform(gy0 + 0.1 * (gy1 - gy0), gy1)
            scale = person_h(cy)
            rx = rng.uniform(0.5, 3.0) * scale
            ry = rx * rng.uniform(0.15, 0.4)
            water(img, water_m, rng.uniform(0, W), cy, rx, ry, rng)
    if rng.random() < 0.2:
        cy = rng.uniform(gy0, gy1)
        rx = rng.uniform(0.6, 4.0) * person_h(cy)
        wet_patch(img, rng.uniform(0, W), cy, rx, rx * rng.uniform(0.15, 0.4), rng)
    if rng.random() > 0.3:  # otherwise: a hard negative, nothing composited
        n = 1 + rng.integers(0, 4)
        placed = []
        for _ in range(n):
            cls = GOODS if rng.random() < 0.45 else GARBAGE
            spr = sprites.items[cls][rng.integers(len(sprites.items[cls]))]
            fy = rng.uniform(gy0, gy1)
            ph = person_h(fy)
            if cls == GOODS:
                hgt = ph * rng.uniform(0.35, 0.8)
            else:
                hgt = ph * rng.uniform(0.15, 0.45) * (spr.shape[0] / max(spr.shape[1], 1)) ** 0.3
            placed.append((fy, cls, spr, rng.uniform(0, W), hgt))
        for fy, cls, spr, fx, hgt in sorted(placed, key=lambda p: p[0]):  # far to near
            b = paste(img, spr, fx, fy, hgt, rng)
            if b is not None:
                boxes.append([cls] + b)
    # the camera: crop/zoom, exposure, noise, blur, JPEG
    z = rng.uniform(0.65, 1.0) if rng.random() < 0.5 else 1.0
    cw, ch = int(W * z), int(H * z)
    ox, oy = int(rng.uniform(0, W - cw + 1)), int(rng.uniform(0, H - ch + 1))
    img = img[oy:oy + ch, ox:ox + cw]
    water_m = water_m[oy:oy + ch, ox:ox + cw]
    img = img * rng.uniform(0.7, 1.25) + rng.uniform(-15, 15)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.2))
    img = np.clip(img + rng.normal(0, rng.uniform(0, 5), img.shape), 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 92))])
    img = cv2.imdecode(jpg, cv2.IMREAD_COLOR)
    flip = rng.random() < 0.5
    if flip:
        img = img[:, ::-1].copy()
        water_m = water_m[:, ::-1].copy()
    lb, r = letterbox(img)
    out_boxes = []
    for cls, x1, y1, x2, y2 in boxes:
        x1, x2 = x1 - ox, x2 - ox
        y1, y2 = y1 - oy, y2 - oy
        if flip:
            x1, x2 = cw - x2, cw - x1
        x1, y1, x2, y2 = max(0, x1) * r, max(0, y1) * r, min(cw, x2) * r, min(ch, y2) * r
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            out_boxes.append([cls, x1, y1, x2, y2])
    # the mask over the letterboxed input at stride 4 (the padding is not water)
    m_full = np.zeros((INPUT, INPUT), np.float32)
    nh, nw = round(ch * r), round(cw * r)
    m_full[:nh, :nw] = cv2.resize(water_m, (nw, nh), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(m_full, (MASK, MASK), interpolation=cv2.INTER_AREA)
    valid = np.zeros((MASK, MASK), np.float32)
    valid[:int(np.ceil(nh / 4)), :int(np.ceil(nw / 4))] = 1
    return lb, np.array(out_boxes, np.float32).reshape(-1, 5), mask, valid
