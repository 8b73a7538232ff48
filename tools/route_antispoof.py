"""The anti-spoofing network with its tree routing done by ONNX `If` nodes,
so that only the branch an input is routed to runs.

FaceAntiSpoofing (a deep tree network) is a tree of units: a root unit on
the 256x256 input, two units under it, four under those and eight leaf
classifiers. Each non-leaf unit projects its features onto a learnt
direction (`tru*/linear*`); the sign picks the child the input goes to
(`tru*/Less`, `tru*/GreaterEqual`), and the one-hot product of those
choices is `leaf_mask`. The converted graph (models/anti_spoofing.onnx)
computes every branch and then masks all but one leaf: a quarter of its
work is thrown away.

This script rewrites the graph so that each unit's projection feeds an
`If` whose branches hold the subtree of each child, down to the leaves.
The arithmetic of the branch taken is that of the original graph, node
for node; only the branches not taken are skipped. The outputs keep their
names and shapes: `leaf_mask` is the same one-hot vector, `cls_pred` holds
the chosen leaf's class score at its index and 0 elsewhere, so the score
`sum_i |cls_pred[i]| * leaf_mask[i]` is unchanged.

Tree (read from the graph; `check` proves it on real inputs): unit n has
children 2n+1 (projection >= 0) and 2n+2 (projection < 0); unit 0 is
`cru`/`tru`, unit n > 0 is `cru_n`/`tru_n`; units 3..6 end in the leaves
2(n-3) (>= 0) and 2(n-3)+1 (< 0), leaf 0 being `sfl`, leaf i `sfl_i`.

Needs only onnx, onnxruntime, numpy and Pillow; tools/convert_models.py
calls `route`, and it runs alone on an existing models/ directory:

    python3 tools/route_antispoof.py --root . --faces-dir ../shared/testdata/faces
"""
import argparse
import glob
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

SCOPE = "StatefulPartitionedCall/"
SRC = "anti_spoofing.onnx"
DST = "anti_spoofing_routed.onnx"
LEAVES = 8


def unit(n):
    return "cru" if n == 0 else f"cru_{n}"


def router(n):
    return "tru" if n == 0 else f"tru_{n}"


def leaf(i):
    return "sfl" if i == 0 else f"sfl_{i}"


class Graph:
    """The source graph: who produces each tensor, and the named tensors the
    rewrite needs."""

    def __init__(self, model, forced=False):
        self.model = model
        # For the check only: each `If` reads its condition from a graph
        # input `force_n` instead of the unit's projection.
        self.forced = forced
        g = model.graph
        self.nodes = list(g.node)
        self.producer = {o: i for i, n in enumerate(self.nodes) for o in n.output}
        self.available = {i.name for i in g.initializer} | {i.name for i in g.input}
        self.init = {i.name: i for i in g.initializer}
        self.users = {}
        for n in self.nodes:
            for i in n.input:
                self.users.setdefault(i, set()).add(n.name)
        self.placed = set()
        concat = {o.name: self.nodes[self.producer[o.name]] for o in g.output}
        self.leaf_out = list(concat["cls_pred"].input)
        assert len(self.leaf_out) == LEAVES
        for i, name in enumerate(self.leaf_out):
            assert name.startswith(f"{SCOPE}{leaf(i)}/"), (i, name)

    def named(self, prefix, op):
        """The output of the one node of type `op` whose name starts with `prefix`."""
        hits = [n for n in self.nodes if n.name.startswith(SCOPE + prefix + "/") and n.op_type == op]
        assert len(hits) == 1, (prefix, op, [n.name for n in hits])
        return hits[0].output[0]

    def features(self, n):
        return self.named(unit(n), "MaxPool")

    def less(self, n):
        return self.named(router(n), "Less")

    def needed(self, targets, known):
        """Nodes (in source order) that compute `targets` from `known` tensors."""
        todo, seen = list(targets), set()
        while todo:
            t = todo.pop()
            if t in known or t in self.available or t not in self.producer:
                continue
            i = self.producer[t]
            if i not in seen:
                seen.add(i)
                todo.extend(self.nodes[i].input)
        return [self.nodes[i] for i in sorted(seen)]


