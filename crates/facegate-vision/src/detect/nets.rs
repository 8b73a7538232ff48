//! MTCNN's three networks as the detector runs them, each behind
//! [`Net`]: P-Net over one pyramid level, R- and O-Net over candidate
//! crops, in fixed point or with ONNX Runtime (the ONNX outputs reordered
//! to the fixed-point layout, so the detector reads one layout).

use crate::error::VisionError;
use crate::fixed_net::{FixedNet, Isa, NetMap};
use crate::models::ModelDir;
use crate::net::{Net, ONNX_RUNTIME};
use crate::resample::{Integral, Region};
use crate::runtime::{SessionOptions, SessionPool};

use super::boxes::Candidate;

/// Values per P-Net cell: two logits, then the box offsets.
pub(super) const OUTPUTS: usize = 6;

/// P-Net's input: the image resampled to one `w × h` pyramid level.
pub(super) struct Level<'a> {
    pub integral: &'a Integral,
    pub w: usize,
    pub h: usize,
}

/// R-Net's (`size` 24) or O-Net's (48) input: every candidate's crop.
pub(super) struct Crops<'a> {
    pub integral: &'a Integral,
    pub cands: &'a [Candidate],
    pub size: usize,
}

/// What R- or O-Net says of one candidate.
pub(super) struct Scored {
    pub prob: f32,
    pub reg: [f32; 4],
    /// O-Net only: x1..x5 then y1..y5, fractions of the box.
    pub marks: [f32; 10],
}

type PNet = Box<dyn for<'a> Net<Level<'a>, NetMap>>;
type CropNet = Box<dyn for<'a> Net<Crops<'a>, Vec<Scored>>>;

/// MTCNN's three networks.
pub(super) struct Cascade {
    pub pnet: PNet,
    pub rnet: CropNet,
    pub onet: CropNet,
}

impl Cascade {
    /// The fixed-point networks (`models/mtcnn_*_fixed.json`) with the
    /// kernels of `isa`, or the ONNX models when `isa` is `None`.
    pub fn load(
        dir: &ModelDir,
        opts: &SessionOptions,
        isa: Option<Isa>,
    ) -> Result<Cascade, VisionError> {
        if let Some(isa) = isa {
            let load = |net: &str| FixedNet::load(dir, &format!("mtcnn_{net}_fixed.json"), isa);
            return Ok(Cascade {
                pnet: Box::new(FixedPNet(load("pnet")?)),
                rnet: Box::new(FixedCropNet(load("rnet")?)),
                onet: Box::new(FixedCropNet(load("onet")?)),
            });
        }
        let model = |net: &str| dir.read_verified(&format!("mtcnn_{net}.onnx"), None);
        Ok(Cascade {
            pnet: Box::new(OnnxPNet(SessionPool::load_lean(
                "mtcnn_pnet",
                &model("pnet")?,
                opts,
            )?)),
            rnet: Box::new(OnnxCropNet {
                pool: SessionPool::load("mtcnn_rnet", &model("rnet")?, opts)?,
                outputs: &["reg", "prob"],
            }),
            onet: Box::new(OnnxCropNet {
                pool: SessionPool::load("mtcnn_onet", &model("onet")?, opts)?,
                outputs: &["reg", "prob", "landmarks"],
            }),
        })
    }
}

/// The region of a candidate's square that R- and O-Net look at.
fn crop_region(c: &Candidate) -> Region {
    let x0 = c.bbox.x1.trunc() as i64 - 1;
    let y0 = c.bbox.y1.trunc() as i64 - 1;
    let w = (c.bbox.x2.trunc() as i64 - x0).max(1) as usize;
    let h = (c.bbox.y2.trunc() as i64 - y0).max(1) as usize;
    Region { x0, y0, w, h }
}

struct FixedPNet(FixedNet);

impl Net<Level<'_>, NetMap> for FixedPNet {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    fn run(&self, l: &Level<'_>) -> Result<NetMap, VisionError> {
        Ok(self.0.run(&l.integral.resample_rgbx(l.w, l.h), l.w, l.h))
    }
}

struct OnnxPNet(SessionPool);

impl Net<Level<'_>, NetMap> for OnnxPNet {
    fn backend(&self) -> &'static str {
        ONNX_RUNTIME
    }

    /// The ONNX model, its planes reordered cell by cell.
    fn run(&self, l: &Level<'_>) -> Result<NetMap, VisionError> {
        let planes = l.integral.resample(l.w, l.h);
        let out = self.0.run(
            "input",
            &[1, 3, planes.h, planes.w],
            &planes.data,
            &["reg", "logits"],
        )?;
        let (reg, logits) = (&out[0], &out[1]);
        let (h, w) = (logits.shape[2], logits.shape[3]);
        let cells = w * h;
        let mut data = Vec::with_capacity(cells * OUTPUTS);
        for i in 0..cells {
            data.extend([logits.data[i], logits.data[cells + i]]);
            data.extend((0..4).map(|c| reg.data[c * cells + i]));
        }
        Ok(NetMap { w, h, data })
    }
}

/// R- or O-Net in fixed point, one crop at a time.
struct FixedCropNet(FixedNet);

impl Net<Crops<'_>, Vec<Scored>> for FixedCropNet {
    fn backend(&self) -> &'static str {
        self.0.backend()
    }

    fn run(&self, c: &Crops<'_>) -> Result<Vec<Scored>, VisionError> {
        let size = c.size;
        Ok(c.cands
            .iter()
            .map(|cand| {
                let crop = c
                    .integral
                    .resample_region_rgbx(crop_region(cand), size, size);
                let o = self.0.run(&crop, size, size).data;
                Scored {
                    prob: 1.0 / (1.0 + (o[0] - o[1]).exp()),
                    reg: [o[2], o[3], o[4], o[5]],
                    marks: std::array::from_fn(|k| o.get(6 + k).copied().unwrap_or(0.0)),
                }
            })
            .collect())
    }
}

/// R- or O-Net with ONNX Runtime, every crop in one batch.
struct OnnxCropNet {
    pool: SessionPool,
    /// Box offsets, probabilities and (O-Net) landmarks.
    outputs: &'static [&'static str],
}

impl Net<Crops<'_>, Vec<Scored>> for OnnxCropNet {
    fn backend(&self) -> &'static str {
        ONNX_RUNTIME
    }

    fn run(&self, c: &Crops<'_>) -> Result<Vec<Scored>, VisionError> {
        let (n, size) = (c.cands.len(), c.size);
        let plane = 3 * size * size;
        let mut batch = vec![0f32; n * plane];
        for (cand, out) in c.cands.iter().zip(batch.chunks_mut(plane)) {
            c.integral
                .resample_region(crop_region(cand), size, size, out);
        }
        let out = self
            .pool
            .run("input", &[n, 3, size, size], &batch, self.outputs)?;
        Ok((0..n)
            .map(|i| Scored {
                prob: out[1].data[i * 2 + 1],
                reg: std::array::from_fn(|k| out[0].data[i * 4 + k]),
                marks: std::array::from_fn(|k| out.get(2).map_or(0.0, |m| m.data[i * 10 + k])),
            })
            .collect())
    }
}
