"""Fixed-point (int16) versions of MTCNN's P-, R- and O-Net for facegate's
AVX-512 VNNI and AVX2 kernels (crates/facegate-vision/src/fixed_net/).

The three networks were most of face detection's cost under ONNX Runtime's
float kernels. The integer kernel (`vpdpwssd`: int16 x int16 pairs summed
into int32) needs each network as a list of integer operations with fixed
scales. This module derives them from models/mtcnn_{pnet,rnet,onet}.onnx:

- every Gemm after the flatten becomes a convolution whose kernel covers
  the whole map (the flatten's channel order undone), so a network is only
  convolutions and 2x2 / 3x3 max pools; the output layers are merged into
  one: class logits first, then box offsets, then landmarks;
- weights: per output channel, symmetric int16, as large as the layer
  allows with every int32 sum safe: sum(|w|) * A16 < 2**31 (W16 at most);
- activations after each PReLU: int16 in [-A16, A16], one scale per
  channel from the largest magnitude seen on calibration inputs; the
  channel's scale is folded into the next layer's weights;
- the input is the area-averaged pixel itself (0..255): scale 1/128 and
  offset 127.5, folded into the first layer's shift;
- the last layer gives float32: accumulator * scale + shift.

Calibration inputs are what each network sees in a detection: the pyramid
levels of the photos in shared/testdata/faces for P-Net, and the crops that
facenet-pytorch's MTCNN cascade feeds R- and O-Net on the same photos.

8 bits were tried first for P-Net: int8 weights in its first two layers
alone moved the logits by 0.1 on average and changed 7-16 % of the
proposals; with 16 bits it is under 1 %.

`fixed_forward` is the exact arithmetic of the Rust kernel (float32
multiply then add, round half to even, clamp), so the Rust tests demand
identical outputs on the fixtures written here. `quantize_all` checks each
integer network against its float original on the calibration inputs and
fails if decisions or landmarks differ by more than a bound.

Run by tools/convert_models.py; standalone for a quick check:
    .facegate/convert-venv/bin/python tools/quantize_mtcnn.py ROOT FACES_DIR
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from PIL import Image

F32 = np.float32
FORMAT = "facegate-fixed-net/1"
# Score thresholds of the detector (DetectorConfig::thresholds).
THRESHOLDS = {"pnet": 0.7, "rnet": 0.7, "onet": 0.7}
# Bounds: decisions at the threshold that may flip (fraction of the float
# network's positives), and the largest landmark change (fraction of the box).
MAX_DECISION_MISMATCH = 0.02
MAX_LANDMARK_DIFF = 0.01
A16 = 2047
W16 = 4095
INPUT_SIZE = {"rnet": 24, "onet": 48}
# P-Net calibration: photos fitted within 640 px, at these pyramid scales.
PNET_SCALES = (0.6, 0.425, 0.3, 0.15)


# --------------------------------------------------------------------------
# the networks as lists of operations
# --------------------------------------------------------------------------

def load_net(path, size):
    """[("conv", w[oc, ic, k, k], b, alpha or None) | ("pool", k)], float64.
    `size` is the input side (any valid size for the fully convolutional P-Net)."""
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
    nodes = list(m.graph.node)
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    ops, side, chans = [], size, 3
    heads = []
    for n in nodes:
        if n.op_type in ("Conv", "Gemm"):
            w, b = init[n.input[1]], init[n.input[2]]
            if n.op_type == "Gemm":  # after the (N, W, H, C) flatten
                w = w.reshape(w.shape[0], side, side, chans).transpose(0, 3, 2, 1)
            else:
                w = w.copy()
            after = consumers.get(n.output[0], [])
            prelu = next((c for c in after if c.op_type == "PRelu"), None)
            if prelu is None:  # an output layer
                heads.append((n.output[0], w, b, after))
                continue
            ops.append(("conv", w, b, init[prelu.input[1]].reshape(-1)))
            side, chans = side - w.shape[2] + 1, w.shape[0]
        elif n.op_type == "MaxPool":
            k = dict((a.name, onnx.helper.get_attribute_value(a)) for a in n.attribute)["kernel_shape"][0]
            ops.append(("pool", k))
            side = -(-(side - k) // 2) + 1
    # class logits (the head that feeds Softmax, or P-Net's "logits"), then reg, then landmarks
    def rank(h):
        name, _, _, after = h
        if name == "logits" or any(c.op_type == "Softmax" for c in after):
            return 0
        return {"reg": 1, "landmarks": 2}[name]
    heads.sort(key=rank)
    w = np.concatenate([h[1] for h in heads])
    b = np.concatenate([h[2] for h in heads])
    ops.append(("conv", w, b, None))
    return ops


def windows(x, k):
    """(H-k+1, W-k+1, k, k, C) sliding windows of an HWC array."""
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))
    return v.transpose(0, 1, 3, 4, 2)


def pool(x, k, fill):
    """k x k max pool, stride 2, ceil mode (windows cut by the edge keep what they have)."""
    h, w, c = x.shape
    oh, ow = -(-(h - k) // 2) + 1, -(-(w - k) // 2) + 1
    p = np.full((2 * (oh - 1) + k, 2 * (ow - 1) + k, c), fill, x.dtype)
    p[:h, :w] = x
    out = np.full((oh, ow, c), fill, x.dtype)
    for dy in range(k):
        for dx in range(k):
            np.maximum(out, p[dy:dy + 2 * oh:2, dx:dx + 2 * ow:2][:oh, :ow], out=out)
    return out


def float_forward(ops, px):
    """Float network on one uint8 HWC input; returns the post-PReLU
    activations of each hidden conv and the output (HWC)."""
    x = (px.astype(np.float64) - 127.5) / 128.0
    acts = []
    for op in ops:
        if op[0] == "pool":
            x = pool(x, op[1], -np.inf)
            continue
        _, w, b, alpha = op
        y = np.einsum("hwijc,ocij->hwo", windows(x, w.shape[2]), w, optimize=True) + b
        if alpha is not None:
            y = np.where(y > 0, y, y * alpha)
            acts.append(y)
        x = y
    return acts, x


def int16_weights(w, a_in):
    """Per output channel (axis 0), symmetric int16 weights and their
    scales: as large as the bound allows (W16), and small enough that
    sum(|q|) * a_in < 2**31 for every output, whatever the input."""
    norm = np.abs(w).reshape(w.shape[0], -1)
    ratio = (norm.sum(1) / np.maximum(norm.max(1), 1e-30)).max()
    wmax = int(min(W16, ((2**31 - 1) / a_in - 0.5 * norm.shape[1]) / ratio))
    sw = norm.max(1) / wmax
    sw[sw == 0] = 1.0
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(np.rint(w / sw.reshape(shape)), -wmax, wmax).astype(np.int64)
    assert (np.abs(q).reshape(q.shape[0], -1).sum(1) * a_in < 2**31).all()
    return q, sw


def quantize_ops(ops, ranges):
    """int16 weights and float32 requantisation constants, op by op."""
    out = []
    s_in, z_in, a_in = np.full(3, 1.0 / 128.0), np.full(3, 127.5), 255
    hidden = 0
    for op in ops:
        if op[0] == "pool":
            out.append({"op": "pool", "kernel": op[1]})
            continue
        _, w, b, alpha = op
        q, sw = int16_weights(w * s_in[None, :, None, None], a_in)  # per unit of the integer input
        shift = b - sw * (q * z_in[None, :, None, None]).reshape(q.shape[0], -1).sum(1)
        layer = {"op": "conv", "kernel": int(w.shape[2]), "cin": int(w.shape[1]), "cout": int(w.shape[0]),
                 # [oc][ky][kx][ci]
                 "weights": q.transpose(0, 2, 3, 1).reshape(-1).tolist(),
                 "scale": sw.astype(F32).tolist(), "shift": shift.astype(F32).tolist()}
        if alpha is not None:
            s_out = np.maximum(ranges[hidden], 1e-6) / A16
            hidden += 1
            layer["alpha"] = alpha.astype(F32).tolist()
            layer["out_inv_scale"] = (1.0 / s_out).astype(F32).tolist()
            s_in, z_in, a_in = s_out, np.zeros_like(s_out), A16
        out.append(layer)
    return out


def fixed_forward(q_ops, px):
    """The Rust kernel's arithmetic on one uint8 HWC input: the float32 outputs (HWC)."""
    x = px.astype(np.int64)
    for l in q_ops:
        if l["op"] == "pool":
            x = pool(x, l["kernel"], -A16)
            continue
        k, cin, cout = l["kernel"], l["cin"], l["cout"]
        w = np.array(l["weights"], np.int64).reshape(cout, k, k, cin)
        acc = np.einsum("hwijc,oijc->hwo", windows(x, k), w, optimize=True)
        y = acc.astype(F32) * np.array(l["scale"], F32) + np.array(l["shift"], F32)
        if "alpha" not in l:
            return y
        y = np.maximum(y, F32(0)) + np.minimum(y, F32(0)) * np.array(l["alpha"], F32)
        t = np.clip(y * np.array(l["out_inv_scale"], F32), F32(-A16), F32(A16))
        x = np.rint(t).astype(np.int64)
    raise AssertionError("no output layer")


