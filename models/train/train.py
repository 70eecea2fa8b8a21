#!/usr/bin/env python3
"""Trains hawkeye's small urban object detector from scratch on a `hawkeye synth --dataset` set.

The exported ONNX model follows hawkeye's "yolox" layout:
  input  `images` float32 [1, 3, 224, 384], RGB, pixel / 255, frame letterboxed top-left (pad 114)
  output `output` float32 [1, 1764, 11], rows over strides 8, 16, 32 (grid y outer, x inner),
         row = [raw_cx, raw_cy, raw_w, raw_h, sigmoid(obj), sigmoid(cls_0..cls_5)]
         cx = (raw_cx + gx) * stride, w = exp(raw_w) * stride (model-input pixels).

Everything (model, target assignment, losses, augmentation, evaluator) is in this one file.
Example:
  python models/train/train.py --data /tmp/hawkeye-ds --out models/hawkeye_urban.onnx --minutes 50
"""
import argparse
import hashlib
import io
import json
import math
import os
import random
import sys
import time

# On a CPU shared with other jobs, spinning OpenMP workers lose most of their time slices;
# passive waiting is as fast on an idle machine and several times faster on a busy one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from PIL import Image

import torch
import torch.nn as nn
import torch.nn.functional as F

IN_W, IN_H = 384, 224
STRIDES = (8, 16, 32)
PAD = 114
DEFAULT_CLASSES = ["person", "goods", "garbage", "water", "bicycle", "vehicle"]


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# --------------------------------------------------------------------------------------------
# Letterbox (same sampling as hawkeye's src/detect/letterbox.rs)
# --------------------------------------------------------------------------------------------

def letterbox_geometry(fw, fh):
    """Scale (as f32, like the Rust side) and the resized content size for a fw x fh frame."""
    scale = float(np.float32(min(np.float32(IN_W) / np.float32(fw), np.float32(IN_H) / np.float32(fh))))
    rw = min(max(int(round(fw * scale)), 1), IN_W)
    rh = min(max(int(round(fh * scale)), 1), IN_H)
    return scale, rw, rh


def _taps(n, length, scale):
    d = np.arange(n, dtype=np.float32)
    s = np.clip((d + np.float32(0.5)) / np.float32(scale) - np.float32(0.5), 0, length - 1)
    i0 = np.floor(s)
    i1 = np.minimum(i0 + 1, length - 1)
    w1 = np.round((s - i0) * 2048.0) / 2048.0  # hawkeye uses Q11 fixed-point weights
    return i0.astype(np.int64), i1.astype(np.int64), w1.astype(np.float32)


def letterbox(rgb):
    """HxWx3 uint8 RGB frame -> (224x384x3 uint8 letterboxed top-left, scale)."""
    fh, fw = rgb.shape[:2]
    scale, rw, rh = letterbox_geometry(fw, fh)
    x0, x1, wx = _taps(rw, fw, scale)
    y0, y1, wy = _taps(rh, fh, scale)
    src = rgb.astype(np.float32)
    top = src[y0]
    bot = src[y1]
    wy = wy[:, None, None]
    rows = top * (1 - wy) + bot * wy
    wx = wx[None, :, None]
    res = rows[:, x0] * (1 - wx) + rows[:, x1] * wx
    out = np.full((IN_H, IN_W, 3), PAD, dtype=np.uint8)
    out[:rh, :rw] = np.clip(np.round(res), 0, 255).astype(np.uint8)
    return out, scale


