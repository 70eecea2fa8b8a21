"""Static int8 (QDQ) quantisation of hawkeye_urban.onnx with ONNX Runtime's own tools.

Calibration uses the TRAINING share of the real footage only (vtest.avi frames 0–399, tree.avi
0–33, the opencv-doc stills; see realdata.TRAIN_SPANS) plus pictures rendered by
`hawkeye synth --dataset N`, every one letterboxed as hawkeye does (top-left, pad 114, BGR,
0–255, 416×416). The held-out frames (vtest.avi 400–794) are used only by `--check`, which
compares the int8 model's detections with the fp32 model's, so a choice of calibration method
or of excluded nodes can be made by measurement:

    hawkeye synth --dataset 200 --seed 31 --out /tmp/quant-syn
    python quantize.py --synthetic /tmp/quant-syn --check --manifest             # stem in float
    python quantize.py --synthetic /tmp/quant-syn --float-head --check --manifest  # head too

The real figures (hawkeye eval on both suites, the teacher check, hawkeye bench) are in
models/README.md, section "int8", and in last_quant.json. As measured there, neither variant
pays on the 2-core reference box, so no int8 model is committed.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
import time

import cv2
import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from tqdm import tqdm

import realdata

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, ".."))
METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}
# Frames per calibration pass: histogram calibrators keep every activation of a pass in memory.
STRIDE = 20


def calibration_pictures(synthetic, every_vtest, n_synthetic):
    """Letterboxed BGR pictures [416, 416, 3] uint8: training footage and rendered pictures."""
    real = realdata.training_frames()
    pics = [realdata.letterbox(f)[0] for f in real["vtest"][::every_vtest]]
    pics += [realdata.letterbox(f)[0] for f in real["tree"][::2]]
    pics += [realdata.letterbox(f)[0] for f in real["stills"]]
    n_real = len(pics)
    files = sorted(glob.glob(os.path.join(synthetic, "images", "*", "*.jpg")))
    if synthetic and not files:
        sys.exit(f"no rendered pictures under {synthetic}/images/*/ (run `hawkeye synth --dataset N --out {synthetic}`)")
    step = max(1, len(files) // max(1, n_synthetic))
    pics += [realdata.letterbox(cv2.imread(p))[0] for p in files[::step][:n_synthetic]]
    # a multiple of the calibration stride (ORT requires it)
    keep = len(pics) - len(pics) % STRIDE
    return pics[:keep], n_real, len(pics) - n_real


def to_input(pic):
    """hawkeye's tensor: NCHW float32, BGR, 0–255 (scale 1.0)."""
    return np.ascontiguousarray(pic.transpose(2, 0, 1)[None].astype(np.float32))


class Reader(CalibrationDataReader):
    """Feeds the pictures in ranges (ORT's strided calibration), with a progress bar."""

    def __init__(self, pics):
        self.pics = pics
        self.bar = tqdm(total=len(pics), desc="calibrating", unit="pic", mininterval=2)
        self.set_range(0, len(pics))

    def __len__(self):
        return len(self.pics)

    def set_range(self, start_index, end_index):
        self.it = iter(range(start_index, end_index))

    def get_next(self):
        i = next(self.it, None)
        if i is None:
            return None
        self.bar.update(1)
        return {"images": to_input(self.pics[i])}


def consumers(model):
    out = {}
    for n in model.graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    return out


def excluded_nodes(model, which):
    """Names of nodes left in float.

    `decode`: everything after the head's prediction convolutions (the sigmoids of objectness and
    class scores, the reshapes, transposes, pads and concats that build the [1, 7098, 87] rows):
    quantising the assembled output to one scale for boxes (log-space w/h, offsets) and scores
    would cost resolution where the scores are read. `head`: the prediction convolutions too.
    `none`: whatever the quantiser takes."""
    if which == "none":
        return []
    cons = consumers(model)
    # a prediction conv is a Conv not followed by SiLU (x * sigmoid(x)); every trunk conv is
    preds = []
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        nxt = {c.op_type for c in cons.get(n.output[0], [])}
        if not ({"Sigmoid", "Mul"} <= nxt):
            preds.append(n)
    # descendants of the prediction convs
    seen, todo = set(), [o for p in preds for o in p.output]
    decode = []
    while todo:
        t = todo.pop()
        for c in cons.get(t, []):
            if c.name not in seen:
                seen.add(c.name)
                decode.append(c.name)
                todo.extend(c.output)
    names = decode + ([p.name for p in preds] if which == "head" else [])
    return names


