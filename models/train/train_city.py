"""Step 2 of training hawkeye_urban: the urban head and the water head on the frozen teacher.

hawkeye_urban = the COCO YOLOX-nano teacher, untouched (its 80 classes stay bit-identical: no
forgetting by construction), plus an *urban head* (one YOLOX reg tower per stride, initialised
from the teacher's own reg tower, with objectness, box and two classes: goods, garbage) fed by the
teacher's head stems. Its anchors follow the teacher's, so the output is the teacher's 3549 rows
(two zero class columns added) followed by 3549 urban rows: `[1, 7098, 87]`, strides
[8, 16, 32, 8, 16, 32] in the manifest.

hawkeye_water = the teacher's trunk up to the stride-8 and stride-16 stems plus a small decoder:
water probability at stride 4, `[1, 1, 104, 104]`.

    python train_city.py --cache /tmp/city-cache --teacher ../shared/models/yolox_nano.onnx \
        --out models/ --epochs 14 --threads 2
"""
import argparse
import hashlib
import json
import os
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper
from tqdm import tqdm

import realdata as R

# The urban head's classes and the output columns they fill: goods and garbage are new; person,
# bicycle and car are the teacher's columns too (the two heads' boxes of one object merge in
# hawkeye's per-class NMS), learned from the teacher's own boxes on real frames (distillation)
# and from the renderer's exact boxes on its pictures, which the teacher often misses.
URBAN = ["person", "bicycle", "car", "goods", "garbage"]
COLUMNS = [0, 1, 2, 80, 81]
NEW = [3, 4]  # indices in URBAN of the classes the teacher does not have
N_ANCH = 3549


# ---------------------------------------------------------------- teacher weights

def teacher_tower_weights(model):
    """Per stride: the teacher's reg tower [(dw W, b), (pw W, b), (dw W, b), (pw W, b)] and its
    reg/obj predictors, found by walking back from `head.reg_preds.{i}`."""
    g = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    levels = []
    for i in range(3):
        reg = next(n for n in g.node if n.op_type == "Conv" and n.input[1] == f"head.reg_preds.{i}.weight")
        convs, x, mid = [], reg.input[0], None
        while len(convs) < 4:
            n = producer[x]
            if n.op_type == "Conv":
                convs.append((init[n.input[1]], init[n.input[2]]))
                if len(convs) == 2:
                    mid = n.input[0]  # the tower after its first DWConv: where the urban head branches off
            x = n.input[0]
        clsp = next(n for n in g.node if n.op_type == "Conv" and n.input[1] == f"head.cls_preds.{i}.weight")
        cconvs, x2 = [], clsp.input[0]
        while len(cconvs) < 4:
            n2 = producer[x2]
            if n2.op_type == "Conv":
                cconvs.append((init[n2.input[1]], init[n2.input[2]]))
            x2 = n2.input[0]
        levels.append({
            "cls_tower": cconvs[::-1],
            "cls": (init[f"head.cls_preds.{i}.weight"], init[f"head.cls_preds.{i}.bias"]),
            "tower": convs[::-1],
            "stem_out": x,
            "mid": mid,
            "reg": (init[f"head.reg_preds.{i}.weight"], init[f"head.reg_preds.{i}.bias"]),
            "obj": (init[f"head.obj_preds.{i}.weight"], init[f"head.obj_preds.{i}.bias"]),
        })
    return levels


def set_conv(conv, wb):
    conv.weight.data = torch.from_numpy(wb[0].copy())
    conv.bias.data = torch.from_numpy(wb[1].copy())


# ---------------------------------------------------------------- the two heads

class Frozen(nn.Module):
    """The teacher's reg tower up to the branch point (its first DWConv), frozen: shared by the
    teacher's own head and the urban head, so it costs nothing extra at inference."""

    def __init__(self, weights):
        super().__init__()
        self.convs = nn.ModuleList()
        for w in weights:
            dw, pw = nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 64, 1)
            set_conv(dw, w["tower"][0])
            set_conv(pw, w["tower"][1])
            self.convs.append(nn.ModuleList([dw, pw]))
        self.requires_grad_(False)

    def forward(self, stems):
        return [F.silu(pw(F.silu(dw(x)))) for (dw, pw), x in zip(self.convs, stems)]


