//! The face's surroundings from frame to frame. A live person answering a
//! challenge sits in one room in front of one camera: while the head turns,
//! the wall, the lamp and the shelf around it stay where they are. Photos of
//! the same person shown one after another (a pose album) each bring their
//! own background, so at every swap nearly everything around the face
//! changes at once.
//!
//! Measured on the grey thumbnails of the duplicate check (whole frames,
//! [`super::challenge::thumbnail`]) in cells of 8×8 thumbnail pixels; the
//! cells near the face in either frame of a pair (the head, its hair and
//! the shoulders move with it) are left out, and so are those more than a
//! couple of face widths away.

/// Side of a cell, in thumbnail pixels.
const CELL: usize = 8;

/// Mean absolute difference of a cell (grey levels, after matching the two
/// frames' brightness) above which it changed: a still room under a
/// webcam's noise and compression moves by 1-3, a swapped photo by tens.
const CELL_CHANGED: f32 = 10.0;

/// Fewest cells around the face for a pair of frames to be measured.
const MIN_CELLS: usize = 6;

/// A frame as this check sees it: its grey thumbnail (`w`×`h`) and the box
/// of its face, if it has one, as fractions of the frame's width and
/// height (`[x1, y1, x2, y2]`).
#[derive(Debug, Clone, Copy)]
pub struct Surroundings<'a> {
    pub thumb: &'a [u8],
    pub face: Option<[f32; 4]>,
}

/// Whether the cell at (`cx`, `cy`) overlaps `face` widened by `side` of
/// its width on each side, raised by `up` of its height and lowered by
/// `down`.
fn overlaps(
    face: &[f32; 4],
    [side, up, down]: [f32; 3],
    cell: (usize, usize),
    w: usize,
    h: usize,
) -> bool {
    let (fw, fh) = (face[2] - face[0], face[3] - face[1]);
    let (x0, x1) = (face[0] - side * fw, face[2] + side * fw);
    let (y0, y1) = (face[1] - up * fh, face[3] + down * fh);
    let (cx, cy) = cell;
    let (l, r) = (
        (cx * CELL) as f32 / w as f32,
        ((cx + 1) * CELL) as f32 / w as f32,
    );
    let (t, b) = (
        (cy * CELL) as f32 / h as f32,
        ((cy + 1) * CELL) as f32 / h as f32,
    );
    r > x0 && l < x1 && b > y0 && t < y1
}

/// What moves with the face: the hair above it, the neck and shoulders
/// below, the ears and a turn to either side.
const MOVES_WITH_FACE: [f32; 3] = [0.5, 0.5, 1.0];

/// How far around the face its surroundings are looked at: a phone held
/// far off shows a small picture whose own background is all that surrounds
/// the face, however much of the room is in view.
const AROUND_FACE: [f32; 3] = [2.0, 2.0, 3.0];

/// Largest shift of the whole view between two frames that is allowed
/// for, in thumbnail pixels (a camera nudged, a phone in a hand).
const MAX_SHIFT: i32 = 3;

/// The share of the cells around the face that changed between `a` and
/// `b`, or `None` when neither has a face or too few cells are far enough
/// from it. The view may have moved a little as a whole: `b` is compared
/// at the shift, within [`MAX_SHIFT`], where the fewest cells changed.
pub fn changed_share(a: &Surroundings, b: &Surroundings, w: usize, h: usize) -> Option<f32> {
    if a.thumb.len() != w * h || b.thumb.len() != w * h {
        return None;
    }
    let (cols, rows) = (w / CELL, h / CELL);
    let faces: Vec<&[f32; 4]> = [&a.face, &b.face].into_iter().flatten().collect();
    let cells: Vec<(usize, usize)> = (0..rows)
        .flat_map(|cy| (0..cols).map(move |cx| (cx, cy)))
        .filter(|&c| {
            faces.iter().any(|f| overlaps(f, AROUND_FACE, c, w, h))
                && faces.iter().all(|f| !overlaps(f, MOVES_WITH_FACE, c, w, h))
        })
        .collect();
    if cells.len() < MIN_CELLS {
        return None;
    }
    // The camera's exposure may follow the face: match the brightness of
    // the surroundings before comparing them.
    let mean = |t: &[u8]| {
        let sum: f64 = cells
            .iter()
            .flat_map(|&(cx, cy)| cell_pixels(cx, cy, w))
            .map(|i| f64::from(t[i]))
            .sum();
        1.0 + sum
    };
    let gain = (mean(a.thumb) / mean(b.thumb)) as f32;
    // The still view first: a camera that did not move settles it at once.
    let mut shifts: Vec<(i32, i32)> = (-MAX_SHIFT..=MAX_SHIFT)
        .flat_map(|dy| (-MAX_SHIFT..=MAX_SHIFT).map(move |dx| (dx, dy)))
        .collect();
    shifts.sort_by_key(|&(dx, dy)| dx * dx + dy * dy);
    let mut fewest = cells.len();
    for shift in shifts {
        let changed = cells
            .iter()
            .filter(|&&c| cell_changed(a.thumb, b.thumb, gain, c, shift, w, h))
            .count();
        fewest = fewest.min(changed);
        if fewest == 0 {
            break;
        }
    }
    Some(fewest as f32 / cells.len() as f32)
}