def head_nodes(model):
    """The detection head from its three stems (realdata.STEMS, the 1×1 convolutions on the
    PAN's outputs) on: the COCO towers and predictions and the urban head that branches off
    them. The urban scores (goods, garbage) are read off a feature after two of these layers;
    measured one group of ten convolutions at a time, the stride-8 towers and the urban head
    are what int8 costs goods and garbage most, after the stem."""
    producer = {o: n for n in model.graph.node for o in n.output}
    cons = consumers(model)
    out, todo = set(), []
    for stem in realdata.STEMS:
        mul = producer[stem]
        out.add(mul.name)
        for t in mul.input:
            p = producer.get(t)
            if p is not None and p.op_type in ("Conv", "Sigmoid"):
                out.add(p.name)
        todo.append(stem)
    while todo:
        t = todo.pop()
        for c in cons.get(t, []):
            if c.name not in out:
                out.add(c.name)
                todo.extend(c.output)
    return sorted(out)


def first_convs(model, n):
    """The first `n` convolutions in graph order with the SiLU after each: the stem at 208×208,
    whose output spans ±140 on real pictures (measured: quantising either of the first two
    convolutions alone costs as much accuracy as quantising the whole model)."""
    cons = consumers(model)
    out = []
    for node in [x for x in model.graph.node if x.op_type == "Conv"][:n]:
        out.append(node.name)
        sig = [c for c in cons.get(node.output[0], []) if c.op_type == "Sigmoid"]
        out += [c.name for c in cons.get(node.output[0], []) if c.op_type in ("Sigmoid", "Mul")]
        for g in sig:
            out += [c.name for c in cons.get(g.output[0], []) if c.op_type == "Mul"]
    return sorted(set(out))


def silu_inputs(model):
    """Conv outputs that feed a SiLU (x * sigmoid(x)): every trunk and head-stem convolution."""
    cons = consumers(model)
    out = []
    for n in model.graph.node:
        if n.op_type == "Conv" and {"Sigmoid", "Mul"} <= {c.op_type for c in cons.get(n.output[0], [])}:
            out.append(n.output[0])
    return out


def clipped_ranges(cache, out, tensors, floor):
    """A copy of ORT's calibration cache with the ranges of `tensors` raised to at least `floor`.

    A SiLU maps everything below about -6 to almost 0 (silu(-6) = -0.015), but the calibrated
    range of a convolution's output reaches -140 on the first layer: eight bits spread over
    [-140, 135] leave a step of 1.1, which wipes out the region around 0 where SiLU bends.
    Clipping the negative side to `floor` keeps the step where the values matter."""
    d = json.load(open(cache))
    clipped = 0
    for t in tensors:
        r = d["data"].get(t)
        if r and r["lowest"]["data"][0] < floor:
            r["lowest"]["data"] = [float(floor)]
            clipped += 1
    json.dump(d, open(out, "w"))
    return clipped


def session(path, threads=2):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def boxes(rows, thr):
    """hawkeye's decode of [7098, 87] rows → (x1, y1, x2, y2, score, class) after per-class NMS."""
    pts, st = realdata.grids()
    pts, st = np.concatenate([pts, pts]), np.concatenate([st, st])
    obj = rows[:, 4]
    cls = rows[:, 5:]
    best = cls.argmax(1)
    score = obj * cls[np.arange(len(cls)), best]
    k = score >= thr
    cx, cy = (rows[k, 0] + pts[k, 0]) * st[k], (rows[k, 1] + pts[k, 1]) * st[k]
    w, h = np.exp(rows[k, 2]) * st[k], np.exp(rows[k, 3]) * st[k]
    b = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score[k], best[k]], 1)
    return realdata.nms(b, 0.45) if len(b) else b


