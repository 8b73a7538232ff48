//! Tests of the fixed-point networks: a plain scalar version of the same
//! arithmetic, every vector kernel this CPU runs against it on real
//! inputs, and all against the fixtures `tools/quantize_mtcnn.py` and
//! `tools/quantize_mobilefacenet.py` wrote.

use super::layer::iproduct;
use super::{check_pool, check_shapes, scratch, FixedNet, Isa, Kernels, Layer, Op, Out, A16};
use crate::models::ModelDir;
use crate::resample::{Integral, Region};

/// The scalar convolution: the scripts' `fixed_forward`, one value at a time.
unsafe fn conv(l: &Layer, inp: &[i16], w: usize, h: usize, mut out: Out<'_>) {
    let (ow, oh) = check_shapes(l, inp, w, h, &out);
    let taps = l.k * l.k;
    for (y, x, oc) in iproduct(oh, ow, l.cout) {
        let mut acc = 0i32;
        for t in 0..taps {
            let px = ((y * l.stride + t / l.k) * w + x * l.stride + t % l.k) * l.cin;
            if l.depthwise {
                acc += i32::from(inp[px + oc]) * i32::from(l.weights[oc * taps + t]);
                continue;
            }
            for c in 0..l.cin {
                acc += i32::from(inp[px + c]) * i32::from(l.weights[(oc * taps + t) * l.cin + c]);
            }
        }
        let f = acc as f32 * l.scale[oc] + l.shift[oc];
        let f_act = f.max(0.0) + f.min(0.0) * l.alpha[oc];
        let requant = |f: f32| (f * l.inv[oc]).clamp(-A16, A16).round_ties_even() as i16;
        let (pixel, i) = (y * ow + x, (y * ow + x) * l.cout_p + oc);
        match &mut out {
            Out::Fixed(o) => o[i] = requant(f_act),
            Out::Residual(o) => o[i] = requant(f_act + f32::from(o[i]) * l.res_scale[oc]),
            Out::Float(o) => o[pixel * l.cout + oc] = f,
        }
    }
}

unsafe fn pool(inp: &[i16], w: usize, h: usize, c: usize, k: usize, out: &mut [i16]) {
    let (ow, oh) = check_pool(inp, w, h, c, k, out);
    for (oy, ox, ch) in iproduct(oh, ow, c) {
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
    FixedNet::load(&dir, &format!("{net}_fixed.json")).expect("parameters")
}

/// A fixture of `models/reference`: its metadata, the input, the floats.
fn fixture(name: &str) -> (serde_json::Value, Vec<u8>, Vec<f32>) {
    let dir = repo_root().join("models/reference");
    let read = |ext: &str| std::fs::read(dir.join(format!("{name}_fixed.{ext}"))).unwrap();
    let meta = serde_json::from_slice(&read("json")).unwrap();
    let want = read("out.f32")
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (meta, read("input.u8"), want)
}

fn scalar(net: &FixedNet, input: &[i16], w: usize, h: usize) -> super::NetMap {
    let kernels = Kernels {
        conv,
        pool,
        conv_pool2: None,
        depthwise: Some(conv),
    };
    // SAFETY: the scalar kernels run anywhere and run every operation.
    scratch::with_buffers(|bufs| unsafe { net.forward(input, w, h, &kernels, bufs) })
}

#[test]
fn scalar_version_gives_the_fixtures_exactly() {
    for net in ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "mobilefacenet"] {
        let (meta, input, want) = fixture(net);
        let shape: Vec<usize> = serde_json::from_value(meta["input"]["shape"].clone()).unwrap();
        let (h, w) = (shape[0], shape[1]);
        let fixed = load(net);
        let input = fixed.encode(&input);
        let got = scalar(&fixed, &input, w, h);
        assert_eq!(Some((got.w, got.h)), fixed.output_size(w, h));
        assert!(
            got.data == want,
            "{net}: scalar version differs from the script's arithmetic"
        );
        for isa in available() {
            if isa.extended() || !fixed.extended {
                assert!(
                    fixed.run_with(isa, &input, w, h).data == want,
                    "{net}: the {} kernel differs from the fixture",
                    isa.name()
                );
            }
        }
    }
}

#[test]
fn mobilefacenet_kernels_equal_the_scalar_version_on_faces() {
    let net = load("mobilefacenet");
    assert!(net.extended, "MobileFaceNet needs the second format");
    let Some(isa) = net.isa() else {
        eprintln!("skipped: this CPU lacks AVX2");
        return;
    };
    assert_eq!(
        isa,
        Isa::Avx2,
        "only the AVX2 kernels run the second format"
    );
    // Real faces (not aligned: the arithmetic does not care), and a flat grey.
    let img = image::open(repo_root().join("../shared/testdata/faces/biden_1.jpg"))
        .expect("photo")
        .to_rgb8();
    let integral = Integral::new(&img);
    let mut inputs: Vec<Vec<u8>> = [(0, 0, 300), (120, 60, 180), (-40, -40, 200)]
        .iter()
        .map(|&(x0, y0, side)| {
            let region = Region {
                x0,
                y0,
                w: side,
                h: side,
            };
            integral
                .resample_region_rgbx(region, 112, 112)
                .chunks_exact(4)
                .flat_map(|p| p[..3].iter().map(|&v| v as u8))
                .collect()
        })
        .collect();
    inputs.push(vec![128; 112 * 112 * 3]);
    for (i, rgb) in inputs.iter().enumerate() {
        let input = net.encode(rgb);
        let (fast, slow) = (net.run(&input, 112, 112), scalar(&net, &input, 112, 112));
        assert!(fast.data == slow.data, "face {i}: AVX2 and scalar differ");
        assert_eq!((fast.w, fast.h, fast.data.len()), (1, 1, 192));
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
    let pnet = load("mtcnn_pnet");
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
        let fixed = load(&format!("mtcnn_{net}"));
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
    let pnet = load("mtcnn_pnet");
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