def outputs_of(nodes):
    return {o for n in nodes for o in n.output}


def leaf_branch(g, i, known, tag, extra):
    """A subgraph computing leaf i's class score, placed at index i of [1, 8]."""
    nodes = g.needed([g.leaf_out[i]], known)
    cls, mask = f"cls_pred/{tag}", f"leaf_mask/{tag}"
    pads, one_hot = f"pads/{tag}", f"one_hot/{tag}"
    extra.append(numpy_helper.from_array(np.array([0, i, 0, LEAVES - 1 - i], np.int64), pads))
    m = np.zeros((1, LEAVES), np.float32)
    m[0, i] = 1.0
    extra.append(numpy_helper.from_array(m, one_hot))
    nodes = nodes + [
        helper.make_node("Pad", [g.leaf_out[i], pads], [cls], name=f"place/{tag}"),
        helper.make_node("Identity", [one_hot], [mask], name=f"mask/{tag}"),
    ]
    return make_subgraph(g, nodes, cls, mask, tag)


def unit_branch(g, n, known, tag, extra):
    """A subgraph running unit n (from its parent's features) and its subtree."""
    nodes = g.needed([g.features(n), g.less(n)], known)
    inner = known | outputs_of(nodes)
    nodes = nodes + [route(g, n, inner, tag, extra)]
    return make_subgraph(g, nodes, f"cls_pred/{tag}", f"leaf_mask/{tag}", tag)


def route(g, n, known, tag, extra):
    """The `If` on unit n's projection: its >= 0 child in `else`, its < 0
    child in `then` (the condition is `projection < 0`)."""
    children = []
    for side, c in (("ge", 2 * n + 1), ("lt", 2 * n + 2)):
        sub = f"{tag}{side}{c}."
        if n >= 3:
            i = 2 * (n - 3) + (side == "lt")
            children.append(leaf_branch(g, i, known, sub, extra))
        else:
            children.append(unit_branch(g, c, known, sub, extra))
    cond = f"force_{n}" if g.forced else g.less(n)
    return helper.make_node(
        "If", [cond], [f"cls_pred/{tag}", f"leaf_mask/{tag}"], name=f"route/{tag}",
        then_branch=children[1], else_branch=children[0])


def local_initializers(g, nodes):
    """The weights only these nodes read, moved into their subgraph: ONNX
    Runtime's layout optimisation (NCHWc) only sees a convolution's weights
    as constant when they belong to the graph the convolution is in."""
    names = {n.name for n in nodes}
    mine = sorted({i for n in nodes for i in n.input
                   if i in g.init and g.users[i] <= names and i not in g.placed})
    g.placed.update(mine)
    return [g.init[i] for i in mine]


def make_subgraph(g, nodes, cls, mask, tag):
    outs = [helper.make_tensor_value_info(cls, onnx.TensorProto.FLOAT, [1, LEAVES]),
            helper.make_tensor_value_info(mask, onnx.TensorProto.FLOAT, [1, LEAVES])]
    return helper.make_graph(nodes, f"branch_{tag}", [], outs, local_initializers(g, nodes))


def rewrite(model, forced=False):
    g = Graph(model, forced)
    root = g.needed([g.features(0), g.less(0)], set())
    extra = []
    top = route(g, 0, outputs_of(root), "r.", extra)
    top.output[:] = ["cls_pred", "leaf_mask"]
    src = model.graph
    outer = [i for i in src.initializer if i.name not in g.placed]
    inputs = list(src.input)
    if forced:
        inputs += [helper.make_tensor_value_info(f"force_{n}", onnx.TensorProto.BOOL, [1, 1])
                   for n in range(7)]
    graph = helper.make_graph(root + [top], "anti_spoofing_routed", inputs, src.output,
                              outer + extra)
    out = helper.make_model(graph, opset_imports=model.opset_import,
                            producer_name="facegate tools/route_antispoof.py")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out, full_check=True)
    return out


