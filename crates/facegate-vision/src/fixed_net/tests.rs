//! Tests of the fixed-point networks: a plain scalar version of the same
//! arithmetic, every vector kernel this CPU runs against it on real
//! inputs, and all against the fixtures `tools/quantize_mtcnn.py` and
//! `tools/quantize_mobilefacenet.py` wrote.

use super::interface::{check_pool, check_shapes, Kernels, Out};
use super::layer::{iproduct, Layer, A16};
use super::{scratch, FixedNet, Isa, Op};
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
    let bytes = dir
        .read_verified(&format!("{net}_fixed.json"), None)
        .expect("parameters");
    // Each test picks the kernels it runs with (`run_with`).
    FixedNet::from_json(&bytes, Isa::Avx2).expect("parameters")
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
            assert!(
                fixed.run_with(isa, &input, w, h).data == want,
                "{net}: the {} kernel differs from the fixture",
                isa.name()
            );
        }
    }
}

#[test]
fn mobilefacenet_kernels_equal_the_scalar_version_on_faces() {
    let net = load("mobilefacenet");
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
        let slow = scalar(&net, &input, 112, 112);
        assert_eq!((slow.w, slow.h, slow.data.len()), (1, 1, 192));
        for isa in available() {
            let fast = net.run_with(isa, &input, 112, 112);
            assert!(
                fast.data == slow.data,
                "face {i}: the {} kernels and the scalar version differ",
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

/// A network of the second format's operations on channel counts the
/// real ones lack (48: a depthwise kernel's half group), with
/// pseudo-random parameters: strided, padded, depthwise, linear and
/// residual layers.
fn synthetic_net() -> FixedNet {
    let mut seed = 0x2545_f491_u32;
    let mut next = move |lo: i32, hi: i32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        lo + (seed % (hi - lo + 1) as u32) as i32
    };
    let mut layer = |k: usize, cin: usize, cout: usize, depthwise: bool| {
        let fan_in = if depthwise { 1 } else { cin };
        let n = cout * k * k * fan_in;
        let consts = |f: &mut dyn FnMut() -> f32| (0..cout).map(|_| f()).collect::<Vec<f32>>();
        serde_json::json!({
            "op": "conv", "kernel": k, "cin": cin, "cout": cout, "depthwise": depthwise,
            "weights": (0..n).map(|_| next(-60, 60)).collect::<Vec<i32>>(),
            "scale": consts(&mut || next(5, 20) as f32 * 1e-4),
            "shift": consts(&mut || next(-50, 50) as f32),
            "alpha": consts(&mut || next(-5, 30) as f32 / 100.0),
            "out_inv_scale": consts(&mut || next(20, 80) as f32 / 10.0),
        })
    };
    let mut ops = vec![
        layer(1, 3, 48, false),
        layer(3, 48, 48, true),
        layer(1, 48, 48, false),
        layer(1, 48, 48, false),
        layer(3, 48, 48, true),
        layer(1, 48, 5, false),
    ];
    ops[1]["stride"] = 2.into();
    ops[1]["pad"] = serde_json::json!([1, 0, 1, 1]);
    ops[1]["save"] = true.into();
    ops[3]["alpha"] = serde_json::Value::Null;
    ops[3]["residual"] = true.into();
    ops[3]["residual_scale"] = serde_json::json!(vec![0.75f32; 48]);
    ops[5]["alpha"] = serde_json::Value::Null;
    ops[5]["out_inv_scale"] = serde_json::Value::Null;
    let params = serde_json::json!({"format": "facegate-fixed-net/2", "ops": ops});
    FixedNet::from_json(&serde_json::to_vec(&params).unwrap(), Isa::Avx2).expect("a valid network")
}

#[test]
fn vector_kernels_equal_the_scalar_version_on_every_operation() {
    let net = synthetic_net();
    let img = image::open(repo_root().join("../shared/testdata/faces/obama_1.jpg"))
        .expect("photo")
        .to_rgb8();
    let integral = Integral::new(&img);
    for (w, h) in [(37, 29), (24, 24), (9, 11)] {
        let input = integral.resample_rgbx(w, h);
        let slow = scalar(&net, &input, w, h);
        assert_eq!(Some((slow.w, slow.h)), net.output_size(w, h));
        let spread = slow.data.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(spread > 1.0, "{w}x{h}: outputs all near zero, a weak test");
        for isa in available() {
            assert!(
                net.run_with(isa, &input, w, h).data == slow.data,
                "{w}x{h}: the {} kernels and the scalar version differ",
                isa.name()
            );
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
    assert!(FixedNet::from_json(&good, Isa::Avx2).is_ok());
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
        f(&mut v);
        FixedNet::from_json(&serde_json::to_vec(&v).unwrap(), Isa::Avx2)
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
    assert!(FixedNet::from_json(b"{\"format\":\"x\",\"ops\":[]}", Isa::Avx2).is_err());
}