/// Indices of the pixels of cell (`cx`, `cy`) in a thumbnail `w` wide.
fn cell_pixels(cx: usize, cy: usize, w: usize) -> impl Iterator<Item = usize> {
    (0..CELL).flat_map(move |y| (0..CELL).map(move |x| (cy * CELL + y) * w + cx * CELL + x))
}

/// Whether cell (`cx`, `cy`) of `a` and the same pixels of `b` (scaled by
/// `gain`) moved by `shift` differ by more than [`CELL_CHANGED`] on
/// average; pixels moved out of the thumbnail are left out. Stops as soon
/// as the difference is past it (a swapped photo's cells are, within a few
/// pixels).
fn cell_changed(
    a: &[u8],
    b: &[u8],
    gain: f32,
    (cx, cy): (usize, usize),
    (dx, dy): (i32, i32),
    w: usize,
    h: usize,
) -> bool {
    // The cell's rows and columns whose shifted pixel is in the thumbnail.
    let span = |c: usize, d: i32, n: usize| {
        let lo = (c * CELL) as i32;
        lo.max(-d) as usize..(lo + CELL as i32).min(n as i32 - d).max(0) as usize
    };
    let (rows, cols) = (span(cy, dy, h), span(cx, dx, w));
    let limit = CELL_CHANGED * (rows.len() * cols.len()) as f32;
    let mut sum = 0.0f32;
    for y in rows {
        let (row_a, row_b) = (&a[y * w..], &b[(y as i32 + dy) as usize * w..]);
        for x in cols.clone() {
            let xb = (x as i32 + dx) as usize;
            sum += (f32::from(row_a[x]) - gain * f32::from(row_b[xb])).abs();
        }
        if sum > limit {
            return true;
        }
    }
    false
}

/// The largest share of the surroundings that changed between two
/// consecutive frames, or `None` when no pair could be measured.
pub fn surround_change(frames: &[Surroundings], w: usize, h: usize) -> Option<f32> {
    frames
        .windows(2)
        .filter_map(|p| changed_share(&p[0], &p[1], w, h))
        .reduce(f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 96;
    const H: usize = 72;
    const FACE: [f32; 4] = [0.4, 0.3, 0.6, 0.6];

    /// A room: a texture of 16-pixel blocks that `seed` varies, with a
    /// face-sized patch of `face_grey` at `FACE`, all scaled by `gain`.
    fn room(seed: u32, face_grey: u8, gain: f32) -> Vec<u8> {
        (0..W * H)
            .map(|i| {
                let (x, y) = (i % W, i / W);
                let (fx, fy) = (x as f32 / W as f32, y as f32 / H as f32);
                let v = if (FACE[0]..FACE[2]).contains(&fx) && (FACE[1]..FACE[3]).contains(&fy) {
                    face_grey
                } else {
                    (((x / 16) as u32 * 7 + (y / 16) as u32 * 13 + seed) * 37 % 200) as u8 + 20
                };
                (f32::from(v) * gain).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    }

    /// A frame of `thumb` with its face at `FACE`.
    fn seen(thumb: &[u8]) -> Surroundings<'_> {
        Surroundings {
            thumb,
            face: Some(FACE),
        }
    }

    #[test]
    fn a_head_turning_in_one_room_leaves_the_room_alone() {
        let (a, b) = (room(1, 120, 1.0), room(1, 200, 1.1));
        assert_eq!(surround_change(&[seen(&a), seen(&b)], W, H), Some(0.0));
    }

    #[test]
    fn another_photo_brings_another_background() {
        let (a, b) = (room(1, 120, 1.0), room(5, 120, 1.0));
        let share = surround_change(&[seen(&a), seen(&a), seen(&b)], W, H).unwrap();
        assert!(share > 0.5, "{share}");
    }

    #[test]
    fn a_camera_nudged_as_a_whole_is_not_a_new_background() {
        let a = room(1, 120, 1.0);
        // The whole view two pixels to the right and one down.
        let b: Vec<u8> = (0..W * H)
            .map(|i| {
                let (x, y) = ((i % W).saturating_sub(2), (i / W).saturating_sub(1));
                a[y * W + x]
            })
            .collect();
        assert_eq!(changed_share(&seen(&a), &seen(&b), W, H), Some(0.0));
    }

    #[test]
    fn a_face_filling_the_frame_leaves_nothing_to_measure() {
        let a = room(1, 120, 1.0);
        let big = Some([0.1, 0.1, 0.9, 0.9]);
        let frames = [
            Surroundings {
                thumb: &a,
                face: big,
            },
            Surroundings {
                thumb: &a,
                face: big,
            },
        ];
        assert_eq!(surround_change(&frames, W, H), None);
        let faceless = Surroundings {
            thumb: &a,
            face: None,
        };
        assert_eq!(changed_share(&faceless, &faceless, W, H), None);
    }
}
