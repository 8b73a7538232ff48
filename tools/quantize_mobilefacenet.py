"""Fixed-point (int16) MobileFaceNet for facegate's AVX2 kernels
(crates/facegate-vision/src/fixed_net/).

Under ONNX Runtime the embedding is about a third of a frame's work; the
same integer kernels that run MTCNN run it about twice as fast. This
module derives the integer network from models/mobilefacenet.onnx:

- the graph is a chain of convolutions (3x3 stride 2, depthwise 3x3 and
  7x7, 1x1), each followed by a per-channel PReLU or nothing, and residual
  Adds after the linear projections of the inverted-residual blocks; an
  Add is fused into the projection before it, and the tensor it adds is
  kept by the kernel in a buffer of its own ("save" marks the convolution
  whose output is that tensor, "residual" the one that adds into it);
- weights: per output channel, symmetric int16, as large as the layer
  allows with every int32 sum safe: sum(|w|) * bound < 2**31 (W16 at most);
- activations: int16 in [-A16, A16], one scale per channel: twice
  (HEADROOM) the largest magnitude seen on the calibration faces, their
  mirror images and higher-contrast and darker copies. Unseen faces go
  beyond the calibration maxima: scaled to the plain maximum of the faces
  themselves, the worst held-out face kept a cosine of 0.988 to its float
  embedding, with the copies but no headroom 0.995; one bit of headroom
  costs almost nothing in precision;
- the input: 2 * pixel - 255 (-255..255), which is the model's
  (pixel - 127.5) / 128 times 256, so the zero padding of the first layer
  stays the model's zero;
- the last layer gives float32: accumulator * scale + shift.

Calibration faces are what the embedder sees: the photos in
shared/testdata/faces, each face found by facenet-pytorch's MTCNN and
aligned to the 112x112 template by a similarity transform (as
crates/facegate-vision/src/align.rs does).

`fixed_forward` is the exact arithmetic of the Rust kernels (float32
multiply then add, round half to even, clamp), so the Rust tests demand
identical outputs on the fixture written here. `quantize` checks the
integer network against the float one and fails if an embedding's
direction moves by more than MIN_COSINE: first calibrated on half of the
photos and checked on the faces of the other half (both ways round), then
calibrated on all and checked on all.

Run by tools/convert_models.py; standalone for a quick check:
    .facegate/convert-venv/bin/python tools/quantize_mobilefacenet.py ROOT FACES_DIR
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_mtcnn import int16_weights  # noqa: E402

F32 = np.float32
FORMAT = "facegate-fixed-net/2"
A16 = 2047
HEADROOM = 2.0
MIN_COSINE = 0.999
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]])


# --------------------------------------------------------------------------
# the network as a list of operations
# --------------------------------------------------------------------------

def load_net(path):
    """[{"w": [oc, ic or 1, k, k], "b", "stride", "pad" (t, l, b, r),
    "depthwise", "alpha" or None, "save", "residual"}], float64, in order."""
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    ops, produced_by = [], {}
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
        w, b = init[n.input[1]], init[n.input[2]]
        group = a.get("group", 1)
        assert group in (1, w.shape[0]) and a.get("dilations", [1, 1]) == [1, 1], n.name
        pads = a.get("pads", [0, 0, 0, 0])  # ONNX: t, l, b, r
        op = {"w": w, "b": b, "stride": a.get("strides", [1, 1])[0], "pad": tuple(pads),
              "depthwise": group > 1, "alpha": None, "save": False, "residual": False}
        out = n.output[0]
        after = consumers.get(out, [])
        if len(after) == 1 and after[0].op_type == "PRelu":
            op["alpha"] = init[after[0].input[1]].reshape(-1)
            out = after[0].output[0]
        elif len(after) == 1 and after[0].op_type == "Add":
            add = after[0]
            other = next(i for i in add.input if i != out)
            src = produced_by[other]
            assert src == max(k for k, o in enumerate(ops) if o["save"]), "residual is not the saved tensor"
            op["residual"] = True
            out = add.output[0]
        ops.append(op)
        produced_by[out] = len(ops) - 1
        # An output an Add will read again later is the saved tensor.
        later = [c for c in consumers.get(out, []) if c.op_type == "Add"]
        if later and not op["residual"]:
            op["save"] = True
        elif op["residual"]:
            op["save"] = bool(later)
    return ops


def pad_hwc(x, pad, value=0):
    t, l, b, r = pad
    return np.pad(x, ((t, b), (l, r), (0, 0)), constant_values=value)


def windows(x, k, stride):
    """(OH, OW, k, k, C) windows of an HWC array, valid, with `stride`."""
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))
    return v[::stride, ::stride].transpose(0, 1, 3, 4, 2)


def conv_sum(x, w, op):
    """Correlation of HWC `x` with w [oc, ic, k, k] (or [c, 1, k, k])."""
    win = windows(pad_hwc(x, op["pad"]), w.shape[2], op["stride"])
    if op["depthwise"]:
        return np.einsum("hwijc,cij->hwc", win, w[:, 0], optimize=True)
    return np.einsum("hwijc,ocij->hwo", win, w, optimize=True)


def float_forward(ops, face):
    """The float network on one 112x112x3 uint8 face: every op's output
    (after its PReLU or Add) and the raw embedding."""
    x = (face.astype(np.float64) - 127.5) / 128.0
    saved, outs = None, []
    for op in ops:
        y = conv_sum(x, op["w"], op) + op["b"]
        if op["alpha"] is not None:
            y = np.where(y > 0, y, y * op["alpha"])
        if op["residual"]:
            y = y + saved
        if op["save"]:
            saved = y
        outs.append(y)
        x = y
    return outs, x.reshape(-1)


def quantize_ops(ops, ranges):
    """int16 weights and float32 requantisation constants, op by op."""
    out = []
    s_in, a_in = np.full(3, 1.0 / 256.0), 255
    s_saved = None
    for i, op in enumerate(ops):
        w = op["w"] * (s_in[:, None, None, None] if op["depthwise"] else s_in[None, :, None, None])
        q, sw = int16_weights(w, a_in)
        k = int(w.shape[2])
        layer = {"op": "conv", "kernel": k, "cout": int(w.shape[0]),
                 "cin": int(w.shape[0] if op["depthwise"] else w.shape[1]),
                 # [oc][ky][kx][ci], or [c][ky][kx] for a depthwise layer
                 "weights": (q[:, 0] if op["depthwise"] else q.transpose(0, 2, 3, 1)).reshape(-1).tolist(),
                 "scale": sw.astype(F32).tolist(), "shift": op["b"].astype(F32).tolist()}
        if op["stride"] != 1:
            layer["stride"] = int(op["stride"])
        if any(op["pad"]):
            layer["pad"] = [int(p) for p in op["pad"]]
        if op["depthwise"]:
            layer["depthwise"] = True
        if op["alpha"] is not None:
            layer["alpha"] = op["alpha"].astype(F32).tolist()
        if op["residual"]:
            layer["residual"] = True
            layer["residual_scale"] = s_saved.astype(F32).tolist()
        if op["save"]:
            layer["save"] = True
        if i + 1 < len(ops):
            s_out = np.maximum(ranges[i] * HEADROOM, 1e-6) / A16
            layer["out_inv_scale"] = (1.0 / s_out).astype(F32).tolist()
            s_in, a_in = s_out, A16
            if op["save"]:
                s_saved = s_out
        out.append(layer)
    return out


def fixed_forward(q_ops, face):
    """The Rust kernels' arithmetic on one 112x112x3 uint8 face: the raw
    float32 embedding."""
    x = 2 * face.astype(np.int64) - 255
    saved = None
    for l in q_ops:
        k, cin, cout = l["kernel"], l["cin"], l["cout"]
        op = {"pad": tuple(l.get("pad", (0, 0, 0, 0))), "stride": l.get("stride", 1),
              "depthwise": l.get("depthwise", False)}
        if op["depthwise"]:
            w = np.array(l["weights"], np.int64).reshape(cout, 1, k, k)
        else:
            w = np.array(l["weights"], np.int64).reshape(cout, k, k, cin).transpose(0, 3, 1, 2)
        acc = conv_sum(x, w, op)
        y = acc.astype(F32) * np.array(l["scale"], F32) + np.array(l["shift"], F32)
        if "out_inv_scale" not in l:
            return y.reshape(-1)
        if "alpha" in l:
            y = np.maximum(y, F32(0)) + np.minimum(y, F32(0)) * np.array(l["alpha"], F32)
        if l.get("residual"):
            y = y + saved.astype(F32) * np.array(l["residual_scale"], F32)
        t = np.clip(y * np.array(l["out_inv_scale"], F32), F32(-A16), F32(A16))
        x = np.rint(t).astype(np.int64)
        if l.get("save"):
            saved = x
    raise AssertionError("no output layer")


# --------------------------------------------------------------------------
# calibration faces
# --------------------------------------------------------------------------

def similarity(src, dst):
    """Least-squares similarity transform mapping src points to dst: 2x3."""
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)]
    a[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(n), np.ones(n)]
    p, *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    c, s, tx, ty = p
    return np.array([[c, -s, tx], [s, c, ty]])


def align(img, landmarks):
    """The 112x112 face: bilinear samples at the inverse transform of each
    output pixel's centre; outside the image is black."""
    m = similarity(np.asarray(landmarks, np.float64), TEMPLATE_112)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    # PIL's affine transform takes the output -> input map.
    return np.asarray(img.transform((112, 112), Image.AFFINE, inv.reshape(-1).tolist(),
                                    resample=Image.BILINEAR))