def letterbox_fast(rgb):
    """Same as `letterbox` (torch's bilinear resize with align_corners=False samples at the same
    pixel-centre aligned positions and clamps at the edges the same way), several times faster."""
    fh, fw = rgb.shape[:2]
    scale, rw, rh = letterbox_geometry(fw, fh)
    with torch.no_grad():
        t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float()
        r = F.interpolate(t, size=(rh, rw), mode="bilinear", align_corners=False, antialias=False)
        r = r[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    out = np.full((IN_H, IN_W, 3), PAD, dtype=np.uint8)
    out[:rh, :rw] = r
    return out, scale


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------

class Split:
    """A whole split in RAM: letterboxed uint8 images and boxes in model-input pixels."""

    def __init__(self, images, boxes, frame_boxes, scales, content, names):
        self.images = images  # (N, 224, 384, 3) uint8
        self.boxes = boxes  # list of (G, 5) float32 [cls, x1, y1, x2, y2] model pixels
        self.frame_boxes = frame_boxes  # list of (G, 5) float32 [cls, x1, y1, x2, y2] frame px
        self.scales = scales  # (N,) letterbox scale per image
        self.content = content  # (N, 2) resized content (w, h) per image
        self.names = names

    def __len__(self):
        return len(self.images)


def load_split(root, split, limit=0):
    img_dir = os.path.join(root, "images", split)
    lbl_dir = os.path.join(root, "labels", split)
    names = sorted(n for n in os.listdir(img_dir) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    if limit:
        names = names[:limit]
    images = np.empty((len(names), IN_H, IN_W, 3), dtype=np.uint8)
    boxes, frame_boxes, scales, content = [], [], [], []
    for i, name in enumerate(names):
        with Image.open(os.path.join(img_dir, name)) as im:
            rgb = np.asarray(im.convert("RGB"))
        fh, fw = rgb.shape[:2]
        images[i], scale = letterbox_fast(rgb)
        _, rw, rh = letterbox_geometry(fw, fh)
        rows = []
        lp = os.path.join(lbl_dir, os.path.splitext(name)[0] + ".txt")
        if os.path.exists(lp):
            with open(lp) as f:
                for line in f:
                    p = line.split()
                    if len(p) < 5:
                        continue
                    c, cx, cy, w, h = int(p[0]), *map(float, p[1:5])
                    rows.append([c, (cx - w / 2) * fw, (cy - h / 2) * fh, (cx + w / 2) * fw,
                                 (cy + h / 2) * fh])
        fb = np.array(rows, dtype=np.float32).reshape(-1, 5)
        fb[:, [1, 3]] = fb[:, [1, 3]].clip(0, fw)
        fb[:, [2, 4]] = fb[:, [2, 4]].clip(0, fh)
        mb = fb.copy()
        mb[:, 1:] *= scale
        frame_boxes.append(fb)
        boxes.append(mb)
        scales.append(scale)
        content.append((rw, rh))
    return Split(images, boxes, frame_boxes, np.array(scales, np.float32),
                 np.array(content, np.float32).reshape(-1, 2), names)


def load_split_cached(root, split, limit, cache_dir):
    """`load_split`, memoised on disk (uint8 arrays) so repeated runs skip JPEG decoding."""
    if not cache_dir:
        return load_split(root, split, limit)
    img_dir = os.path.join(root, "images", split)
    lbl_dir = os.path.join(root, "labels", split)
    h = hashlib.sha1()
    for d in (img_dir, lbl_dir):
        for n in sorted(os.listdir(d)):
            st = os.stat(os.path.join(d, n))
            h.update(f"{n}:{st.st_size}:{st.st_mtime_ns};".encode())
    h.update(f"{os.path.abspath(root)}|{split}|{limit}|{IN_W}x{IN_H}|v1".encode())
    path = os.path.join(cache_dir, f"{split}-{h.hexdigest()[:16]}.npz")
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        counts = z["counts"]
        offs = np.concatenate([[0], np.cumsum(counts)])
        cut = lambda a: [a[offs[i]:offs[i + 1]] for i in range(len(counts))]
        return Split(z["images"], cut(z["boxes"]), cut(z["frame_boxes"]), z["scales"], z["content"],
                     [str(n) for n in z["names"]])
    sp = load_split(root, split, limit)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, images=sp.images, counts=np.array([len(b) for b in sp.boxes], np.int64),
             boxes=np.concatenate(sp.boxes + [np.zeros((0, 5), np.float32)]),
             frame_boxes=np.concatenate(sp.frame_boxes + [np.zeros((0, 5), np.float32)]),
             scales=sp.scales, content=sp.content, names=np.array(sp.names))
    os.replace(tmp, path)
    return sp


def read_classes(root):
    p = os.path.join(root, "classes.txt")
    if os.path.exists(p):
        with open(p) as f:
            names = [l.strip() for l in f if l.strip()]
        if names:
            return names
    return list(DEFAULT_CLASSES)


# --------------------------------------------------------------------------------------------
# Augmentation (on a whole batch, numpy + torch)
# --------------------------------------------------------------------------------------------

class Augmenter:
    def __init__(self, rng, flip=0.3, affine=0.5, jpeg=0.2, blur=0.15, noise=0.3):
        self.rng = rng
        self.flip, self.affine, self.jpeg, self.blur, self.noise = flip, affine, jpeg, blur, noise
        g = torch.tensor([1.0, 2.0, 1.0])
        k = (g[:, None] * g[None, :]) / 16.0
        self.blur_k = k.expand(3, 1, 3, 3).contiguous()

    def __call__(self, imgs_u8, boxes, content):
        """imgs_u8 (B,H,W,3) uint8 numpy (copied), boxes list of (G,5), content (B,2).

        Returns a float tensor (B,3,H,W) in 0..1 and a list of (G,5) float32 boxes."""
        rng = self.rng
        B = len(imgs_u8)
        imgs_u8 = imgs_u8.copy()
        boxes = [b.copy() for b in boxes]
        for i in range(B):  # JPEG re-compression
            if rng.random() < self.jpeg:
                buf = io.BytesIO()
                Image.fromarray(imgs_u8[i]).save(buf, format="JPEG", quality=int(rng.integers(35, 90)))
                buf.seek(0)
                with Image.open(buf) as im:
                    imgs_u8[i] = np.asarray(im.convert("RGB"))
        x = torch.from_numpy(imgs_u8).permute(0, 3, 1, 2).float().div_(255.0)
        pad = PAD / 255.0

        # Geometry: horizontal flip, then slight scale / translate of the content.
        theta = torch.zeros(B, 2, 3)
        any_affine = False
        for i in range(B):
            cw, ch = float(content[i][0]), float(content[i][1])
            s, tx, ty = 1.0, 0.0, 0.0
            flip = rng.random() < self.flip
            if rng.random() < self.affine:
                any_affine = True
                s = float(rng.uniform(0.88, 1.12))
                tx = (1 - s) * cw / 2 + float(rng.uniform(-0.06, 0.06)) * cw
                ty = (1 - s) * ch / 2 + float(rng.uniform(-0.06, 0.06)) * ch
            if flip:
                any_affine = True
            # Output continuous coord c' = f(s*c + t) where f mirrors x within the content width.
            # Inverse: c = (c' - t) / s (with x first un-mirrored). In normalised coords u = 2c/W-1.
            sx = -1.0 if flip else 1.0
            # x: c' = sx*(s*c + tx) + (cw if flip else 0)  =>  c = (sx*(c' - o) - tx) / s
            o = cw if flip else 0.0
            # c = a*c' + b with a = sx/s, b = (-sx*o - tx)/s ; u_src = a*u' + (a + 2b/W - 1)
            a = sx / s
            b = (-sx * o - tx) / s
            theta[i, 0, 0] = a
            theta[i, 0, 2] = a + 2 * b / IN_W - 1
            ay = 1.0 / s
            by = -ty / s
            theta[i, 1, 1] = ay
            theta[i, 1, 2] = ay + 2 * by / IN_H - 1
            bx = boxes[i]
            if len(bx):
                x1 = s * bx[:, 1] + tx
                x2 = s * bx[:, 3] + tx
                if flip:
                    x1, x2 = cw - x2, cw - x1
                y1 = s * bx[:, 2] + ty
                y2 = s * bx[:, 4] + ty
                area0 = (x2 - x1) * (y2 - y1)
                cx1, cx2 = x1.clip(0, cw), x2.clip(0, cw)
                cy1, cy2 = y1.clip(0, ch), y2.clip(0, ch)
                area1 = (cx2 - cx1) * (cy2 - cy1)
                keep = (area1 >= 0.4 * np.maximum(area0, 1e-6)) & (cx2 - cx1 >= 2) & (cy2 - cy1 >= 2)
                nb = np.stack([bx[:, 0], cx1, cy1, cx2, cy2], 1)[keep]
                boxes[i] = nb.astype(np.float32)
        if any_affine:
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x - pad, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False) + pad

        # Photometric jitter, per image.
        bright = torch.from_numpy(rng.uniform(-0.12, 0.12, (B, 1, 1, 1))).float()
        contrast = torch.from_numpy(rng.uniform(0.7, 1.3, (B, 1, 1, 1))).float()
        sat = torch.from_numpy(rng.uniform(0.6, 1.4, (B, 1, 1, 1))).float()
        gain = torch.from_numpy(rng.uniform(0.92, 1.08, (B, 3, 1, 1))).float()
        gray = x.mean(1, keepdim=True)
        x = gray + (x - gray) * sat
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + bright
        x = x * gain
        blur_sel = rng.random(B) < self.blur
        if blur_sel.any():
            idx = torch.from_numpy(np.nonzero(blur_sel)[0])
            x[idx] = F.conv2d(F.pad(x[idx], (1, 1, 1, 1), mode="replicate"), self.blur_k, groups=3)
        noise_sel = rng.random(B) < self.noise
        if noise_sel.any():
            sig = torch.from_numpy(rng.uniform(0.0, 0.025, B) * noise_sel).float().view(B, 1, 1, 1)
            x = x + torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)) * sig
        x = x.clamp_(0, 1)
        # Outside the letterboxed content the model only ever sees the exact pad value.
        for i in range(B):
            cw, ch = int(content[i][0]), int(content[i][1])
            if ch < IN_H:
                x[i, :, ch:, :] = pad
            if cw < IN_W:
                x[i, :, :, cw:] = pad
        return x, boxes


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------

