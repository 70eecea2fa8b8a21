"""Quick check of an exported hawkeye_urban on real footage without composites: urban boxes per
frame (score ≥ 0.4) on every 10th frame of vtest.avi (training half and held-out half) and of
tree.avi. `hawkeye eval --teacher` is the reference check; this one is for iterating on training.

    python check_real.py models/hawkeye_urban.onnx
"""
import sys

import numpy as np
import onnxruntime as ort

import realdata as R


def main():
    path = sys.argv[1]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    pts, st = R.grids()
    for name, lo, hi in (("vtest", 0, 399), ("vtest", 400, 794), ("tree", 0, 67)):
        frames = R.decode_video(name)[lo:hi + 1:10]
        n_boxes, scores = 0, []
        for f in frames:
            lb, _ = R.letterbox(f)
            out = s.run(None, {"images": lb.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
            urban = out[3549:]
            sc = urban[:, 4] * urban[:, 85:87].max(1)
            keep = sc >= 0.4
            cx = (urban[keep, 0] + pts[keep, 0]) * st[keep]
            cy = (urban[keep, 1] + pts[keep, 1]) * st[keep]
            w = np.exp(urban[keep, 2]) * st[keep]
            h = np.exp(urban[keep, 3]) * st[keep]
            b = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, sc[keep], urban[keep, 85:87].argmax(1)], 1)
            kept = R.nms(b, 0.45) if len(b) else b
            n_boxes += len(kept)
            scores += [float(x) for x in kept[:, 4]]
        print(f"{name} frames {lo}-{hi} every 10th: {len(frames)} frames, {n_boxes} urban boxes "
              f"({n_boxes / max(len(frames), 1):.3f}/frame), top scores {sorted(scores)[::-1][:5]}")


if __name__ == "__main__":
    main()