def calibration_faces(faces_dir):
    """[(file, 112x112x3 uint8)] for every face MTCNN finds in the photos."""
    import torch
    from facenet_pytorch import MTCNN
    torch.set_num_threads(1)
    mtcnn = MTCNN(keep_all=True, min_face_size=20, device="cpu")
    out = []
    for path in sorted(glob.glob(os.path.join(faces_dir, "*.jpg")) + glob.glob(os.path.join(faces_dir, "*.png"))):
        img = Image.open(path).convert("RGB")
        boxes, probs, marks = mtcnn.detect(img, landmarks=True)
        if boxes is None:
            continue
        for mk, p in zip(marks, probs):
            if p >= 0.9:
                out.append((os.path.basename(path), align(img, mk)))
    return out


# --------------------------------------------------------------------------
# checks, files
# --------------------------------------------------------------------------

def unit(v):
    return v / np.linalg.norm(v)


def check_float(path, ops, faces, log):
    """The operation list in float against the ONNX model itself."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for _, face in faces[:8]:
        x = ((face.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        want = sess.run(None, {"input": x})[0][0]
        worst = max(worst, np.abs(float_forward(ops, face)[1] - want).max())
    log(f"mobilefacenet: operation list in float vs the ONNX model: max diff {worst:.2e}")
    if worst > 1e-3:
        raise SystemExit("mobilefacenet: the operation list does not match the ONNX model")


def augmented(faces):
    """Each face, its mirror image, and higher-contrast and darker copies."""
    out = []
    for name, f in faces:
        g = f.astype(np.float64)
        out += [(name, f), (name, f[:, ::-1].copy()),
                (name, np.clip((g - 128) * 1.4 + 128, 0, 255).astype(np.uint8)),
                (name, np.clip(g * 0.6, 0, 255).astype(np.uint8))]
    return out


def calibrated(ops, faces):
    """The integer network calibrated on `faces` (augmented)."""
    ranges = [np.zeros(op["w"].shape[0]) for op in ops]
    for _, face in augmented(faces):
        outs, _ = float_forward(ops, face)
        for r, y in zip(ranges, outs):
            np.maximum(r, np.abs(y).reshape(-1, y.shape[-1]).max(0), out=r)
    return quantize_ops(ops, ranges)


def cosines(ops, q_ops, faces):
    return [float(unit(fixed_forward(q_ops, f)) @ unit(float_forward(ops, f)[1])) for _, f in faces]


def quantize(root, faces_dir, ref_dir, log=print):
    models_dir = os.path.join(root, "models")
    path = os.path.join(models_dir, "mobilefacenet.onnx")
    ops = load_net(path)
    faces = calibration_faces(faces_dir)
    check_float(path, ops, faces, log)
    # Generalisation: calibrated on the photos of one half, checked on the other.
    names = sorted({n for n, _ in faces})
    held = []
    for half in (names[0::2], names[1::2]):
        inside = [x for x in faces if x[0] in half]
        outside = [x for x in faces if x[0] not in half]
        held += cosines(ops, calibrated(ops, inside), outside)
    q_ops = calibrated(ops, faces)
    every = cosines(ops, q_ops, faces)
    worst = min(every)
    log(f"mobilefacenet fixed point: {len(faces)} faces; cosine to the float embedding: held-out "
        f"worst {min(held):.5f} (mean {np.mean(held):.5f}), calibrated on all: worst {worst:.5f}")
    if min(worst, min(held)) < MIN_COSINE:
        raise SystemExit("mobilefacenet fixed point: an embedding moved too far")
    params = {"format": FORMAT, "source": "mobilefacenet.onnx", "input": "rgb_centred",
              "calibration": f"{len(faces)} aligned faces from the photos in shared/testdata/faces",
              "ops": q_ops}
    with open(os.path.join(models_dir, "mobilefacenet_fixed.json"), "w") as f:
        json.dump(params, f, separators=(",", ":"))
        f.write("\n")
    # Fixture for the Rust kernels: one real face and its exact output.
    name, face = next((n, fc) for n, fc in faces if n == "obama_1.jpg")
    out = fixed_forward(q_ops, face)
    os.makedirs(ref_dir, exist_ok=True)
    face.tofile(os.path.join(ref_dir, "mobilefacenet_fixed.input.u8"))
    out.astype(F32).tofile(os.path.join(ref_dir, "mobilefacenet_fixed.out.f32"))
    with open(os.path.join(ref_dir, "mobilefacenet_fixed.json"), "w") as f:
        json.dump({"input": {"layout": "hwc rgb u8", "shape": list(face.shape)},
                   "out": {"layout": "f32", "shape": list(out.shape)},
                   "note": f"{name}, the face aligned by tools/quantize_mobilefacenet.py; the raw "
                           "embedding of its fixed_forward, bit-exact"}, f, indent=1)
        f.write("\n")
    return {"faces": len(faces), "held_out_worst": min(held), "worst": worst}


if __name__ == "__main__":
    root, faces = sys.argv[1], sys.argv[2]
    quantize(root, faces, os.path.join(root, "models", "reference"))