class Conv(nn.Module):
    def __init__(self, cin, cout, k=1, s=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut=True):
        super().__init__()
        self.a = Conv(c, c, 1)
        self.b = Conv(c, c, 3)
        self.shortcut = shortcut

    def forward(self, x):
        y = self.b(self.a(x))
        return x + y if self.shortcut else y


class CSP(nn.Module):
    """Cross-stage partial block: half the channels go through n bottlenecks, half bypass."""

    def __init__(self, cin, cout, n=1, shortcut=True):
        super().__init__()
        h = cout // 2
        self.main = Conv(cin, h, 1)
        self.side = Conv(cin, h, 1)
        self.blocks = nn.Sequential(*[Bottleneck(h, shortcut) for _ in range(n)])
        self.fuse = Conv(2 * h, cout, 1)

    def forward(self, x):
        return self.fuse(torch.cat([self.blocks(self.main(x)), self.side(x)], 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): widens the receptive field at stride 32 (large puddles)."""

    def __init__(self, cin, cout, k=5):
        super().__init__()
        h = cin // 2
        self.reduce = Conv(cin, h, 1)
        self.pool = nn.MaxPool2d(k, 1, k // 2)
        self.fuse = Conv(4 * h, cout, 1)

    def forward(self, x):
        x = self.reduce(x)
        p1 = self.pool(x)
        p2 = self.pool(p1)
        p3 = self.pool(p2)
        return self.fuse(torch.cat([x, p1, p2, p3], 1))


class Head(nn.Module):
    """Decoupled YOLOX-style head for one stride: regression+objectness branch, class branch."""

    def __init__(self, cin, width, num_classes, depth=1):
        super().__init__()
        self.stem = Conv(cin, width, 1)
        self.cls_conv = nn.Sequential(*[Conv(width, width, 3) for _ in range(depth)])
        self.reg_conv = nn.Sequential(*[Conv(width, width, 3) for _ in range(depth)])
        self.cls = nn.Conv2d(width, num_classes, 1)
        self.reg = nn.Conv2d(width, 4, 1)
        self.obj = nn.Conv2d(width, 1, 1)
        prior = -math.log((1 - 0.01) / 0.01)
        nn.init.constant_(self.cls.bias, prior)
        nn.init.constant_(self.obj.bias, prior)
        nn.init.zeros_(self.reg.bias)

    def forward(self, x):
        x = self.stem(x)
        c = self.cls_conv(x)
        r = self.reg_conv(x)
        return torch.cat([self.reg(r), self.obj(r), self.cls(c)], 1)


class Detector(nn.Module):
    """Tiny CSP backbone (stride 2..32) + PAN neck + decoupled heads. Outputs raw logits
    (B, 1764, 5 + C): [raw_cx, raw_cy, raw_w, raw_h, obj_logit, cls_logits...]."""

    def __init__(self, num_classes=6, w=(16, 24, 48, 96, 128), head_w=(48, 64, 96), n=(0, 1, 1, 1),
                 hw=40, hd=1):
        super().__init__()
        c0, c1, c2, c3, c4 = w
        self.stem = Conv(3, c0, 3, 2)  # /2
        self.d1 = nn.Sequential(Conv(c0, c1, 3, 2), *([CSP(c1, c1, n[0])] if n[0] else []))  # /4
        self.d2 = nn.Sequential(Conv(c1, c2, 3, 2), CSP(c2, c2, n[1]))  # /8
        self.d3 = nn.Sequential(Conv(c2, c3, 3, 2), CSP(c3, c3, n[2]))  # /16
        self.d4 = nn.Sequential(Conv(c3, c4, 3, 2), SPPF(c4, c4), CSP(c4, c4, n[3], False))  # /32
        n3, n4, n5 = head_w
        # Top-down.
        self.lat5 = Conv(c4, c3, 1)
        self.td4 = CSP(c3 + c3, c3, 1, False)
        self.lat4 = Conv(c3, c2, 1)
        self.td3 = CSP(c2 + c2, n3, 1, False)
        # Bottom-up.
        self.down3 = Conv(n3, n3, 3, 2)
        self.bu4 = CSP(n3 + c2, n4, 1, False)
        self.down4 = Conv(n4, n4, 3, 2)
        self.bu5 = CSP(n4 + c3, n5, 1, False)
        self.heads = nn.ModuleList([Head(c, hw, num_classes, hd) for c in (n3, n4, n5)])
        self.num_classes = num_classes

    def forward(self, x):
        x = self.d1(self.stem(x))
        c3 = self.d2(x)
        c4 = self.d3(c3)
        c5 = self.d4(c4)
        p5 = self.lat5(c5)
        p4 = self.td4(torch.cat([F.interpolate(p5, scale_factor=2.0, mode="nearest"), c4], 1))
        p4l = self.lat4(p4)
        p3 = self.td3(torch.cat([F.interpolate(p4l, scale_factor=2.0, mode="nearest"), c3], 1))
        n4 = self.bu4(torch.cat([self.down3(p3), p4l], 1))
        n5 = self.bu5(torch.cat([self.down4(n4), p5], 1))
        outs = []
        for head, f in zip(self.heads, (p3, n4, n5)):
            o = head(f)
            outs.append(o.flatten(2))  # (B, 5+C, H*W), y outer, x inner
        return torch.cat(outs, 2).permute(0, 2, 1)


class Exported(nn.Module):
    """The ONNX contract: raw box terms, sigmoid on objectness and classes."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        y = self.model(images)
        return torch.cat([y[..., :4], torch.sigmoid(y[..., 4:])], -1)


def make_grid():
    gs, ss = [], []
    for s in STRIDES:
        gh, gw = IN_H // s, IN_W // s
        yy, xx = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
        gs.append(torch.stack([xx, yy], -1).view(-1, 2).float())
        ss.append(torch.full((gh * gw,), float(s)))
    return torch.cat(gs), torch.cat(ss)


def decode(raw, grid, stride):
    """raw (..., A, >=4) -> boxes cx, cy, w, h in model pixels."""
    xy = (raw[..., :2] + grid) * stride[:, None]
    wh = torch.exp(raw[..., 2:4].clamp(max=8.0)) * stride[:, None]
    return torch.cat([xy, wh], -1)


# --------------------------------------------------------------------------------------------
# Target assignment (simplified SimOTA) and losses
# --------------------------------------------------------------------------------------------

def cxcywh_to_xyxy(b):
    return torch.cat([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def pair_iou(a, b):
    """a (N,4), b (M,4) xyxy -> (N,M)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    aa = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    ab = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (aa[:, None] + ab[None, :] - inter + 1e-9)


def giou_loss(p, t):
    """p, t (N,4) xyxy -> (N,) 1 - GIoU, and IoU."""
    lt = torch.maximum(p[:, :2], t[:, :2])
    rb = torch.minimum(p[:, 2:], t[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    ap = (p[:, 2:] - p[:, :2]).clamp(min=0).prod(-1)
    at = (t[:, 2:] - t[:, :2]).clamp(min=0).prod(-1)
    union = ap + at - inter + 1e-9
    iou = inter / union
    elt = torch.minimum(p[:, :2], t[:, :2])
    erb = torch.maximum(p[:, 2:], t[:, 2:])
    enc = (erb - elt).clamp(min=0).prod(-1) + 1e-9
    return 1 - (iou - (enc - union) / enc), iou


@torch.no_grad()
def simota(pbox, pobj, pcls, gt, grid, stride, num_classes):
    """One image. pbox (A,4) xyxy, pobj (A,), pcls (A,C) logits, gt (G,5) [cls, xyxy].

    Returns (fg_idx (P,), matched gt index (P,), IoU of the match (P,))."""
    A = pbox.shape[0]
    G = gt.shape[0]
    centers = (grid + 0.5) * stride[:, None]
    gxyxy = gt[:, 1:]
    gc = (gxyxy[:, :2] + gxyxy[:, 2:]) / 2
    in_box = ((centers[None] > gxyxy[:, None, :2]) & (centers[None] < gxyxy[:, None, 2:])).all(-1)
    r = 2.5 * stride[None, :, None]
    in_ctr = ((centers[None] - gc[:, None]).abs() < r).all(-1)
    cand = (in_box | in_ctr).any(0)
    cidx = torch.nonzero(cand).squeeze(1)
    if cidx.numel() == 0:
        e = torch.zeros(0, dtype=torch.long)
        return e, e, torch.zeros(0)
    both = (in_box & in_ctr)[:, cidx]
    ious = pair_iou(gxyxy, pbox[cidx])  # (G, Ac)
    prob = (torch.sigmoid(pcls[cidx]) * torch.sigmoid(pobj[cidx])[:, None]).sqrt()
    onehot = F.one_hot(gt[:, 0].long(), num_classes).float()
    p = prob[None].expand(G, -1, -1).clamp(1e-6, 1 - 1e-6)
    t = onehot[:, None].expand(-1, cidx.numel(), -1)
    cls_cost = F.binary_cross_entropy(p, t, reduction="none").sum(-1)
    cost = cls_cost + 3.0 * (-torch.log(ious + 1e-8)) + 1e5 * (~both).float()
    k = min(10, cidx.numel())
    dyn = torch.topk(ious, k, 1).values.sum(1).int().clamp(min=1)
    match = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(G):
        idx = torch.topk(cost[g], int(dyn[g]), largest=False).indices
        match[g, idx] = True
    multi = match.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        match[:, multi] = False
        match[best, torch.nonzero(multi).squeeze(1)] = True
    fg_c = match.any(0)
    gi = match[:, fg_c].float().argmax(0)
    fg = cidx[fg_c]
    miou = ious[gi, torch.nonzero(fg_c).squeeze(1)]
    return fg, gi, miou


def compute_loss(out, targets, grid, stride, num_classes):
    """out (B,A,5+C) raw; targets list of (G,5) tensors. Returns total loss and parts."""
    B, A, _ = out.shape
    boxes = decode(out, grid, stride)
    bxyxy = cxcywh_to_xyxy(boxes)
    obj_t = torch.zeros(B, A)
    fg_pred, fg_tbox, fg_cls_out, fg_cls_t, fg_raw, fg_l1t = [], [], [], [], [], []
    for b in range(B):
        gt = targets[b]
        if gt.shape[0] == 0:
            continue
        fg, gi, miou = simota(bxyxy[b].detach(), out[b, :, 4].detach(), out[b, :, 5:].detach(), gt,
                              grid, stride, num_classes)
        if fg.numel() == 0:
            continue
        obj_t[b, fg] = 1.0
        tb = gt[gi, 1:]
        fg_pred.append(bxyxy[b, fg])
        fg_tbox.append(tb)
        fg_cls_out.append(out[b, fg, 5:])
        fg_cls_t.append(F.one_hot(gt[gi, 0].long(), num_classes).float() * miou[:, None])
        s = stride[fg][:, None]
        tc = (tb[:, :2] + tb[:, 2:]) / 2
        twh = (tb[:, 2:] - tb[:, :2]).clamp(min=1e-3)
        fg_l1t.append(torch.cat([tc / s - grid[fg], torch.log(twh / s)], 1))
        fg_raw.append(out[b, fg, :4])
    nfg = max(sum(len(p) for p in fg_pred), 1)
    loss_obj = F.binary_cross_entropy_with_logits(out[..., 4], obj_t, reduction="sum") / nfg
    if fg_pred:
        gl, _ = giou_loss(torch.cat(fg_pred), torch.cat(fg_tbox))
        loss_iou = 5.0 * gl.sum() / nfg
        loss_cls = F.binary_cross_entropy_with_logits(torch.cat(fg_cls_out), torch.cat(fg_cls_t),
                                                      reduction="sum") / nfg
        loss_l1 = F.l1_loss(torch.cat(fg_raw), torch.cat(fg_l1t), reduction="sum") / nfg
    else:
        loss_iou = loss_cls = loss_l1 = out.sum() * 0.0
    total = loss_iou + loss_obj + loss_cls + loss_l1
    return total, {"iou": float(loss_iou), "obj": float(loss_obj), "cls": float(loss_cls),
                   "l1": float(loss_l1), "fg": nfg / B}


# --------------------------------------------------------------------------------------------
# Evaluation: decode like hawkeye (score = obj * cls, per-class NMS 0.45), AP@0.5 per class
# --------------------------------------------------------------------------------------------

def nms(boxes, scores, thr):
    """Greedy NMS on numpy arrays; returns kept indices, best first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clip(0).prod(1)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= thr]
    return keep


def postprocess(row_out, grid, stride, scale, fw, fh, conf=0.001, iou_thr=0.45, max_det=300):
    """row_out (A, 5+C) numpy in the exported form -> list of (cls, score, xyxy frame px)."""
    cx = (row_out[:, 0] + grid[:, 0]) * stride
    cy = (row_out[:, 1] + grid[:, 1]) * stride
    w = np.exp(np.minimum(row_out[:, 2], 20)) * stride
    h = np.exp(np.minimum(row_out[:, 3], 20)) * stride
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) / scale
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, fw)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, fh)
    scores = row_out[:, 4:5] * row_out[:, 5:]
    dets = []
    for c in range(scores.shape[1]):
        sc = scores[:, c]
        m = sc > conf
        if not m.any():
            continue
        bb, ss = xyxy[m], sc[m]
        if len(ss) > 1000:  # NMS only among the best candidates, as a detector would
            top = np.argpartition(-ss, 1000)[:1000]
            bb, ss = bb[top], ss[top]
        for i in nms(bb, ss, iou_thr):
            dets.append((c, float(ss[i]), bb[i]))
    dets.sort(key=lambda d: -d[1])
    return dets[:max_det]


