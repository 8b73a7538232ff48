"""Times the original Django app's face stack on the same frames as `facegate bench`.

The original app runs facenet-pytorch's MTCNN (min face 20 px) and
InceptionResnetV1 on each webcam frame. This script measures that work per
640-px frame on one thread: decode + detect + crop + embed. InceptionResnetV1
is built without pretrained weights (those come from a model hub, which we
do not use); its cost does not depend on the weight values.

Run with the conversion venv (tools/convert_models.sh creates it):

    .facegate/convert-venv/bin/python tools/bench_original.py --runs 30 IMG...
"""

import argparse
import io
import statistics
import time

import torch
from PIL import Image
from facenet_pytorch import MTCNN, InceptionResnetV1


def frame(path):
    """The image scaled to 640 px on its longer side, JPEG-encoded like a webcam frame."""
    img = Image.open(path).convert("RGB")
    img.thumbnail((640, 640), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("images", nargs="+")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    mtcnn = MTCNN(image_size=160, margin=0, min_face_size=20, device="cpu")
    resnet = InceptionResnetV1(pretrained=None, classify=False).eval()
    frames = [frame(p) for p in args.images]
    times = []
    with torch.no_grad():
        for f in frames:  # warm-up
            face = mtcnn(Image.open(io.BytesIO(f)).convert("RGB"))
            if face is not None:
                resnet(face.unsqueeze(0))
        for _ in range(args.runs):
            for f in frames:
                t = time.perf_counter()
                face = mtcnn(Image.open(io.BytesIO(f)).convert("RGB"))
                if face is not None:
                    resnet(face.unsqueeze(0))
                times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[round((len(times) - 1) * 0.95)]
    print(f"original stack (facenet-pytorch MTCNN + InceptionResnetV1, torch {torch.__version__}, 1 thread)")
    print(f"frames {len(frames)} x {args.runs} runs: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