def inputs_from(faces_dir, fixture):
    """Real inputs: the conversion's fixture (an MTCNN face crop), then for
    each photo a centre square and a tighter upper-centre square (where a
    portrait's face is), each also mirrored and darkened."""
    from PIL import Image, ImageOps
    xs = [fixture]
    files = sorted(glob.glob(os.path.join(faces_dir, "*.jpg")) + glob.glob(os.path.join(faces_dir, "*.png")))
    for f in files:
        im = Image.open(f).convert("RGB")
        w, h = im.size
        s = min(w, h)
        for side, top in ((s, (h - s) // 2), (s // 2, max(0, h // 3 - s // 4))):
            x0 = (w - side) // 2
            crop = im.crop((x0, top, x0 + side, top + side)).resize((256, 256), Image.BILINEAR)
            for c in (crop, ImageOps.mirror(crop)):
                a = np.asarray(c, np.float32) / 255.0
                xs += [a[None], (a * 0.6)[None]]
    return xs


def check(src_path, dst_path, xs, log):
    """The routed model gives the source's leaf and score on every input."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    a = ort.InferenceSession(src_path, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(dst_path, so, providers=["CPUExecutionProvider"])
    worst, leaves = 0.0, set()
    for x in xs:
        ca, ma = a.run(["cls_pred", "leaf_mask"], {"input": x})
        cb, mb = b.run(["cls_pred", "leaf_mask"], {"input": x})
        if not np.array_equal(ma, mb):
            raise SystemExit(f"route_antispoof: leaf differs: {ma} vs {mb}")
        sa, sb = float(np.sum(np.abs(ca) * ma)), float(np.sum(np.abs(cb) * mb))
        worst = max(worst, abs(sa - sb))
        leaves.add(int(np.argmax(ma)))
    if worst > 1e-5:
        raise SystemExit(f"route_antispoof: score differs by {worst}")
    log(f"anti_spoofing_routed: {len(xs)} inputs, same leaf every time "
        f"(leaves seen {sorted(leaves)}), largest score difference {worst:.2e}")
    return {"inputs": len(xs), "leaves": sorted(leaves), "maxdiff": worst}


def check_every_leaf(model, src_path, xs, log):
    """Real faces reach only some leaves, so each of the eight paths is also
    taken by force (the rewrite with its conditions as inputs): the leaf's
    class score must be the one the full graph computes for it."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    a = ort.InferenceSession(src_path, so, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(rewrite(model, forced=True).SerializeToString(), so,
                             providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in xs:
        (full,) = a.run(["cls_pred"], {"input": x})
        for i in range(LEAVES):
            feed = {"input": x}
            n, bits = 0, [(i >> 2) & 1, (i >> 1) & 1, i & 1]
            for bit in bits:  # 1: projection < 0, the second child
                for u in range(7):
                    feed.setdefault(f"force_{u}", np.array([[False]]))
                feed[f"force_{n}"] = np.array([[bool(bit)]])
                n = 2 * n + 1 + bit
            cls, mask = b.run(["cls_pred", "leaf_mask"], feed)
            if int(np.argmax(mask)) != i or mask.sum() != 1.0:
                raise SystemExit(f"route_antispoof: forced path {i} reached {mask}")
            worst = max(worst, abs(float(cls[0, i]) - float(full[0, i])))
    if worst > 1e-5:
        raise SystemExit(f"route_antispoof: a leaf's score differs by {worst}")
    log(f"anti_spoofing_routed: every leaf taken by force on {len(xs)} inputs, "
        f"largest difference {worst:.2e}")
    return worst


def route_model(models_dir, faces_dir, log=print):
    src_path, dst_path = os.path.join(models_dir, SRC), os.path.join(models_dir, DST)
    model = onnx.load(src_path)
    onnx.save(rewrite(model), dst_path)
    ref = os.path.join(models_dir, "reference", "anti_spoofing.input.f32")
    fixture = np.fromfile(ref, dtype="<f4").reshape(1, 256, 256, 3)
    xs = inputs_from(faces_dir, fixture)
    result = check(src_path, dst_path, xs, log)
    result["forced"] = check_every_leaf(model, src_path, xs[::16], log)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--faces-dir", required=True)
    args = ap.parse_args()
    route_model(os.path.join(args.root, "models"), args.faces_dir)


if __name__ == "__main__":
    main()
