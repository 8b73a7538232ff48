//! The product-quantisation codes of a large gallery, laid out for a
//! "fast scan": the inner loop of its search. Each template has one 4-bit
//! code per sub-space ([`SUBSPACES`] of them, 16 bytes a template), and a
//! probe scores a code by adding one table entry per sub-space. Slots are
//! stored in blocks of 32, sub-space by sub-space, so that a single byte
//! shuffle looks up one sub-space's entries for 32 templates at once.
//!
//! Layout of a block (512 bytes): for each pair of sub-spaces (2p, 2p+1),
//! 32 bytes: 16 for sub-space 2p then 16 for 2p+1; byte j of those holds
//! slot j's code in its low nibble and slot j+16's in its high one.
//!
//! The scan is compiled three times and picked at run time: AVX-512BW
//! (two pairs of sub-spaces a step), AVX2 (one pair), and portable; all
//! three give the same sums.

/// Sub-spaces per template (one 4-bit code each).
pub const SUBSPACES: usize = 32;
/// Slots per block.
pub const BLOCK: usize = 32;
/// Bytes per block.
const BLOCK_BYTES: usize = BLOCK * SUBSPACES / 2;

/// One probe's table: for each sub-space, the 16 codes' scores as bytes
/// (higher is nearer).
pub type Table = [[u8; 16]; SUBSPACES];

/// The codes of every slot, in blocks.
#[derive(Default)]
pub struct Codes {
    bytes: Vec<u8>,
    len: usize,
}

impl Codes {
    /// Room for `slots` without moving.
    pub fn with_capacity(slots: usize) -> Self {
        Codes {
            bytes: Vec::with_capacity(slots.div_ceil(BLOCK) * BLOCK_BYTES),
            len: 0,
        }
    }

    /// The block bytes (for their memory advice).
    pub fn bytes(&self) -> &Vec<u8> {
        &self.bytes
    }

    /// Bytes held (capacity).
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends a slot with `code` (one entry per sub-space, each < 16).
    pub fn push(&mut self, code: &[u8; SUBSPACES]) {
        if self.len.is_multiple_of(BLOCK) {
            self.bytes.resize(self.bytes.len() + BLOCK_BYTES, 0);
        }
        self.len += 1;
        self.set(self.len - 1, code);
    }

    /// Gives slot `slot` the code `code`.
    pub fn set(&mut self, slot: usize, code: &[u8; SUBSPACES]) {
        assert!(slot < self.len, "slot {slot} of {}", self.len);
        let block = &mut self.bytes[slot / BLOCK * BLOCK_BYTES..][..BLOCK_BYTES];
        let lane = slot % BLOCK;
        let (byte, shift) = (lane % 16, if lane < 16 { 0 } else { 4 });
        for (m, &c) in code.iter().enumerate() {
            let b = &mut block[m / 2 * 32 + m % 2 * 16 + byte];
            *b = (*b & !(0x0f << shift)) | ((c & 0x0f) << shift);
        }
    }

    /// The number of blocks.
    pub fn blocks(&self) -> usize {
        self.bytes.len() / BLOCK_BYTES
    }

    /// Writes into `out` the score of every slot of blocks `first..first +
    /// out.len() / BLOCK` under `table` (the sum of its entries; slots
    /// past the last hold code 0).
    pub fn scan(&self, first: usize, table: &Table, out: &mut [u16]) {
        let blocks = out.len() / BLOCK;
        let bytes = &self.bytes[first * BLOCK_BYTES..(first + blocks) * BLOCK_BYTES];
        match Isa::detect() {
            // SAFETY: the CPU has the features the function is compiled for.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { x86::scan_avx512(bytes, table, out) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86::scan_avx2(bytes, table, out) },
            Isa::Portable => scan_portable(bytes, table, out),
        }
    }
}

/// The widest vector instructions the kernels have a version for.
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") {
                return Isa::Avx512;
            }
            if has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// Appends to `out` the index of every score of `scores` at or above
/// `cut`, in order: a mask per 64 scores (vector compares where the CPU
/// has them), indices only where it is set.
pub fn at_least(scores: &[u16], cut: u16, out: &mut Vec<u32>) {
    match Isa::detect() {
        // SAFETY: the CPU has the features the function is compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::at_least_avx512(scores, cut, out) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::at_least_avx2(scores, cut, out) },
        Isa::Portable => at_least_any(scores, cut, out),
    }
}

