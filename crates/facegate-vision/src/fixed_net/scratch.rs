//! The activation buffers of a network run: two that operations read and
//! write in turn, one for the saved tensor of a residual addition, one for
//! a zero-padded copy of a layer's input. They are kept per thread and
//! reused from run to run: a detection runs the networks dozens of times,
//! and fresh buffers cost their zeroing and page faults each time.

use std::cell::RefCell;

/// Where activations are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// The caller's input.
    Input,
    A,
    B,
    Saved,
}

impl Loc {
    /// The buffer an ordinary operation reading here writes to.
    pub fn other(self) -> Loc {
        match self {
            Loc::A => Loc::B,
            _ => Loc::A,
        }
    }
}

#[derive(Default)]
pub(super) struct Buffers {
    a: Vec<i16>,
    b: Vec<i16>,
    saved: Vec<i16>,
    saved_len: usize,
    padded: Vec<i16>,
}

impl Buffers {
    /// The buffer at `loc`, moved out (put it back with [`Self::put`]).
    pub fn take(&mut self, loc: Loc) -> Vec<i16> {
        std::mem::take(self.slot(loc))
    }

    /// Puts a buffer back; `len` values of it are the activations.
    pub fn put(&mut self, loc: Loc, buf: Vec<i16>, len: usize) {
        if loc == Loc::Saved {
            self.saved_len = len;
        }
        *self.slot(loc) = buf;
    }

    /// The length of the saved tensor.
    pub fn saved_len(&self) -> usize {
        self.saved_len
    }

    pub fn take_padded(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.padded)
    }

    pub fn put_padded(&mut self, buf: Vec<i16>) {
        if buf.capacity() > self.padded.capacity() {
            self.padded = buf;
        }
    }

    /// The activations at `at` (a place and a length).
    pub fn view<'a>(&'a self, input: &'a [i16], at: (Loc, usize)) -> &'a [i16] {
        match at.0 {
            Loc::Input => input,
            Loc::A => &self.a[..at.1],
            Loc::B => &self.b[..at.1],
            Loc::Saved => &self.saved[..at.1],
        }
    }

    fn slot(&mut self, loc: Loc) -> &mut Vec<i16> {
        match loc {
            Loc::A => &mut self.a,
            Loc::B => &mut self.b,
            Loc::Saved => &mut self.saved,
            Loc::Input => unreachable!("the input is the caller's"),
        }
    }

    /// Gives back buffers larger than [`KEPT`].
    fn trim(&mut self) {
        for b in [&mut self.a, &mut self.b, &mut self.saved, &mut self.padded] {
            if b.capacity() > KEPT {
                *b = Vec::new();
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Buffers larger than this (in values: 4 MB) are given back after the run
/// that needed them (large photos), so an idle thread holds little.
const KEPT: usize = 2 << 20;

/// Runs `f` with this thread's buffers.
pub(super) fn with_buffers<T>(f: impl FnOnce(&mut Buffers) -> T) -> T {
    SCRATCH.with(|scratch| {
        // A network never runs inside another, so the borrow succeeds;
        // fresh buffers would be as correct, only slower.
        let mut fresh = Buffers::default();
        let mut held = scratch.try_borrow_mut();
        let bufs = match held.as_deref_mut() {
            Ok(bufs) => bufs,
            Err(_) => &mut fresh,
        };
        let out = f(bufs);
        bufs.trim();
        out
    })
}

/// The first `len` values of `buf`, grown if needed (old values stay:
/// every kernel writes its whole output).
pub(super) fn sized(buf: &mut Vec<i16>, len: usize) -> &mut [i16] {
    if buf.len() < len {
        buf.resize(len, 0);
    }
    &mut buf[..len]
}

/// `inp` (`w × h × c`) with `pad` (top, left, bottom, right) zero pixels
/// around it, into `out`; returns the padded size.
pub(super) fn pad(
    inp: &[i16],
    w: usize,
    h: usize,
    c: usize,
    pad: [usize; 4],
    out: &mut Vec<i16>,
) -> (usize, usize) {
    let [t, l, b, r] = pad;
    let (pw, ph) = (w + l + r, h + t + b);
    let out = sized(out, pw * ph * c);
    // Only the border is zeroed: the inside is overwritten.
    let stride = pw * c;
    out[..t * stride].fill(0);
    out[(t + h) * stride..].fill(0);
    for (y, row) in inp.chunks_exact(w * c).enumerate() {
        let line = &mut out[(y + t) * stride..][..stride];
        line[..l * c].fill(0);
        line[l * c..(l + w) * c].copy_from_slice(row);
        line[(l + w) * c..].fill(0);
    }
    (pw, ph)
}