class TeacherHead(nn.Module):
    """The teacher's head from the stems onwards, in torch: its boxes on the cached pictures are
    the distillation targets for person, bicycle and car."""

    def __init__(self, weights):
        super().__init__()
        def tower(ws):
            convs = nn.ModuleList()
            for k, wb in enumerate(ws):
                c = nn.Conv2d(64, 64, 3, padding=1, groups=64) if k % 2 == 0 else nn.Conv2d(64, 64, 1)
                set_conv(c, wb)
                convs.append(c)
            return convs
        self.cls_t = nn.ModuleList(tower(w["cls_tower"]) for w in weights)
        self.reg_t = nn.ModuleList(tower(w["tower"]) for w in weights)
        self.preds = nn.ModuleList()
        for w in weights:
            r, o, c = nn.Conv2d(64, 4, 1), nn.Conv2d(64, 1, 1), nn.Conv2d(64, 80, 1)
            set_conv(r, w["reg"]); set_conv(o, w["obj"]); set_conv(c, w["cls"])
            self.preds.append(nn.ModuleList([r, o, c]))
        self.requires_grad_(False)

    def forward(self, stems):
        rows = []
        for ct, rt, (r, o, c), x in zip(self.cls_t, self.reg_t, self.preds, stems):
            xc, xr = x, x
            for conv in ct:
                xc = F.silu(conv(xc))
            for conv in rt:
                xr = F.silu(conv(xr))
            rows.append(torch.cat([r(xr), torch.sigmoid(o(xr)), torch.sigmoid(c(xc))], 1).flatten(2))
        return torch.cat(rows, 2).transpose(1, 2)


class Level(nn.Module):
    """One stride of the urban head: a DWConv (initialised from the teacher's second one) and
    box, objectness and class predictors."""

    def __init__(self, w):
        super().__init__()
        self.dw2 = nn.Conv2d(64, 64, 3, padding=1, groups=64)
        self.pw2 = nn.Conv2d(64, 64, 1)
        self.reg = nn.Conv2d(64, 4, 1)
        self.obj = nn.Conv2d(64, 1, 1)
        self.cls = nn.Conv2d(64, len(URBAN), 1)
        set_conv(self.dw2, w["tower"][2])
        set_conv(self.pw2, w["tower"][3])
        set_conv(self.reg, w["reg"])
        set_conv(self.obj, w["obj"])
        nn.init.normal_(self.cls.weight, 0, 0.01)
        nn.init.constant_(self.cls.bias, -4.6)

    def forward(self, x):
        x = F.silu(self.pw2(F.silu(self.dw2(x))))
        return self.reg(x), self.obj(x), self.cls(x)


class UrbanHead(nn.Module):
    """Branch-point features (strides 8, 16, 32) → rows [N, 3549, 4 + 1 + 2] of raw box, obj
    logit, cls logits."""

    def __init__(self, weights):
        super().__init__()
        self.levels = nn.ModuleList(Level(w) for w in weights)

    def forward(self, m8, m16, m32):
        rows = []
        for lv, x in zip(self.levels, (m8, m16, m32)):
            r, o, c = lv(x)
            rows.append(torch.cat([r, o, c], 1).flatten(2))
        return torch.cat(rows, 2).transpose(1, 2)


class UrbanExport(nn.Module):
    """The urban rows in the teacher's layout: raw box, sigmoid obj, 80 zeros, sigmoid classes."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, s8, s16, s32):
        r = self.head(s8, s16, s32)
        p = torch.sigmoid(r[..., 5:])
        # person, bicycle, car in COCO columns 0-2, zeros up to column 79, then goods, garbage
        cls = torch.cat([F.pad(p[..., :3], (0, 77)), p[..., 3:]], 2)
        return torch.cat([r[..., :4], torch.sigmoid(r[..., 4:5]), cls], 2)


class WaterHead(nn.Module):
    """Stride-8 and stride-16 stems → water logit at stride 4."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(64, 32, 1)
        self.b = nn.Conv2d(64, 32, 1)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.pw = nn.Conv2d(32, 32, 1)
        self.out = nn.Conv2d(32, 1, 1)

    def forward(self, s8, s16):
        x = self.a(s8) + F.interpolate(self.b(s16), scale_factor=2.0, mode="bilinear", align_corners=False)
        x = F.silu(self.pw(F.silu(self.dw(F.silu(x)))))
        return F.interpolate(self.out(x), scale_factor=2.0, mode="bilinear", align_corners=False)


