//! The instruction sets the vector kernels are written for, which of them
//! this CPU has, and each one's kernels.

use super::interface::Kernels;

/// The instruction sets the vector kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F, BW, VL and VNNI (`kernel.rs`, `kernel_depthwise.rs`).
    Avx512Vnni,
    /// AVX2 (`kernel_avx2.rs`, `kernel_avx2_depthwise.rs`).
    Avx2,
}

impl Isa {
    /// Every instruction set, fastest first.
    pub const ALL: [Isa; 2] = [Isa::Avx512Vnni, Isa::Avx2];

    /// The fastest instruction set this CPU has, if any.
    pub fn best() -> Option<Isa> {
        Self::ALL.into_iter().find(|i| i.available())
    }

    /// Whether this CPU has the instruction set.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Avx512Vnni => {
                    has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni")
                }
                Isa::Avx2 => has!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "AVX-512 VNNI",
            Isa::Avx2 => "AVX2",
        }
    }

    pub(super) fn kernels(self) -> Kernels {
        #[cfg(target_arch = "x86_64")]
        match self {
            Isa::Avx512Vnni => Kernels {
                conv: super::kernel::conv,
                pool: super::kernel::pool,
                conv_pool2: Some(super::kernel::conv_pool2),
                depthwise: Some(super::kernel_depthwise::depthwise),
            },
            Isa::Avx2 => Kernels {
                conv: super::kernel_avx2::conv,
                pool: super::kernel_avx2::pool,
                conv_pool2: Some(super::kernel_avx2::conv_pool2),
                depthwise: Some(super::kernel_avx2_depthwise::depthwise),
            },
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no vector kernel on this architecture: {self:?}")
    }
}