def average_precision(recall, precision):
    """All-point interpolated AP (area under the monotone precision envelope)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(((r[idx + 1] - r[idx]) * p[idx + 1]).sum())


def evaluate_ap(all_dets, all_gts, num_classes, iou_thr=0.5):
    """all_dets: per image list of (cls, score, xyxy); all_gts: per image (G,5) [cls, xyxy].
    Returns list of AP per class (None where a class has no ground truth)."""
    aps = []
    for c in range(num_classes):
        recs = []
        npos = 0
        gts_c = []
        for gts in all_gts:
            g = gts[gts[:, 0] == c, 1:]
            gts_c.append((g, np.zeros(len(g), bool)))
            npos += len(g)
        for im, dets in enumerate(all_dets):
            for d in dets:
                if d[0] == c:
                    recs.append((d[1], im, d[2]))
        if npos == 0:
            aps.append(None)
            continue
        recs.sort(key=lambda r: -r[0])
        tp = np.zeros(len(recs))
        for k, (_, im, box) in enumerate(recs):
            g, used = gts_c[im]
            if len(g) == 0:
                continue
            lt = np.maximum(g[:, :2], box[:2])
            rb = np.minimum(g[:, 2:], box[2:])
            inter = (rb - lt).clip(0).prod(1)
            ua = (box[2] - box[0]) * (box[3] - box[1]) + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]) - inter
            iou = inter / np.maximum(ua, 1e-9)
            j = int(np.argmax(iou))
            if iou[j] >= iou_thr and not used[j]:
                tp[k] = 1
                used[j] = True
        ctp = np.cumsum(tp)
        cfp = np.cumsum(1 - tp)
        recall = ctp / npos
        precision = ctp / np.maximum(ctp + cfp, 1e-9)
        aps.append(average_precision(recall, precision))
    return aps


@torch.no_grad()
def run_eval(model, split, num_classes, limit=0, batch=16):
    model.eval()
    exp = Exported(model)
    grid, stride = make_grid()
    g_np, s_np = grid.numpy(), stride.numpy()
    n = len(split) if not limit else min(limit, len(split))
    all_dets, all_gts = [], []
    for i0 in range(0, n, batch):
        x = torch.from_numpy(split.images[i0:i0 + batch]).permute(0, 3, 1, 2).float() / 255.0
        y = exp(x).numpy()
        for j in range(len(y)):
            k = i0 + j
            fw = split.content[k][0] / split.scales[k]
            fh = split.content[k][1] / split.scales[k]
            all_dets.append(postprocess(y[j], g_np, s_np, split.scales[k], round(fw), round(fh)))
            all_gts.append(split.frame_boxes[k])
    model.train()
    return evaluate_ap(all_dets, all_gts, num_classes)


def format_aps(aps, classes):
    parts = [f"{n}={'n/a' if a is None else f'{a:.3f}'}" for n, a in zip(classes, aps)]
    valid = [a for a in aps if a is not None]
    m = sum(valid) / len(valid) if valid else 0.0
    return " ".join(parts) + f" | mAP@0.5={m:.3f}", m


# --------------------------------------------------------------------------------------------
# EMA, schedule, export
# --------------------------------------------------------------------------------------------

class EMA:
    """Exponential moving average of the weights; the averaging window follows the run length
    (about a tenth of the planned iterations), ramping up from plain copies at the start."""

    def __init__(self, model):
        import copy
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model, total):
        self.updates += 1
        window = max(20.0, 0.1 * total)
        d = min(1.0 - 1.0 / window, (1.0 + self.updates) / (10.0 + self.updates))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def lr_at(it, total, base, warmup, final_frac=0.05):
    if it < warmup:
        return base * (0.1 + 0.9 * it / max(warmup, 1))
    t = min(1.0, (it - warmup) / max(total - warmup, 1))
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def export_onnx(model, path):
    model = model.eval()
    exp = Exported(model).eval()
    dummy = torch.zeros(1, 3, IN_H, IN_W)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.onnx.export(exp, dummy, path, opset_version=17, input_names=["images"],
                      output_names=["output"], do_constant_folding=True, dynamo=False)
    import onnx
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return exp


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(onnx_path, classes):
    name = os.path.splitext(os.path.basename(onnx_path))[0]
    toml = os.path.splitext(onnx_path)[0] + ".toml"
    cls = ", ".join(json.dumps(c) for c in classes)
    text = (
        f'name = "{name}"\n'
        'layout = "yolox"\n'
        f"input_width = {IN_W}\n"
        f"input_height = {IN_H}\n"
        'color = "rgb"\n'
        "scale = 0.003921569\n"
        f"pad_value = {PAD}\n"
        'letterbox = "top_left"\n'
        "strides = [8, 16, 32]\n"
        f'sha256 = "{sha256_of(onnx_path)}"\n'
        'license = "Apache-2.0"\n'
        'source = "models/train/train.py (trained from scratch on hawkeye synth --dataset)"\n'
        f"classes = [{cls}]\n"
    )
    with open(toml, "w") as f:
        f.write(text)
    return toml


def check_onnx(path, torch_exp, image_u8, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    ins, outs = sess.get_inputs(), sess.get_outputs()
    assert [i.name for i in ins] == ["images"], ins
    assert [o.name for o in outs] == ["output"], outs
    x = (image_u8.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
    y = sess.run(["output"], {"images": x})[0]
    with torch.no_grad():
        yt = torch_exp(torch.from_numpy(x)).numpy()
    assert y.shape == (1, 1764, 11) or y.shape[1:] == (1764, yt.shape[2]), y.shape
    diff = float(np.abs(y - yt).max())
    for _ in range(3):
        sess.run(["output"], {"images": x})
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        sess.run(["output"], {"images": x})
    ms = (time.perf_counter() - t0) / reps * 1000
    return diff, ms, list(y.shape)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="dataset root (images/, labels/, classes.txt)")
    ap.add_argument("--out", default="models/hawkeye_urban.onnx")
    ap.add_argument("--minutes", type=float, default=50.0, help="total time budget incl. eval/export")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=300, help="upper bound on epochs")
    ap.add_argument("--iters", type=int, default=0,
                    help="fix the iteration count instead of fitting it to --minutes")
    ap.add_argument("--lr", type=float, default=0.004, help="AdamW base learning rate")
    ap.add_argument("--wd", type=float, default=0.02)
    ap.add_argument("--flip", type=float, default=0.3, help="horizontal flip probability")
    ap.add_argument("--eval-every", type=float, default=0.25,
                    help="quick val AP every this fraction of training (0 = off)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images per split")
    ap.add_argument("--ckpt", default="/tmp/hawkeye_urban_ckpt.pt")
    ap.add_argument("--cache", default="/tmp/hawkeye_ds_cache",
                    help="folder for the letterboxed dataset arrays ('' = no cache)")
    ap.add_argument("--json", default="models/train/last_run.json")
    args = ap.parse_args()

    t_start = time.time()
    budget = args.minutes * 60.0
    for p in (args.out, args.ckpt, args.json):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(args.seed)

    classes = read_classes(args.data)
    nc = len(classes)
    log(f"torch {torch.__version__}, threads {torch.get_num_threads()}, classes {classes}")
    train = load_split_cached(args.data, "train", args.limit, args.cache)
    val = load_split_cached(args.data, "val", args.limit, args.cache)
    ntr_boxes = sum(len(b) for b in train.boxes)
    counts = np.bincount(np.concatenate([b[:, 0].astype(int) for b in train.boxes] + [np.zeros(0, int)]),
                         minlength=nc)
    log(f"loaded {len(train)} train / {len(val)} val images ({ntr_boxes} train boxes, per class "
        f"{counts.tolist()}) in {time.time() - t_start:.1f}s")

    model = Detector(nc)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"model: {nparams / 1e6:.3f} M parameters")
    ema = EMA(model)
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
                            betas=(0.9, 0.999))
    grid, stride = make_grid()
    aug = Augmenter(rng, flip=args.flip)

    # Reserve time for final eval + export (+ a margin for load already spent).
    reserve = min(20.0 + len(val) * 0.05, 0.2 * budget)
    train_budget = budget - (time.time() - t_start) - reserve
    iters_per_epoch = max(1, len(train) // args.batch)
    max_iters = args.epochs * iters_per_epoch
    total = args.iters if args.iters else max_iters
    warmup_est = 20  # iterations after which step time is measured
    warmup = 0  # LR warm-up length (set once total is known)
    fixed = bool(args.iters)
    if fixed:
        total = min(total, max_iters) if args.epochs else total
        warmup = max(1, min(300, total // 20))
    lr_warm = max(50, warmup_est)

    it = 0
    epoch = 0
    seen = 0
    t_train = time.time()
    t_log = t_train
    seen_log = 0
    loss_avg = None
    parts_avg = {}
    next_eval = args.eval_every
    refined = False
    last_loss = float("nan")
    model.train()
    stop_reason = "iterations"
    while it < total:
        perm = rng.permutation(len(train))
        for bi in range(iters_per_epoch):
            if it >= total:
                break
            elapsed = time.time() - t_train
            if elapsed > train_budget and not fixed:
                stop_reason = "time"
                total = it
                break
            idx = perm[bi * args.batch:(bi + 1) * args.batch]
            x, bxs = aug(train.images[idx], [train.boxes[i] for i in idx], train.content[idx])
            tg = [torch.from_numpy(b) for b in bxs]
            if fixed:
                lr = lr_at(it, total, args.lr, warmup)
            elif it < lr_warm:
                lr = args.lr * (0.1 + 0.9 * it / lr_warm)
            else:
                # Progress is the larger of iterations done and time spent, so the schedule
                # still reaches its end on time when other jobs slow the CPU down mid-run.
                at = max(it, int(elapsed / train_budget * total))
                lr = lr_at(at, total, args.lr, lr_warm)
            for g in opt.param_groups:
                g["lr"] = lr
            out = model(x)
            loss, parts = compute_loss(out, tg, grid, stride, nc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            ema.update(model, total)
            it += 1
            seen += len(idx)
            last_loss = float(loss)
            loss_avg = last_loss if loss_avg is None else 0.95 * loss_avg + 0.05 * last_loss
            for k, v in parts.items():
                parts_avg[k] = v if k not in parts_avg else 0.95 * parts_avg[k] + 0.05 * v

            # Fit the iteration count to the time budget from the measured step time.
            if not fixed and it == warmup_est:
                t_warm = time.time()
                seen_warm = seen
                step = (t_warm - t_train) / it
                total = min(max_iters, int(train_budget / step))
                log(f"initial estimate: {step:.2f}s/step -> {total} iterations")
            if not fixed and not refined and it > warmup_est and it >= max(60, int(0.12 * total)):
                step = (time.time() - t_warm) / (it - warmup_est)
                total = min(max_iters, warmup_est + int((train_budget - (t_warm - t_train)) / step))
                total = max(total, it + 1)
                refined = True
                log(f"refined estimate: {step:.2f}s/step -> {total} iterations")

            now = time.time()
            if now - t_log > 30 or it == total:
                ips = (seen - seen_log) / (now - t_log)
                p = " ".join(f"{k}={v:.3f}" for k, v in parts_avg.items())
                log(f"it {it}/{total} ep {epoch} lr {lr:.5f} loss {loss_avg:.3f} ({p}) "
                    f"{ips:.1f} img/s, {1000 / max(ips, 1e-9):.0f} ms/img, "
                    f"elapsed {(now - t_start) / 60:.1f} min")
                t_log, seen_log = now, seen
            if args.eval_every and it / max(total, 1) >= next_eval and it < total:
                next_eval += args.eval_every
                aps = run_eval(ema.ema, val, nc, limit=200)
                s, _ = format_aps(aps, classes)
                log(f"val (EMA, first {min(200, len(val))} images) at it {it}: {s}")
                torch.save({"model": ema.ema.state_dict(), "it": it, "classes": classes}, args.ckpt)
        else:
            epoch += 1
            continue
        break

    train_min = (time.time() - t_train) / 60
    log(f"training stopped ({stop_reason}) after {it} iterations, {seen} images, "
        f"{train_min:.1f} min")
    final = ema.ema.eval()
    torch.save({"model": final.state_dict(), "it": it, "classes": classes}, args.ckpt)

    aps = run_eval(final, val, nc)
    s, m = format_aps(aps, classes)
    log(f"val AP@0.5 (EMA weights, {len(val)} images): {s}")

    exp = export_onnx(final, args.out)
    diff, ms, shape = check_onnx(args.out, exp, val.images[0] if len(val) else train.images[0],
                                 args.threads)
    size = os.path.getsize(args.out)
    log(f"exported {args.out} ({size / 1e6:.2f} MB), output {shape}, onnxruntime vs torch max abs "
        f"diff {diff:.2e}, onnxruntime {ms:.1f} ms/frame on {args.threads} threads")
    if diff > 1e-3:
        log("WARNING: onnxruntime output differs from torch by more than 1e-3")
    toml = write_manifest(args.out, classes)
    log(f"manifest {toml}")

    run = {
        "seed": args.seed,
        "threads": args.threads,
        "batch": args.batch,
        "lr": args.lr,
        "iterations": it,
        "epochs": round(seen / max(len(train), 1), 2),
        "images_seen": seen,
        "train_minutes": round(train_min, 2),
        "total_minutes": round((time.time() - t_start) / 60, 2),
        "stop_reason": stop_reason,
        "final_loss": round(last_loss, 4),
        "final_loss_smoothed": round(loss_avg or float("nan"), 4),
        "dataset": {"path": os.path.abspath(args.data), "train_images": len(train),
                    "val_images": len(val), "train_boxes": int(ntr_boxes)},
        "val_ap50": {c: (None if a is None else round(a, 4)) for c, a in zip(classes, aps)},
        "val_map50": round(m, 4),
        "onnx": {"path": args.out, "bytes": size, "sha256": sha256_of(args.out),
                 "ort_vs_torch_max_abs_diff": diff, "ort_ms_per_frame": round(ms, 2)},
        "parameters": nparams,
        "torch": torch.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(run, f, indent=2)
    log(f"wrote {args.json}; total {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