class WaterExport(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, s8, s16):
        return torch.sigmoid(self.head(s8, s16))


# ---------------------------------------------------------------- targets and losses

PTS, STR = (torch.from_numpy(a) for a in R.grids())
CENTRES = (PTS + 0.5) * STR[:, None]


def assign(boxes):
    """Positive anchors of one picture's boxes [M, 5] (cls, x1, y1, x2, y2): anchors whose centre
    lies inside the box and within 2.5 strides of its centre, on the strides that suit its size,
    plus the nearest anchor on the best stride. Returns (anchor idx, gt idx)."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    b = boxes[:, 1:]
    c = (b[:, :2] + b[:, 2:]) / 2
    size = (b[:, 2:] - b[:, :2]).max(1).values
    inside = ((CENTRES[:, None, :] > b[None, :, :2]) & (CENTRES[:, None, :] < b[None, :, 2:])).all(2)
    near = ((CENTRES[:, None, :] - c[None]).abs() < 2.5 * STR[:, None, None]).all(2)
    lo = torch.where(size <= 64, 0.0, torch.where(size <= 160, 16.0, 32.0))
    hi = torch.where(size <= 40, 8.0, torch.where(size <= 120, 16.0, 32.0))
    fits = (STR[:, None] >= torch.minimum(lo, hi)[None]) & (STR[:, None] <= torch.maximum(lo, hi)[None])
    fits |= (STR[:, None] == 8) & (size[None] <= 64)
    pos = inside & near & fits
    best = torch.where(size <= 48, 8.0, torch.where(size <= 128, 16.0, 32.0))
    d = ((CENTRES[:, None, :] - c[None]) ** 2).sum(2) + (STR[:, None] != best[None]) * 1e9
    pos[d.argmin(0), torch.arange(len(b))] = True
    # an anchor claimed by several boxes goes to the smallest
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cost = torch.where(pos, area[None].expand_as(pos), torch.full_like(pos, 1e12, dtype=torch.float32))
    gi = cost.argmin(1)
    ai = torch.nonzero(pos.any(1)).squeeze(1)
    return ai, gi[ai]


def decode_rows(r):
    cx = (r[..., 0] + PTS[:, 0]) * STR
    cy = (r[..., 1] + PTS[:, 1]) * STR
    w = torch.exp(r[..., 2].clamp(max=8)) * STR
    h = torch.exp(r[..., 3].clamp(max=8)) * STR
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def giou(p, t):
    ix1, iy1 = torch.max(p[:, 0], t[:, 0]), torch.max(p[:, 1], t[:, 1])
    ix2, iy2 = torch.min(p[:, 2], t[:, 2]), torch.min(p[:, 3], t[:, 3])
    inter = (ix2 - ix1).clamp(0) * (iy2 - iy1).clamp(0)
    ap = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    at = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = ap + at - inter + 1e-7
    iou = inter / union
    cw = torch.max(p[:, 2], t[:, 2]) - torch.min(p[:, 0], t[:, 0])
    ch = torch.max(p[:, 3], t[:, 3]) - torch.min(p[:, 1], t[:, 1])
    c = cw * ch + 1e-7
    return iou - (c - union) / c, iou


def urban_loss(rows, targets, assigned):
    """rows [B, 3549, 7]; targets: list of [M, 5] tensors; assigned: their `assign` results."""
    obj_t = torch.zeros(rows.shape[:2])
    l_box, l_cls, npos = 0.0, 0.0, 0
    boxes_all = decode_rows(rows)
    for i, (t, (ai, gi)) in enumerate(zip(targets, assigned)):
        if len(ai) == 0:
            continue
        g, iou = giou(boxes_all[i, ai], t[gi, 1:])
        l_box = l_box + (1 - g).sum()
        obj_t[i, ai] = iou.detach().clamp(0.3, 1.0)  # IoU-aware objectness, as YOLOX does
        cls_t = F.one_hot(t[gi, 0].long(), len(URBAN)).float()
        l_cls = l_cls + F.binary_cross_entropy_with_logits(rows[i, ai, 5:], cls_t, reduction="sum")
        npos += len(ai)
    l_obj = F.binary_cross_entropy_with_logits(rows[..., 4], obj_t, reduction="sum")
    n = max(npos, 1)
    return (5.0 * l_box + l_cls + l_obj) / n, npos


def water_loss(logit, mask, valid):
    p = torch.sigmoid(logit[:, 0])
    bce = (F.binary_cross_entropy_with_logits(logit[:, 0], mask, reduction="none") * valid).sum() / valid.sum()
    inter = (p * mask * valid).sum()
    dice = 1 - (2 * inter + 1) / ((p * valid).sum() + (mask * valid).sum() + 1)
    return bce + 0.5 * dice


# ---------------------------------------------------------------- evaluation

def nms_t(b, s, thr=0.45):
    order = s.argsort(descending=True)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i.item())
        if len(order) == 1:
            break
        _, iou = giou(b[i].expand(len(order) - 1, 4), b[order[1:]])
        order = order[1:][iou < thr]
    return keep


def detections(rows, thr=0.05):
    """Per picture: (boxes, scores, classes) after NMS, from urban rows (logits)."""
    out = []
    boxes = decode_rows(rows)
    obj = torch.sigmoid(rows[..., 4:5])
    cls = torch.sigmoid(rows[..., 5:])
    for i in range(len(rows)):
        sc, c = (obj[i] * cls[i]).max(1)
        k = sc >= thr
        b, sc, c = boxes[i][k], sc[k], c[k]
        keep = []
        for ci in range(len(URBAN)):
            idx = torch.nonzero(c == ci).squeeze(1)
            keep += idx[nms_t(b[idx], sc[idx])].tolist() if len(idx) else []
        out.append((b[keep], sc[keep], c[keep]))
    return out


def ap50(dets, targets, ci):
    scores, hits, n_gt = [], [], 0
    for (b, s, c), t in zip(dets, targets):
        gt = t[t[:, 0] == ci, 1:]
        n_gt += len(gt)
        k = c == ci
        b, s = b[k], s[k]
        used = torch.zeros(len(gt), dtype=torch.bool)
        for j in s.argsort(descending=True):
            scores.append(s[j].item())
            if len(gt) == 0:
                hits.append(0)
                continue
            _, iou = giou(b[j].expand(len(gt), 4), gt)
            iou[used] = -1
            m = iou.argmax()
            if iou[m] >= 0.5:
                used[m] = True
                hits.append(1)
            else:
                hits.append(0)
    if n_gt == 0:
        return float("nan")
    order = np.argsort(scores)[::-1]
    h = np.array(hits)[order]
    tp, fp = np.cumsum(h), np.cumsum(1 - h)
    rec, prec = tp / n_gt, tp / np.maximum(tp + fp, 1)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[1], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]).sum())


# ---------------------------------------------------------------- export

def onnx_of(module, inputs, out_name, opset):
    path = "/tmp/_hawkeye_part.onnx"
    names = [f"in{i}" for i in range(len(inputs))]  # torch refuses names like "1028"
    torch.onnx.export(module, inputs, path, input_names=names, output_names=[out_name], opset_version=opset,
                      do_constant_folding=True)
    return onnx.load(path)


def graft(base, part, prefix, inputs):
    """Adds `part`'s nodes and initialisers to `base`: the part's graph inputs become the base
    tensors named in `inputs`, its output keeps its name, everything else is prefixed."""
    to_base = {i.name: b for i, b in zip(part.graph.input, inputs)}
    outs = {o.name for o in part.graph.output}
    ren = lambda n: to_base.get(n, n if (n in outs or n == "") else prefix + n)
    for t in part.graph.initializer:
        t.name = ren(t.name)
        base.graph.initializer.append(t)
    for n in part.graph.node:
        n.name = prefix + n.name
        n.input[:] = [ren(x) for x in n.input]
        n.output[:] = [ren(x) for x in n.output]
        base.graph.node.append(n)


def export_detector(teacher_path, head, mids, path):
    base = onnx.load(teacher_path)
    opset = base.opset_import[0].version
    x = [torch.zeros(1, 64, 416 // s, 416 // s) for s in (8, 16, 32)]
    part = onnx_of(UrbanExport(head).eval(), tuple(x), "urban_rows", opset)
    graft(base, part, "urban/", mids)
    for n in base.graph.node:
        n.output[:] = ["coco_rows" if o == "output" else o for o in n.output]
    pads = numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 2], np.int64), "urban/coco_pads")
    base.graph.initializer.append(pads)
    base.graph.node.append(helper.make_node("Pad", ["coco_rows", "urban/coco_pads"], ["coco_rows87"], name="urban/pad"))
    base.graph.node.append(helper.make_node("Concat", ["coco_rows87", "urban_rows"], ["output"], axis=1, name="urban/join"))
    del base.graph.output[:]
    base.graph.output.append(helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 2 * N_ANCH, 87]))
    del base.graph.value_info[:]
    onnx.checker.check_model(base)
    onnx.save(base, path)


def export_water(teacher_path, head, path):
    full = onnx.load(teacher_path)
    opset = full.opset_import[0].version
    tmp = "/tmp/_hawkeye_trunk.onnx"
    onnx.utils.extract_model(teacher_path, tmp, ["images"], R.STEMS[:2])
    base = onnx.load(tmp)
    x = (torch.zeros(1, 64, 52, 52), torch.zeros(1, 64, 26, 26))
    part = onnx_of(WaterExport(head).eval(), x, "mask", opset)
    graft(base, part, "water/", R.STEMS[:2])
    del base.graph.output[:]
    base.graph.output.append(helper.make_tensor_value_info("mask", onnx.TensorProto.FLOAT, [1, 1, 104, 104]))
    onnx.checker.check_model(base)
    onnx.save(base, path)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


COCO_TOML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "yolox_nano.toml")


def coco_classes():
    import tomllib
    return tomllib.load(open(COCO_TOML, "rb"))["classes"]


def toml_list(xs):
    return "[\n" + "".join(f'  "{x}",\n' for x in xs) + "]"


def write_manifests(out, det_path, water_path):
    common = ('input_width = 416\ninput_height = 416\ncolor = "bgr"\nscale = 1.0\npad_value = 114\n'
              'letterbox = "top_left"\nlicense = "Apache-2.0"\n')
    with open(os.path.join(out, "hawkeye_urban.toml"), "w") as f:
        f.write("# hawkeye's street detector: the COCO YOLOX-nano (Megvii, Apache-2.0), frozen, plus an urban head\n"
                "# (goods, garbage) trained by models/train/ on objects composited onto real footage.\n"
                "# The urban head's 3549 rows follow the teacher's, hence the stride list twice.\n"
                f'name = "hawkeye_urban"\nlayout = "yolox"\n{common}strides = [8, 16, 32, 8, 16, 32]\n'
                f'sha256 = "{sha256(det_path)}"\nsource = "models/train/ (fine-tuned from YOLOX-nano, Megvii, Apache-2.0)"\n'
                f"classes = {toml_list(coco_classes() + [URBAN[i] for i in NEW])}\n")
    with open(os.path.join(out, "hawkeye_water.toml"), "w") as f:
        f.write("# hawkeye's water segmentation: the YOLOX-nano trunk (Megvii, Apache-2.0) up to its stride-8/16 head\n"
                "# stems, plus a small decoder trained by models/train/. Output [1, 1, 104, 104]: water probability\n"
                "# over the letterboxed input (stride 4).\n"
                f'name = "hawkeye_water"\nkind = "segmentation"\n{common}'
                f'sha256 = "{sha256(water_path)}"\nsource = "models/train/ (fine-tuned from YOLOX-nano, Megvii, Apache-2.0)"\n'
                'classes = ["water"]\n')


# ---------------------------------------------------------------- main

def check_detector(path, teacher_path, data, threads):
    """The exported detector's COCO rows equal the teacher's; its urban rows equal torch's."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    t = ort.InferenceSession(teacher_path, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).integers(0, 255, (1, 3, 416, 416)).astype(np.float32)
    a = s.run(None, {"images": x})[0]
    b = t.run(None, {"images": x})[0]
    coco_diff = float(np.abs(a[0, :N_ANCH, :85] - b[0]).max())
    timings = {}
    for name, sess in (("hawkeye_urban", s), ("yolox_nano", t)):
        for _ in range(5):
            sess.run(None, {"images": x})
        t0 = time.time()
        for _ in range(40):
            sess.run(None, {"images": x})
        timings[name] = (time.time() - t0) / 40 * 1000
    return coco_diff, timings


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True, help="folder written by prepare.py")
    ap.add_argument("--teacher", default="../shared/models/yolox_nano.onnx")
    ap.add_argument("--out", default="models")
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snapshots", help="export the models after every epoch into this folder")
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop after this many epochs (the learning-rate schedule stays that of --epochs)")
    a = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    parts = [np.load(os.path.join(a.cache, f)) for f in ("data.npz", "data_syn.npz") if os.path.exists(os.path.join(a.cache, f))]
    targets, src = [], []
    for k, d in enumerate(parts):
        offs = np.concatenate([[0], np.cumsum(d["nbox"])])
        allb = torch.from_numpy(d["boxes"].astype(np.float32))
        if k == 0:  # composites: classes 0, 1 are goods, garbage
            allb[:, 0] += URBAN.index("goods")
        targets += [allb[offs[i]:offs[i + 1]] for i in range(len(d["nbox"]))]
        src += d["src"].tolist()
    src = np.array(src)
    n = len(targets)
    s8, s16, s32 = (torch.from_numpy(np.concatenate([d[key] for d in parts])) for key in ("s8", "s16", "s32"))
    masks = torch.from_numpy(np.concatenate([d["masks"] for d in parts]))
    valid = torch.from_numpy(np.concatenate([d["valid"] for d in parts]))
    law = parts[0]["law"].tolist()
    del parts
    tw = teacher_tower_weights(onnx.load(a.teacher))
    # the frozen part of the teacher's reg tower runs once per picture, here
    frozen = Frozen(tw)
    m8, m16, m32 = (torch.zeros(x.shape, dtype=torch.float16) for x in (s8, s16, s32))
    with torch.no_grad():
        for k in tqdm(range(0, n, 128), desc="branch features", mininterval=5):
            out = frozen([x[k:k + 128].float() for x in (s8, s16, s32)])
            for dst, o in zip((m8, m16, m32), out):
                dst[k:k + 128] = o.half()
    # distillation targets: the teacher's confident persons, bicycles and cars on real pictures
    th = TeacherHead(tw)
    n_distil = 0
    with torch.no_grad():
        for k in tqdm(range(0, n, 128), desc="teacher boxes", mininterval=5):
            rows = th([x[k:k + 128].float() for x in (s8, s16, s32)]).numpy()
            for j, b in enumerate(R.decode(rows, [0, 1, 2], 0.5)):
                if src[k + j] != "synth" and len(b):
                    tb = torch.from_numpy(np.concatenate([b[:, 5:6], b[:, :4]], 1).astype(np.float32))
                    targets[k + j] = torch.cat([targets[k + j], tb])
                    n_distil += len(b)
    print(f"{n} pictures ({(src == 'synth').sum()} rendered), {n_distil} teacher boxes as targets")
    assigned = [assign(t) for t in targets]
    val = np.arange(n) % 10 == 9
    tr_idx, va_idx = np.nonzero(~val)[0], np.nonzero(val)[0]
    head = UrbanHead(tw)
    water = WaterHead()
    opt = torch.optim.AdamW(list(head.parameters()) + list(water.parameters()), lr=a.lr, weight_decay=1e-4)
    steps = a.epochs * (len(tr_idx) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(a.seed)
    bar = tqdm(total=steps, desc="train", mininterval=5)
    hist = []
    for ep in range(a.epochs):
        if a.stop_after and ep >= a.stop_after:
            break
        perm = rng.permutation(tr_idx)
        for k in range(len(tr_idx) // a.batch):
            idx = torch.from_numpy(perm[k * a.batch:(k + 1) * a.batch])
            il = idx.tolist()
            rows = head(m8[idx].float(), m16[idx].float(), m32[idx].float())
            lu, npos = urban_loss(rows, [targets[i] for i in il], [assigned[i] for i in il])
            lw = water_loss(water(s8[idx].float(), s16[idx].float()), masks[idx].float(), valid[idx].float())
            loss = lu + 2.0 * lw
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            hist.append((lu.item(), lw.item()))
            bar.update(1)
            if len(hist) % 20 == 0:
                m = np.mean(hist[-20:], 0)
                bar.set_postfix(urban=f"{m[0]:.3f}", water=f"{m[1]:.3f}")
        if a.snapshots:  # a usable model after every epoch, for whoever waits on one
            snap = os.path.join(a.snapshots, f"epoch{ep + 1}")
            os.makedirs(snap, exist_ok=True)
            export_detector(a.teacher, head.eval(), [w["mid"] for w in tw], os.path.join(snap, "hawkeye_urban.onnx"))
            export_water(a.teacher, water.eval(), os.path.join(snap, "hawkeye_water.onnx"))
            write_manifests(snap, os.path.join(snap, "hawkeye_urban.onnx"), os.path.join(snap, "hawkeye_water.onnx"))
            head.train()
            water.train()
    bar.close()
    train_min = (time.time() - t_start) / 60
    # held-out composites: AP of the urban classes, false urban boxes on pictures with none,
    # water IoU
    head.eval()
    water.eval()
    dets, ious, fp_neg, n_neg = [], [], 0, 0
    with torch.no_grad():
        for k in range(0, len(va_idx), 64):
            idx = torch.from_numpy(va_idx[k:k + 64])
            dd = detections(head(m8[idx].float(), m16[idx].float(), m32[idx].float()))
            dets += dd
            p = torch.sigmoid(water(s8[idx].float(), s16[idx].float())[:, 0]) > 0.5
            m = masks[idx].float() > 0.5
            v = valid[idx] > 0
            for j in range(len(idx)):
                if m[j].any():
                    inter = (p[j] & m[j] & v[j]).sum().item()
                    union = ((p[j] | m[j]) & v[j]).sum().item()
                    ious.append(inter / max(union, 1))
                t = targets[idx[j]]
                if src[idx[j]] != "synth" and not any(int(c) in NEW for c in t[:, 0]):
                    n_neg += 1
                    fp_neg += int(((dd[j][1] >= 0.4) & (dd[j][2] >= NEW[0])).sum())
    vt = [targets[i] for i in va_idx]
    real = np.array([src[i] != "synth" for i in va_idx])
    pick = lambda xs, m: [x for x, k in zip(xs, m) if k]
    aps = {f"{c} ({kind})": ap50(pick(dets, m), pick(vt, m), i)
           for kind, m in (("real composites", real), ("rendered", ~real)) for i, c in enumerate(URBAN)}
    os.makedirs(a.out, exist_ok=True)
    det_path = os.path.join(a.out, "hawkeye_urban.onnx")
    water_path = os.path.join(a.out, "hawkeye_water.onnx")
    export_detector(a.teacher, head, [w["mid"] for w in tw], det_path)
    export_water(a.teacher, water, water_path)
    write_manifests(a.out, det_path, water_path)
    coco_diff, timings = check_detector(det_path, a.teacher, d, a.threads)
    run = {
        "seed": a.seed, "threads": a.threads, "epochs": a.epochs, "stopped_after_epoch": a.stop_after or a.epochs,
        "batch": a.batch, "lr": a.lr,
        "steps": steps, "train_minutes": round(train_min, 2),
        "total_minutes": round((time.time() - t_start) / 60, 2),
        "final_loss": {"urban": round(float(np.mean([h[0] for h in hist[-50:]])), 4),
                       "water": round(float(np.mean([h[1] for h in hist[-50:]])), 4)},
        "data": {"pictures": int(n), "train": int(len(tr_idx)), "val": int(len(va_idx)),
                 "objects": int(sum(len(t) for t in targets)), "sources": {s: int((src == s).sum()) for s in set(src.tolist())},
                 "vtest_person_height": f"{law[0]:.4f}*y + {law[1]:.2f} px ({int(law[2])} teacher persons)"},
        "val_composites": {"ap50": {k: (None if np.isnan(v) else round(v, 4)) for k, v in aps.items()},
                           "note": "person/bicycle/car targets on real composites are the teacher's own boxes",
                           "goods_garbage_boxes_per_real_picture_without_them_at_0.4": round(fp_neg / max(n_neg, 1), 4),
                           "negative_pictures": n_neg,
                           "water_iou": round(float(np.mean(ious)), 4) if ious else None,
                           "water_pictures": len(ious)},
        "coco_rows_max_abs_diff_vs_teacher": coco_diff,
        "inference_ms_2_threads": {k: round(v, 2) for k, v in timings.items()},
        "onnx": {"hawkeye_urban": sha256(det_path), "hawkeye_water": sha256(water_path)},
    }
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "last_run.json"), "w") as f:
        json.dump(run, f, indent=2)
    print(json.dumps(run, indent=2))


if __name__ == "__main__":
    main()