#[inline(always)]
fn at_least_any(scores: &[u16], cut: u16, out: &mut Vec<u32>) {
    for (c, chunk) in scores.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (j, &s) in chunk.iter().enumerate() {
            mask |= u64::from(s >= cut) << j;
        }
        while mask != 0 {
            out.push((c * 64) as u32 + mask.trailing_zeros());
            mask &= mask - 1;
        }
    }
}

/// The scan, one byte at a time.
fn scan_portable(bytes: &[u8], table: &Table, out: &mut [u16]) {
    for (block, out) in bytes
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        out.fill(0);
        for (m, t) in table.iter().enumerate() {
            let codes = &block[m / 2 * 32 + m % 2 * 16..][..16];
            for (j, &b) in codes.iter().enumerate() {
                out[j] += u16::from(t[usize::from(b & 0x0f)]);
                out[j + 16] += u16::from(t[usize::from(b >> 4)]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The shuffle kernels. A shuffle looks up 16-byte tables per 128-bit
    //! lane, so a register holds the tables of 2 (AVX2) or 4 (AVX-512)
    //! sub-spaces, lined up with their codes. The byte results are added
    //! as 16-bit words: the even slots' from the low bytes, the odd ones'
    //! from the high bytes, and the lanes (sub-spaces) are summed last.
    use std::arch::x86_64::*;

    use super::{at_least_any, Table, BLOCK, BLOCK_BYTES};

    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn at_least_avx512(scores: &[u16], cut: u16, out: &mut Vec<u32>) {
        at_least_any(scores, cut, out)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn at_least_avx2(scores: &[u16], cut: u16, out: &mut Vec<u32>) {
        at_least_any(scores, cut, out)
    }

    /// How far ahead of the scan its codes are asked for (into the L2
    /// cache): on a cold cache the scan otherwise waits on memory between
    /// its sums (docs/BENCHMARKS.md).
    const AHEAD: usize = 64 << 10;

    /// Asks for the block `AHEAD` bytes past `block` (when inside `bytes`).
    #[inline(always)]
    unsafe fn fetch_ahead(bytes: &[u8], block: &[u8]) {
        let at = block.as_ptr() as usize - bytes.as_ptr() as usize + AHEAD;
        if at + BLOCK_BYTES <= bytes.len() {
            let p = bytes.as_ptr().add(at).cast::<i8>();
            for line in (0..BLOCK_BYTES).step_by(64) {
                _mm_prefetch::<_MM_HINT_T1>(p.add(line));
            }
        }
    }

    /// Adds the even and odd slots' bytes of `r` into `even` and `odd`.
    #[inline(always)]
    unsafe fn add_split(r: __m256i, even: &mut __m256i, odd: &mut __m256i) {
        *even = _mm256_add_epi16(*even, _mm256_and_si256(r, _mm256_set1_epi16(0xff)));
        *odd = _mm256_add_epi16(*odd, _mm256_srli_epi16(r, 8));
    }

    /// Sums the two lanes of `even` and `odd` (16 slots' words
    /// interleaved) into `out` (16 slots in order).
    #[inline(always)]
    unsafe fn finish(even: __m256i, odd: __m256i, out: &mut [u16]) {
        let e = _mm_add_epi16(
            _mm256_castsi256_si128(even),
            _mm256_extracti128_si256(even, 1),
        );
        let o = _mm_add_epi16(
            _mm256_castsi256_si128(odd),
            _mm256_extracti128_si256(odd, 1),
        );
        let p = out.as_mut_ptr().cast::<__m128i>();
        _mm_storeu_si128(p, _mm_unpacklo_epi16(e, o));
        _mm_storeu_si128(p.add(1), _mm_unpackhi_epi16(e, o));
    }

    /// Runs `each` on every block of `bytes` and its 32 scores in `out`,
    /// the block `AHEAD` bytes on asked for first.
    #[inline(always)]
    unsafe fn blocks(bytes: &[u8], out: &mut [u16], mut each: impl FnMut(&[u8], &mut [u16])) {
        for (block, out) in bytes
            .chunks_exact(BLOCK_BYTES)
            .zip(out.chunks_exact_mut(BLOCK))
        {
            fetch_ahead(bytes, block);
            each(block, out);
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn scan_avx2(bytes: &[u8], table: &Table, out: &mut [u16]) {
        let low = _mm256_set1_epi8(0x0f);
        let tables = table.as_ptr().cast::<__m256i>();
        blocks(bytes, out, |block, out| {
            let codes = block.as_ptr().cast::<__m256i>();
            let zero = _mm256_setzero_si256();
            let (mut e0, mut o0, mut e1, mut o1) = (zero, zero, zero, zero);
            for p in 0..BLOCK_BYTES / 32 {
                let c = _mm256_loadu_si256(codes.add(p));
                let t = _mm256_loadu_si256(tables.add(p));
                let lo = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low));
                let hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
                add_split(lo, &mut e0, &mut o0);
                add_split(hi, &mut e1, &mut o1);
            }
            finish(e0, o0, &mut out[..16]);
            finish(e1, o1, &mut out[16..]);
        });
    }

    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub unsafe fn scan_avx512(bytes: &[u8], table: &Table, out: &mut [u16]) {
        let low = _mm512_set1_epi8(0x0f);
        let byte = _mm512_set1_epi16(0xff);
        let tables = table.as_ptr().cast::<__m512i>();
        // The sum of a register's two 256-bit halves.
        let half = |v: __m512i| {
            _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))
        };
        blocks(bytes, out, |block, out| {
            let codes = block.as_ptr().cast::<__m512i>();
            let zero = _mm512_setzero_si512();
            let (mut e0, mut o0, mut e1, mut o1) = (zero, zero, zero, zero);
            for p in 0..BLOCK_BYTES / 64 {
                let c = _mm512_loadu_si512(codes.add(p));
                let t = _mm512_loadu_si512(tables.add(p));
                let lo = _mm512_shuffle_epi8(t, _mm512_and_si512(c, low));
                let hi = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), low));
                e0 = _mm512_add_epi16(e0, _mm512_and_si512(lo, byte));
                o0 = _mm512_add_epi16(o0, _mm512_srli_epi16(lo, 8));
                e1 = _mm512_add_epi16(e1, _mm512_and_si512(hi, byte));
                o1 = _mm512_add_epi16(o1, _mm512_srli_epi16(hi, 8));
            }
            finish(half(e0), half(o0), &mut out[..16]);
            finish(half(e1), half(o1), &mut out[16..]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_codes(n: usize, seed: u64) -> (Codes, Vec<[u8; SUBSPACES]>) {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        };
        let plain: Vec<[u8; SUBSPACES]> = (0..n)
            .map(|_| std::array::from_fn(|_| next() & 0x0f))
            .collect();
        let mut codes = Codes::default();
        for c in &plain {
            codes.push(c);
        }
        (codes, plain)
    }

    fn table(seed: u8) -> Table {
        std::array::from_fn(|m| std::array::from_fn(|k| (m as u8 * 37 + k as u8 * 91) ^ seed))
    }

    /// Every kernel this CPU runs gives each slot the sum of its codes'
    /// entries, whatever the block and however many slots the last holds.
    #[test]
    fn every_kernel_sums_the_table_entries_of_each_slot() {
        for n in [1usize, 31, 32, 33, 100] {
            let (mut codes, plain) = random_codes(n, n as u64);
            let t = table(n as u8);
            let want: Vec<u16> = plain
                .iter()
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .map(|(m, &k)| u16::from(t[m][k as usize]))
                        .sum()
                })
                .collect();
            let mut out = vec![0; codes.blocks() * BLOCK];
            codes.scan(0, &t, &mut out);
            assert_eq!(&out[..n], &want[..], "{n} slots");
            let mut portable = vec![0; out.len()];
            scan_portable(&codes.bytes, &t, &mut portable);
            assert_eq!(portable, out);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = vec![0; out.len()];
                // SAFETY: the CPU has AVX2.
                unsafe { x86::scan_avx2(&codes.bytes, &t, &mut avx2) };
                assert_eq!(avx2, out);
            }
            // A code changed in place is scored by its new value.
            codes.set(n - 1, &[15; SUBSPACES]);
            codes.scan(0, &t, &mut out);
            let top: u16 = t.iter().map(|e| u16::from(e[15])).sum();
            assert_eq!(out[n - 1], top);
            if n > 1 {
                assert_eq!(out[n - 2], want[n - 2]);
            }
        }
    }

    #[test]
    fn at_least_lists_the_indices_at_or_over_the_cut_in_order() {
        let scores: Vec<u16> = (0..200u16).map(|i| (i * 37) % 101).collect();
        let mut out = Vec::new();
        at_least(&scores, 90, &mut out);
        let want: Vec<u32> = (0..200u32).filter(|&i| scores[i as usize] >= 90).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_later_block_is_scanned_on_its_own() {
        let (codes, _) = random_codes(96, 5);
        let t = table(9);
        let mut all = vec![0; 96];
        codes.scan(0, &t, &mut all);
        let mut last = vec![0; 32];
        codes.scan(2, &t, &mut last);
        assert_eq!(last, all[64..]);
    }
}