# --------------------------------------------------------------------------
# calibration inputs
# --------------------------------------------------------------------------

def area_resample_u8(img, ow, oh):
    """Area resampling as the Rust detector does it (cells floor(o*len/out)
    .. ceil((o+1)*len/out), rounded (sum + n/2) / n)."""
    h, w, _ = img.shape
    sums = np.zeros((h + 1, w + 1, 3), np.int64)
    sums[1:, 1:] = img.astype(np.int64).cumsum(0).cumsum(1)

    def cells(out, length):
        o = np.arange(out)
        s = o * length // out
        return s, np.maximum(-(-(o + 1) * length // out), s + 1)

    ys, ye = cells(oh, h)
    xs, xe = cells(ow, w)
    tot = sums[ye][:, xe] + sums[ys][:, xs] - sums[ys][:, xe] - sums[ye][:, xs]
    n = ((ye - ys)[:, None] * (xe - xs)[None, :])[..., None]
    return ((tot + n // 2) // n).astype(np.uint8)


def photos(faces_dir):
    paths = sorted(glob.glob(os.path.join(faces_dir, "*.jpg")) + glob.glob(os.path.join(faces_dir, "*.png")))
    for path in paths:
        im = Image.open(path).convert("RGB")
        im.thumbnail((640, 640))
        yield os.path.basename(path), np.asarray(im)


def calibration_inputs(faces_dir):
    """{"pnet": [(name, HWC uint8)], "rnet": [...], "onet": [...]}"""
    import torch
    from facenet_pytorch.models.mtcnn import PNet, RNet, ONet
    from facenet_pytorch.models.utils.detect_face import detect_face

    seen = {"rnet": [], "onet": []}

    class Recorder(torch.nn.Module):
        def __init__(self, net, key):
            super().__init__()
            self.net, self.key = net, key

        def forward(self, x):
            u8 = np.rint(x.numpy() * 128.0 + 127.5).clip(0, 255).astype(np.uint8)
            seen[self.key].extend(u8.transpose(0, 2, 3, 1))
            return self.net(x)

    pnet = PNet(pretrained=True).eval()
    rnet = Recorder(RNet(pretrained=True).eval(), "rnet")
    onet = Recorder(ONet(pretrained=True).eval(), "onet")
    out = {"pnet": [], "rnet": [], "onet": []}
    for name, a in photos(faces_dir):
        h, w, _ = a.shape
        for s in PNET_SCALES:
            sw, sh = int(w * s + 1), int(h * s + 1)
            if min(sw, sh) >= 12:
                out["pnet"].append((name, area_resample_u8(a, sw, sh)))
        before = {k: len(v) for k, v in seen.items()}
        with torch.no_grad():
            detect_face(a[None].copy(), 20, pnet, rnet, onet, [0.6, 0.7, 0.7], 0.709, "cpu")
        for k in seen:
            out[k].extend((name, c) for c in seen[k][before[k]:])
    return out


# --------------------------------------------------------------------------
# checks, files
# --------------------------------------------------------------------------

def margin(o):
    return o[..., 1] - o[..., 0]


def check(net, q_ops, inputs, floats, log):
    t = np.log(THRESHOLDS[net] / (1 - THRESHOLDS[net]))
    lost = added = total = 0
    worst_margin = worst_reg = worst_mark = 0.0
    for (_, px), fo in zip(inputs, floats):
        qo = fixed_forward(q_ops, px).astype(np.float64)
        worst_margin = max(worst_margin, np.abs(margin(qo) - margin(fo)).max())
        pf, pq = margin(fo) >= t, margin(qo) >= t
        lost, added, total = lost + int((pf & ~pq).sum()), added + int((pq & ~pf).sum()), total + int(pf.sum())
        worst_reg = max(worst_reg, np.abs(qo[..., 2:6] - fo[..., 2:6])[pf].max(initial=0.0))
        if qo.shape[-1] > 6:
            worst_mark = max(worst_mark, np.abs(qo[..., 6:] - fo[..., 6:])[pf].max(initial=0.0))
    mismatch = (lost + added) / max(total, 1)
    log(f"{net} fixed point: {len(inputs)} calibration inputs, {total} float positives at p >= "
        f"{THRESHOLDS[net]}: {lost} lost, {added} added ({mismatch:.2%}); max |logit margin diff| "
        f"{worst_margin:.3f}, max |box offset diff| {worst_reg:.4f}, max |landmark diff| {worst_mark:.4f}")
    if mismatch > MAX_DECISION_MISMATCH or worst_mark > MAX_LANDMARK_DIFF:
        raise SystemExit(f"{net} fixed point: outside the bounds")
    return {"inputs": len(inputs), "positives": total, "lost": lost, "added": added,
            "mismatch": mismatch, "margin": worst_margin, "reg": worst_reg, "landmarks": worst_mark}


def check_float(net, path, ops, inputs, log):
    """The operation list in float against the ONNX model itself, so that
    the rewriting (flatten order, merged heads) is proven first."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for _, px in inputs[:20]:
        x = ((px.astype(np.float32) - 127.5) * 0.0078125).transpose(2, 0, 1)[None]
        got = dict(zip(names, sess.run(None, {"input": x})))
        _, out = float_forward(ops, px)
        if net == "pnet":
            want = np.concatenate([got["logits"][0], got["reg"][0]]).transpose(1, 2, 0)
            worst = max(worst, np.abs(out - want).max())
        else:
            o = out.reshape(-1)
            e = np.exp(o[:2] - o[:2].max())
            parts = [(e / e.sum(), got["prob"][0]), (o[2:6], got["reg"][0])]
            if net == "onet":
                parts.append((o[6:], got["landmarks"][0]))
            worst = max(worst, max(np.abs(a - b).max() for a, b in parts))
    log(f"{net}: operation list in float vs the ONNX model: max diff {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit(f"{net}: the operation list does not match the ONNX model")


def quantize_all(root, faces_dir, ref_dir, log=print):
    models_dir = os.path.join(root, "models")
    inputs = calibration_inputs(faces_dir)
    results = {}
    for net in ("pnet", "rnet", "onet"):
        path = os.path.join(models_dir, f"mtcnn_{net}.onnx")
        ops = load_net(path, INPUT_SIZE.get(net, 12))
        check_float(net, path, ops, inputs[net], log)
        ranges = [np.zeros(op[1].shape[0]) for op in ops if op[0] == "conv" and op[3] is not None]
        floats = []
        for _, px in inputs[net]:
            acts, out = float_forward(ops, px)
            floats.append(out)
            for r, a in zip(ranges, acts):
                np.maximum(r, np.abs(a).reshape(-1, a.shape[-1]).max(0), out=r)
        q_ops = quantize_ops(ops, ranges)
        results[net] = check(net, q_ops, inputs[net], floats, log)
        params = {"format": FORMAT, "source": f"mtcnn_{net}.onnx",
                  "calibration": f"{len(inputs[net])} inputs from the photos in shared/testdata/faces",
                  "ops": q_ops}
        with open(os.path.join(models_dir, f"mtcnn_{net}_fixed.json"), "w") as f:
            json.dump(params, f, separators=(",", ":"))
            f.write("\n")
        # Fixture for the Rust kernel: one real input and its exact outputs.
        name, px = next((n, p) for n, p in inputs[net] if n == "obama_1.jpg" and p.shape[1] < 120)
        out = fixed_forward(q_ops, px)
        os.makedirs(ref_dir, exist_ok=True)
        px.tofile(os.path.join(ref_dir, f"mtcnn_{net}_fixed.input.u8"))
        out.astype(F32).tofile(os.path.join(ref_dir, f"mtcnn_{net}_fixed.out.f32"))
        with open(os.path.join(ref_dir, f"mtcnn_{net}_fixed.json"), "w") as f:
            json.dump({"input": {"layout": "hwc rgb u8", "shape": list(px.shape)},
                       "out": {"layout": "hwc f32", "shape": list(out.shape)},
                       "note": f"{name}, a {net} input of a detection; outputs of "
                               "tools/quantize_mtcnn.py fixed_forward, bit-exact"}, f, indent=1)
            f.write("\n")
    return results


if __name__ == "__main__":
    root, faces = sys.argv[1], sys.argv[2]
    quantize_all(root, faces, os.path.join(root, "models", "reference"))