def iou(a, b):
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter + 1e-9)


def agreement(ref, got, classes, ref_thr=0.5, got_thr=0.3):
    """Share of the reference's boxes (score ≥ ref_thr, given classes) that `got` finds with the
    same class at IoU ≥ 0.5 and score ≥ got_thr; and `got`'s boxes the reference lacks."""
    found = total = extra = 0
    for r, g in zip(ref, got):
        r = r[(r[:, 4] >= ref_thr) & np.isin(r[:, 5], classes)] if len(r) else r
        g = g[(g[:, 4] >= got_thr) & np.isin(g[:, 5], classes)] if len(g) else g
        total += len(r)
        for box in r:
            same = g[g[:, 5] == box[5]] if len(g) else g
            found += bool(len(same) and iou(box, same).max() >= 0.5)
        rr = r if len(r) else np.zeros((0, 6))
        for box in g[g[:, 4] >= ref_thr] if len(g) else []:
            same = rr[rr[:, 5] == box[5]]
            extra += not (len(same) and iou(box, same).max() >= 0.5)
    return {"reference": total, "found": found, "share": found / total if total else None, "extra": extra}


def check(fp32, int8, synthetic):
    """int8 against fp32 on held-out real frames (vtest 400–794, every 10th) and on rendered
    pictures: persons and cars, goods and garbage, and the largest score difference."""
    frames = realdata.decode_video("vtest")[400:795:10]
    files = sorted(glob.glob(os.path.join(synthetic, "images", "val", "*.jpg")))[:120] if synthetic else []
    pics = [realdata.letterbox(f)[0] for f in frames] + [realdata.letterbox(cv2.imread(p))[0] for p in files]
    a, b = session(fp32), session(int8)
    ref, got, worst = [], [], 0.0
    for p in tqdm(pics, desc="checking", unit="pic", mininterval=2):
        x = to_input(p)
        ra, rb = a.run(None, {"images": x})[0][0], b.run(None, {"images": x})[0][0]
        sa, sb = ra[:, 4:5] * ra[:, 5:], rb[:, 4:5] * rb[:, 5:]
        worst = max(worst, float(np.abs(sa - sb).max()))
        ref.append(boxes(ra, 0.3))
        got.append(boxes(rb, 0.1))
    n = len(frames)
    return {
        "real_persons": agreement(ref[:n], got[:n], [0]),
        "real_cars": agreement(ref[:n], got[:n], [2, 5, 7]),
        "real_urban_fp32": int(sum(((r[:, 5] >= 80) & (r[:, 4] >= 0.4)).sum() for r in ref[:n] if len(r))),
        "real_urban_int8": int(sum(((g[:, 5] >= 80) & (g[:, 4] >= 0.4)).sum() for g in got[:n] if len(g))),
        "rendered_goods_garbage": agreement(ref[n:], got[n:], [80, 81], ref_thr=0.4),
        "rendered_person_bicycle_car": agreement(ref[n:], got[n:], [0, 1, 2]),
        "max_score_difference": worst,
    }


def timing(path, pics, runs=60):
    s = session(path)
    x = to_input(pics[0])
    for _ in range(5):
        s.run(None, {"images": x})
    t = time.perf_counter()
    for _ in range(runs):
        s.run(None, {"images": x})
    return (time.perf_counter() - t) / runs * 1000


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def flags(args):
    """The options that shape the model, as given on the command line (for the manifest)."""
    out = ""
    if args.method != "minmax":
        out += f" --method {args.method}"
    if args.exclude != "decode":
        out += f" --exclude {args.exclude}"
    if args.float_convs != 2:
        out += f" --float-convs {args.float_convs}"
    for on, name in [(args.float_head, "--float-head"), (args.float_urban, "--float-urban"), (args.no_per_channel, "--no-per-channel")]:
        out += f" {name}" if on else ""
    if args.silu_floor is not None:
        out += f" --silu-floor {args.silu_floor}"
    return out


