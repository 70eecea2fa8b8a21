"""Real footage for training hawkeye_urban: frames, the teacher's trunk, and the scene geometry.

Only the *training* share of the real footage is read here (see TRAIN_SPANS); the evaluation
suite uses the rest (README: "Which footage trains, which evaluates").
"""
import glob
import os
import subprocess

import cv2
import numpy as np
import onnx
import onnxruntime as ort

DATA = "/usr/share/doc/opencv-doc/examples/data"
# Frame index spans used for training; the suite renders on the frames after these.
TRAIN_SPANS = {"vtest": (0, 399), "tree": (0, 33)}
# Still pictures from Debian's opencv-doc used as backgrounds (hard negatives and composites).
STILLS = ["building.jpg", "home.jpg", "aero1.jpg", "aero3.jpg", "left.jpg", "right.jpg",
          "leuvenA.jpg", "leuvenB.jpg", "graf1.jpg", "box_in_scene.png", "stuff.jpg",
          "basketball1.png", "messi5.jpg", "fruits.jpg", "orange.jpg", "apple.jpg",
          "ela_original.jpg", "board.jpg", "starry_night.jpg", "lena.jpg", "baboon.jpg",
          "licenseplate_motion.jpg", "squirrel_cls.jpg", "butterfly.jpg", "HappyFish.jpg",
          "blox.jpg", "left01.jpg", "right01.jpg", "rubberwhale1.png", "pic1.png", "pic3.png"]

INPUT = 416
STEMS = ["1028", "1070", "1112"]  # the teacher head's stem outputs, strides 8, 16, 32 (64 ch)


def decode_video(name, cache="/tmp/hawkeye-frames"):
    """All decodable frames of a Debian sample video (BGR), via GStreamer (OpenCV's wheel
    reads tree.avi only partly)."""
    out = os.path.join(cache, name)
    if not os.path.isdir(out) or not os.listdir(out):
        os.makedirs(out, exist_ok=True)
        subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={DATA}/{name}.avi", "!",
                        "decodebin", "!", "videoconvert", "!", "pngenc", "compression-level=1",
                        "!", "multifilesink", f"location={out}/%05d.png"], check=True)
    return [cv2.imread(p) for p in sorted(glob.glob(f"{out}/*.png"))]


def training_frames():
    """{source: [BGR frames]} of the training share only."""
    out = {}
    for name, (a, b) in TRAIN_SPANS.items():
        frames = decode_video(name)
        out[name] = frames[a:b + 1]
    stills = []
    for f in STILLS:
        p = os.path.join(DATA, f)
        if os.path.exists(p):
            im = cv2.imread(p)
            if im is not None and im.shape[0] >= 200 and im.shape[1] >= 200:
                stills.append(im)
    out["stills"] = stills
    return out


def letterbox(bgr):
    """hawkeye's letterbox: keep aspect, top-left, pad 114; returns (416×416 BGR uint8, scale)."""
    h, w = bgr.shape[:2]
    r = min(INPUT / w, INPUT / h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    out = np.full((INPUT, INPUT, 3), 114, np.uint8)
    out[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, r


class Teacher:
    """The COCO YOLOX-nano, run with its detections and the head's stem features as outputs."""

    def __init__(self, path, threads=2):
        m = onnx.load(path)
        have = {o.name for o in m.graph.output}
        for name in STEMS:
            if name not in have:
                m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def run(self, batch_u8):
        """batch_u8: [N, 416, 416, 3] BGR → (detections [N, 3549, 85], stems [3 × [N, 64, H, W]])."""
        x = np.ascontiguousarray(batch_u8.transpose(0, 3, 1, 2).astype(np.float32))
        outs = []
        for i in range(len(x)):
            outs.append(self.sess.run(["output"] + STEMS, {"images": x[i:i + 1]}))
        det = np.concatenate([o[0] for o in outs])
        stems = [np.concatenate([o[k + 1] for o in outs]) for k in range(3)]
        return det, stems


def grids():
    """Anchor grid points and strides in the teacher's output order."""
    pts, strides = [], []
    for s in (8, 16, 32):
        n = INPUT // s
        gy, gx = np.mgrid[0:n, 0:n]
        pts.append(np.stack([gx.ravel(), gy.ravel()], 1))
        strides.append(np.full(n * n, s))
    return np.concatenate(pts).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode(det, cls_ids, thr):
    """Teacher boxes (x1, y1, x2, y2, score, class) of the given classes in letterbox pixels."""
    pts, st = grids()
    out = []
    for row in det:
        obj = row[:, 4]
        cls = row[:, 5:]
        best = cls.argmax(1)
        score = obj * cls[np.arange(len(cls)), best]
        keep = (score >= thr) & np.isin(best, cls_ids)
        cx = (row[keep, 0] + pts[keep, 0]) * st[keep]
        cy = (row[keep, 1] + pts[keep, 1]) * st[keep]
        w = np.exp(row[keep, 2]) * st[keep]
        h = np.exp(row[keep, 3]) * st[keep]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score[keep], best[keep]], 1)
        out.append(nms(boxes, 0.45))
    return out


def nms(b, thr):
    order = b[:, 4].argsort()[::-1]
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(b[i, 0], b[rest, 0]); yy1 = np.maximum(b[i, 1], b[rest, 1])
        xx2 = np.minimum(b[i, 2], b[rest, 2]); yy2 = np.minimum(b[i, 3], b[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda k: (b[k, 2] - b[k, 0]) * (b[k, 3] - b[k, 1])
        iou = inter / (area(i) + area(rest) - inter + 1e-9)
        order = rest[(iou < thr) | (b[rest, 5] != b[i, 5])]
    return b[keep]


def person_height_law(teacher, frames):
    """Least-squares fit of a standing person's height (px) against the y of their feet (px), on
    the teacher's confident persons: the scene's ground-plane scale, used to size composites."""
    ys, hs = [], []
    for f in frames[::10]:
        lb, r = letterbox(f)
        det, _ = teacher.run(lb[None])
        for x1, y1, x2, y2, s, c in decode(det, [0], 0.6)[0]:
            if y2 / r < f.shape[0] - 3:  # whole person visible
                ys.append(y2 / r)
                hs.append((y2 - y1) / r)
    a, b = np.polyfit(np.array(ys), np.array(hs), 1)
    return float(a), float(b), len(ys), float(min(ys)), float(max(ys))
