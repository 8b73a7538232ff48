//! Tests of the fixed-point networks: a plain scalar version of the same
//! arithmetic, every vector kernel this CPU runs against it on real
//! inputs, and all against the fixtures `tools/quantize_mtcnn.py` wrote.

use super::{check_pool, check_shapes, FixedNet, Isa, Kernels, Layer, Op, Out, A16};
use crate::models::ModelDir;
use crate::resample::{Integral, Region};

/// The scalar convolution: the script's `fixed_forward`, one value at a time.
unsafe fn conv(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    let (ow, oh) = check_shapes(l, inp, w, h, &out);
    let taps = l.k * l.k;
    for (y, x, oc) in super::iproduct(oh, ow, l.cout) {
        let mut acc = 0i32;
        for t in 0..taps {
            let px = ((y + t / l.k) * w + x + t % l.k) * l.cin;
            for c in 0..l.cin {
                acc += i32::from(inp[px + c]) * i32::from(l.weights[(oc * taps + t) * l.cin + c]);
            }
        }
        let f = acc as f32 * l.scale[oc] + l.shift[oc];
        let pixel = y * ow + x;
        match &mut out {
            Out::Fixed(o) => {
                let f = f.max(0.0) + f.min(0.0) * l.alpha[oc];
                let t = (f * l.inv[oc]).clamp(-A16, A16);
                o[pixel * l.cout_p + oc] = t.round_ties_even() as i16;
            }
            Out::Float(o) => o[pixel * l.cout + oc] = f,
        }
    }
}

unsafe fn pool(inp: &[i16], w: usize, h: usize, c: usize, k: usize, out: &mut [i16]) {
    let (ow, oh) = check_pool(inp, w, h, c, k, out);
    for (oy, ox, ch) in super::iproduct(oh, ow, c) {
        let mut best = i16::MIN;
        for (y, x) in (2 * oy..(2 * oy + k).min(h))
            .flat_map(|y| (2 * ox..(2 * ox + k).min(w)).map(move |x| (y, x)))
        {
            best = best.max(inp[(y * w + x) * c + ch]);
        }
        out[(oy * ow + ox) * c + ch] = best;
    }
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(net: &str) -> FixedNet {
    let dir = ModelDir::open(&repo_root().join("models")).expect("models");
    FixedNet::load(&dir, &format!("mtcnn_{net}_fixed.json")).expect("parameters")
}

fn rgbx(rgb: &[u8]) -> Vec<i16> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 0].map(i16::from))
        .collect()
}

fn scalar(net: &FixedNet, input: &[i16], w: usize, h: usize) -> super::NetMap {
    let kernels = Kernels {
        conv,
        pool,
        conv_pool2: None,
    };
    // SAFETY: the scalar kernels run anywhere.
    unsafe { net.forward(input, w, h, &kernels) }
}

#[test]
fn scalar_version_gives_the_fixtures_exactly() {
    for net in ["pnet", "rnet", "onet"] {
        let dir = repo_root().join("models/reference");
        let read = |ext: &str| std::fs::read(dir.join(format!("mtcnn_{net}_fixed.{ext}"))).unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&read("json")).unwrap();
        let shape: Vec<usize> = serde_json::from_value(meta["input"]["shape"].clone()).unwrap();
        let (h, w) = (shape[0], shape[1]);
        let input = rgbx(&read("input.u8"));
        let want: Vec<f32> = read("out.f32")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let fixed = load(net);
        let got = scalar(&fixed, &input, w, h);
        assert_eq!(Some((got.w, got.h)), fixed.output_size(w, h));
        assert!(
            got.data == want,
            "{net}: scalar version differs from the script's arithmetic"
        );
        for isa in available() {
            assert!(
                fixed.run_with(isa, &input, w, h).data == want,
                "{net}: the {} kernel differs from the fixture",
                isa.name()
            );
        }
    }
}

/// The instruction sets of this CPU's vector kernels; says which are skipped.
fn available() -> Vec<Isa> {
    let (have, lack): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|i| i.available());
    for isa in lack {
        eprintln!("skipped: this CPU lacks {}", isa.name());
    }
    have
}

#[test]
fn vector_kernels_equal_the_scalar_version() {
    for isa in available() {
        kernel_equals_scalar_version(isa);
    }
}

fn kernel_equals_scalar_version(isa: Isa) {
    let name = isa.name();
    let img = image::open(repo_root().join("../shared/testdata/faces/obama_1.jpg"))
        .expect("photo")
        .to_rgb8();
    let integral = Integral::new(&img);
    let pnet = load("pnet");
    // Odd and even sizes, widths that are and are not multiples of the pixel block.
    for (w, h) in [(233, 171), (120, 90), (61, 47), (13, 12), (12, 17)] {
        let input = integral.resample_rgbx(w, h);
        let (fast, slow) = (
            pnet.run_with(isa, &input, w, h),
            scalar(&pnet, &input, w, h),
        );
        assert!(
            fast.data == slow.data,
            "pnet {w}x{h}: the {name} kernel and the scalar version differ"
        );
        assert_eq!(fast.data.len(), fast.w * fast.h * pnet.outputs());
    }
    for (net, size) in [("rnet", 24), ("onet", 48)] {
        let fixed = load(net);
        for (x0, y0, side) in [(-30, 40, 200), (100, 20, 90), (0, 0, 24)] {
            let region = Region {
                x0,
                y0,
                w: side,
                h: side,
            };
            let input = integral.resample_region_rgbx(region, size, size);
            let (fast, slow) = (
                fixed.run_with(isa, &input, size, size),
                scalar(&fixed, &input, size, size),
            );
            assert!(
                fast.data == slow.data,
                "{net} at {x0},{y0}: the {name} kernel and the scalar version differ"
            );
            assert_eq!((fast.w, fast.h, fast.data.len()), (1, 1, fixed.outputs()));
        }
    }
}

#[test]
fn p_nets_first_layer_and_pool_run_fused() {
    let pnet = load("pnet");
    assert!(
        matches!(&pnet.ops[..2], [Op::Conv(l), Op::Pool(2)] if l.nv == 1 && l.monotone),
        "the vector kernel would not fuse P-Net's first layer with its pool"
    );
}

#[test]
fn malformed_parameters_are_refused() {
    let good = std::fs::read(repo_root().join("models/mtcnn_rnet_fixed.json")).unwrap();
    assert!(FixedNet::from_json(&good).is_ok());
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        f(&mut v);
        FixedNet::from_json(&serde_json::to_vec(&v).unwrap())
            .err()
            .expect("refused")
    };
    let err = edit(&|v| v["ops"][2]["weights"][0] = 40000.into());
    assert!(err.contains("overflow"), "{err}");
    let err = edit(&|v| v["ops"][2]["cin"] = 12.into());
    assert!(err.contains("channels"), "{err}");
    let err = edit(&|v| v["ops"][1]["kernel"] = 5.into());
    assert!(err.contains("pool"), "{err}");
    let err = edit(&|v| {
        let ops = v["ops"].as_array_mut().unwrap();
        ops.pop();
    });
    assert!(err.contains("last"), "{err}");
    assert!(FixedNet::from_json(b"{\"format\":\"x\",\"ops\":[]}").is_err());
}