def manifest(fp32_toml, int8_path, args, n_real, n_syn):
    """The fp32 manifest with this model's name, sha256 and a header on how it was made."""
    lines = open(fp32_toml).read().splitlines()
    body = [l for l in lines if not l.startswith("#")]
    out = []
    for l in body:
        if l.startswith("name ="):
            l = 'name = "hawkeye_urban_int8"'
        elif l.startswith("sha256 ="):
            l = f'sha256 = "{sha256(int8_path)}"'
        elif l.startswith("source ="):
            l = 'source = "models/train/quantize.py (static int8 QDQ of hawkeye_urban.onnx)"'
        out.append(l)
    method = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}[args.method]
    head = f"""# hawkeye_urban.onnx quantised to int8 (QDQ: int8 weights per output channel, uint8 activations)
# by models/train/quantize.py with ONNX Runtime's quantize_static, after quant_pre_process.
# Calibration: {method} over {n_real} real pictures of the TRAINING share only (vtest.avi 0-399 every
# {args.every_vtest}th, tree.avi 0-33, the opencv-doc stills) and {n_syn} pictures of `{args.synthetic_made_by}`,
# letterboxed as hawkeye does. Left in float: {args.exclude_doc}.
#   {args.synthetic_made_by} --out /tmp/quant-syn
#   cd models/train && python quantize.py --synthetic /tmp/quant-syn{flags(args)} --out ../hawkeye_urban_int8.onnx --manifest
# Same input, layout, strides and classes as hawkeye_urban.toml; figures: models/README.md (int8).""".split("\n")
    return "\n".join(head + out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(MODELS, "hawkeye_urban.onnx"))
    ap.add_argument("--out", default="/tmp/hawkeye_urban_int8.onnx")
    ap.add_argument("--synthetic", default="", help="output of `hawkeye synth --dataset N` (images/*/*.jpg)")
    ap.add_argument("--n-synthetic", type=int, default=100)
    ap.add_argument("--synthetic-made-by", default="hawkeye synth --dataset 200 --seed 31", help="for the manifest's header")
    ap.add_argument("--every-vtest", type=int, default=4, help="every N-th of vtest.avi frames 0-399")
    ap.add_argument("--method", choices=sorted(METHODS), default="minmax")
    ap.add_argument("--percentile", type=float, default=99.999)
    ap.add_argument("--exclude", choices=["none", "decode", "head"], default="decode")
    ap.add_argument("--no-per-channel", action="store_true")
    ap.add_argument("--float-urban", action="store_true", help="leave the urban head in float")
    ap.add_argument("--float-head", action="store_true", help="leave the whole head (COCO and urban) in float")
    ap.add_argument("--float-convs", type=int, default=2, help="leave the first N convolutions (and their SiLU) in float")
    ap.add_argument("--silu-floor", type=float, default=None, help="clip SiLU inputs' calibrated ranges below at this (e.g. -6)")
    ap.add_argument("--cache", default="/tmp/hawkeye-quant-cache", help="calibration ranges per method (reused)")
    ap.add_argument("--check", action="store_true", help="compare with fp32 on held-out frames and time both")
    ap.add_argument("--check-rendered", default="", help="rendered pictures for --check (images/val/*.jpg; default --synthetic)")
    ap.add_argument("--manifest", action="store_true", help="write the .toml manifest beside --out")
    ap.add_argument("--figures", default="", help="append this run's settings and check to a JSON file")
    args = ap.parse_args()

    os.makedirs(args.cache, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    pre = os.path.join(args.cache, "urban_pre.onnx")
    if not os.path.exists(pre) or os.path.getmtime(pre) < os.path.getmtime(args.model):
        # per-channel DequantizeLinear (its `axis`) needs opset 13; the exported model is opset 11
        m = onnx.load(args.model)
        if m.opset_import[0].version < 13:
            m = onnx.version_converter.convert_version(m, 13)
        up = os.path.join(args.cache, "urban_opset13.onnx")
        onnx.save(m, up)
        print("quant_pre_process (shape inference, graph optimisation) …", flush=True)
        quant_pre_process(up, pre, skip_symbolic_shape=True)
    model = onnx.load(pre)
    tail = excluded_nodes(model, args.exclude)
    exclude = tail + first_convs(model, args.float_convs)
    if args.float_head:
        exclude += [n for n in head_nodes(model) if n not in exclude]
    if args.float_urban:
        # the urban head (goods, garbage and its own person/bicycle/car rows): a small share of
        # the work, but its scores are the ones hawkeye's stall and dumping rules read
        exclude += [n.name for n in model.graph.node if n.name.startswith("urban/") and n.name not in exclude]
    args.exclude_doc = {"none": "nothing", "decode": f"the {len(tail)} output-assembly nodes after the head's predictions",
                        "head": f"the head's prediction convs and the output assembly ({len(tail)} nodes)"}[args.exclude]
    if args.float_head:
        args.exclude_doc = "the whole head from its three stems on (COCO towers and predictions, the urban head), " + args.exclude_doc
    elif args.float_urban:
        args.exclude_doc = "the urban head's 15 convolutions (goods, garbage and its own rows), " + args.exclude_doc
    if args.float_convs:
        args.exclude_doc = (f"the first {args.float_convs} convolutions with their SiLU (the stem, at 208x208)\n# and "
                            + args.exclude_doc)
    print(f"{len(model.graph.node)} nodes, {len(exclude)} left in float ({args.exclude})", flush=True)

    pics, n_real, n_syn = calibration_pictures(args.synthetic, args.every_vtest, args.n_synthetic)
    print(f"calibration: {n_real} real (training share), {n_syn} rendered", flush=True)
    cache = os.path.join(args.cache, f"ranges_{args.method}_{len(pics)}_{args.every_vtest}.json")
    extra = {"CalibStridedMinMax": STRIDE}
    if args.method == "percentile":
        extra["CalibPercentile"] = args.percentile
    t = time.time()
    if not os.path.exists(cache):
        # calibrate once per method and picture set; the ranges are reused by later runs
        quantize_static(pre, args.out, Reader(pics), quant_format=QuantFormat.QDQ, calibrate_method=METHODS[args.method],
                        calibration_cache_path=cache, extra_options=extra)
    ranges = cache
    if args.silu_floor is not None:
        ranges = os.path.join(args.cache, f"clipped_{os.path.basename(cache)}")
        n = clipped_ranges(cache, ranges, silu_inputs(model), args.silu_floor)
        print(f"{n} SiLU inputs' ranges clipped below at {args.silu_floor}", flush=True)
    quantize_static(pre, args.out, None, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=not args.no_per_channel, calibrate_method=METHODS[args.method],
                    nodes_to_exclude=exclude, calibration_cache_path=ranges, extra_options=extra)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB) in {time.time() - t:.0f} s", flush=True)

    run = {"method": args.method, "exclude": args.exclude, "excluded_nodes": len(exclude),
           "per_channel": not args.no_per_channel, "silu_floor": args.silu_floor,
           "float_convs": args.float_convs, "float_urban": args.float_urban, "float_head": args.float_head, "calibration_real": n_real, "calibration_rendered": n_syn,
           "sha256": sha256(args.out)}
    if args.method == "percentile":
        run["percentile"] = args.percentile
    if args.check:
        run["check"] = check(args.model, args.out, args.check_rendered or args.synthetic)
        run["python_ms"] = {"fp32": timing(args.model, pics), "int8": timing(args.out, pics)}
        print(json.dumps(run, indent=1), flush=True)
    if args.manifest:
        toml = os.path.splitext(args.out)[0] + ".toml"
        open(toml, "w").write(manifest(os.path.splitext(args.model)[0] + ".toml", args.out, args, n_real, n_syn))
        print(f"wrote {toml}")
    if args.figures:
        runs = json.load(open(args.figures)) if os.path.exists(args.figures) else []
        runs.append(run)
        json.dump(runs, open(args.figures, "w"), indent=1)


if __name__ == "__main__":
    main()
