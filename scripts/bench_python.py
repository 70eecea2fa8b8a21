#!/usr/bin/env python3
"""The baseline hawkeye's speed is compared against: the plain loop an integrator writes first.

OpenCV VideoCapture -> letterbox -> onnxruntime -> YOLOX decode -> NMS, in Python. `hawkeye bench`
runs this script in the same command as its own measurements and parses the last line of its
output (one JSON object), so every ratio it prints is measured side by side.

Modes:
  infer     the same frame through letterbox + session + decode + NMS, again and again
  pipeline  every frame of the clip decoded and detected, as fast as possible
  capacity  N cameras, each a thread reading its own VideoCapture of the clip at the clip's own
            frame rate (looping), detecting at --detect-fps; prints per-camera detections/s
Written for hawkeye's bench only; settings follow onnxruntime's defaults except the thread count.
"""
import argparse
import json
import sys
import threading
import time

import cv2
import numpy as np
import onnxruntime as ort


def letterbox(bgr, size, pad=114):
    """Top-left letterbox to size x size, BGR, float32 NCHW in 0..255 (YOLOX's input)."""
    h, w = bgr.shape[:2]
    r = min(size / h, size / w)
    nh, nw = int(round(h * r)), int(round(w * r))
    out = np.full((size, size, 3), pad, np.uint8)
    out[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out.transpose(2, 0, 1)[None].astype(np.float32), r


class Yolox:
    def __init__(self, path, threads, strides):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        inp = self.sess.get_inputs()[0]
        self.name = inp.name
        self.size = int(inp.shape[2])
        grids, mults = [], []
        for s in strides:
            n = self.size // s
            ys, xs = np.mgrid[0:n, 0:n]
            grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
            mults.append(np.full((n * n, 1), s))
        self.grid = np.concatenate(grids).astype(np.float32)
        self.stride = np.concatenate(mults).astype(np.float32)

    def detect(self, bgr, thr=0.3, iou=0.45):
        x, r = letterbox(bgr, self.size)
        out = self.sess.run(None, {self.name: x})[0][0]
        xy = (out[:, :2] + self.grid[: len(out)]) * self.stride[: len(out)]
        wh = np.exp(out[:, 2:4]) * self.stride[: len(out)]
        scores = out[:, 4:5] * out[:, 5:]
        cls = scores.argmax(1)
        conf = scores[np.arange(len(cls)), cls]
        keep = conf >= thr
        if not keep.any():
            return []
        xy, wh, cls, conf = xy[keep], wh[keep], cls[keep], conf[keep]
        boxes = np.concatenate([xy - wh / 2, wh], 1) / r
        idx = cv2.dnn.NMSBoxesBatched(boxes.tolist(), conf.tolist(), cls.tolist(), thr, iou)
        return [(int(cls[i]), float(conf[i]), boxes[i].tolist()) for i in np.array(idx).ravel()]


def strides_for(model):
    # the street detector has two 3549-row heads (teacher rows, then urban rows)
    return [8, 16, 32, 8, 16, 32] if "hawkeye_urban" in model else [8, 16, 32]


def open_clip(path):
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        sys.exit(f"bench_python: cannot open {path}")
    return cap


def scaled(frame, width):
    h, w = frame.shape[:2]
    if width and w != width:
        frame = cv2.resize(frame, (width, int(round(h * width / w))), interpolation=cv2.INTER_LINEAR)
    return frame


def mode_infer(args, det):
    cap = open_clip(args.input)
    ok, frame = cap.read()
    frame = scaled(frame, args.width)
    det.detect(frame)
    t0 = time.perf_counter()
    for _ in range(args.frames):
        det.detect(frame)
    return {"inference_fps": args.frames / (time.perf_counter() - t0)}


def mode_pipeline(args, det):
    cap = open_clip(args.input)
    n = 0
    t0 = None
    while n < args.frames:
        ok, frame = cap.read()
        if not ok:
            cap.release()
            cap = open_clip(args.input)
            continue
        det.detect(scaled(frame, args.width))
        if t0 is None:  # the first frame starts the clock, as in hawkeye's bench
            t0 = time.perf_counter()
            continue
        n += 1
    return {"pipeline_fps": n / (time.perf_counter() - t0)}


def mode_capacity(args, det):
    """N real-time cameras: each thread paces reading to the clip's fps and detects every
    (fps / detect_fps)-th frame. A thread behind its clock reads on without sleeping until it
    has caught up (the plain loop: no frame is skipped on purpose)."""
    stop = threading.Event()
    done = [0] * args.cameras
    lag = [0.0] * args.cameras

    def camera(i):
        cap = open_clip(args.input)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        every = max(1, int(round(fps / args.detect_fps)))
        start = time.perf_counter()
        k = 0
        while not stop.is_set():
            due = start + k / fps
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            ok = cap.grab()
            if not ok:
                cap.release()
                cap = open_clip(args.input)
                continue
            if k % every == 0:
                ok, frame = cap.retrieve()
                if ok:
                    det.detect(scaled(frame, args.width))
                    done[i] += 1
                lag[i] = time.perf_counter() - due
            k += 1

    threads = [threading.Thread(target=camera, args=(i,), daemon=True) for i in range(args.cameras)]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    base = list(done)
    time.sleep(args.seconds)
    rates = [(d - b) / args.seconds for d, b in zip(done, base)]
    stop.set()
    for t in threads:
        t.join(timeout=5)
    return {"cameras": args.cameras, "rates": rates, "lag_s": lag}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["infer", "pipeline", "capacity"])
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cameras", type=int, default=1)
    p.add_argument("--detect-fps", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    args = p.parse_args()
    det = Yolox(args.model, args.threads, strides_for(args.model))
    result = {"infer": mode_infer, "pipeline": mode_pipeline, "capacity": mode_capacity}[args.mode](args, det)
    result.update(mode=args.mode, onnxruntime=ort.__version__, opencv=cv2.__version__)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
