//! Detection on the labelled photos: face counts, single-face mode,
//! border-cut faces and odd formats.

mod common;

use common::*;
use facegate_vision::VisionError;

#[test]
fn every_labelled_image_has_the_right_number_of_faces() {
    let mut wrong = Vec::new();
    for l in labels() {
        let img = ENGINE
            .decode(&photo(&l.file))
            .unwrap_or_else(|e| panic!("{}: {e}", l.file));
        let n = ENGINE.faces_in_view(&img).unwrap().len();
        if n != l.faces {
            wrong.push(format!("{}: expected {}, found {n}", l.file, l.faces));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn group_photo_has_six_faces_with_landmarks_inside_their_boxes() {
    let img = ENGINE.decode(&photo("multi_group.jpg")).unwrap();
    let faces = ENGINE.faces_in_view(&img).unwrap();
    assert_eq!(faces.len(), 6);
    for (f, _) in faces {
        for [x, y] in f.landmarks {
            assert!(
                x >= f.bbox.x1 - 5.0
                    && x <= f.bbox.x2 + 5.0
                    && y >= f.bbox.y1 - 5.0
                    && y <= f.bbox.y2 + 5.0
            );
        }
        // Eyes above the mouth, left eye left of the right eye.
        assert!(f.landmarks[0][0] < f.landmarks[1][0]);
        assert!(f.landmarks[0][1] < f.landmarks[3][1] && f.landmarks[1][1] < f.landmarks[4][1]);
    }
}

#[test]
fn multi_face_images_are_refused_in_single_face_mode() {
    for l in labels().iter().filter(|l| l.faces > 1) {
        match ENGINE.analyze_single(&photo(&l.file), false) {
            Err(VisionError::MultipleFaces(n)) => assert_eq!(n, l.faces, "{}", l.file),
            other => panic!(
                "{}: expected MultipleFaces, got {:?}",
                l.file,
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn border_cut_faces_and_rgba_png_work() {
    for f in [
        "obama_partial_1.jpg",
        "obama_partial_2.jpg",
        "format_32bit_rgba.png",
        "obama_240p.jpg",
    ] {
        let face = ENGINE
            .analyze_single(&photo(f), false)
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        let reference = ENGINE.analyze_single(&photo("obama_2.jpg"), false).unwrap();
        let s = ENGINE
            .compare(&face.analysis.embedding, &reference.analysis.embedding)
            .unwrap();
        assert!(s >= ENGINE.threshold(), "{f} vs obama_2: {s}");
    }
}

#[test]
fn bad_inputs_give_typed_errors() {
    use facegate_vision::InvalidImageReason as R;
    let e = |bytes: &[u8]| ENGINE.analyze_single(bytes, false).map(|_| ()).unwrap_err();
    assert!(matches!(e(&[]), VisionError::InvalidImage(R::Empty)));
    let jpeg = photo("obama_2.jpg");
    assert!(matches!(
        e(&jpeg[..jpeg.len() / 3]),
        VisionError::InvalidImage(R::Corrupt(_))
    ));
    assert!(matches!(
        e(b"name,identity\nobama,barack\n"),
        VisionError::InvalidImage(R::UnsupportedFormat)
    ));
    let err = e(&png_header(100_000, 100_000));
    assert!(matches!(err, VisionError::TooLarge(_)), "{err:?}");
    let one = encode_png(&image::RgbImage::from_pixel(
        1,
        1,
        image::Rgb([200, 10, 10]),
    ));
    let err = e(&one);
    assert!(
        matches!(
            err,
            VisionError::InvalidImage(R::TooSmall {
                width: 1,
                height: 1
            })
        ),
        "{err:?}"
    );
    let landscape = encode_png(&image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([(x / 2) as u8, (100 + y / 3) as u8, 180])
    }));
    assert!(matches!(e(&landscape), VisionError::NoFace));
}

fn encode_png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A decompression bomb's shape: a valid PNG whose header claims `w`×`h`
/// pixels, followed by a few bytes of compressed data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    for (kind, data) in [
        (&b"IHDR"[..], ihdr),
        (b"IDAT", vec![0x78, 0x9C, 0x63, 0, 0, 0, 1, 0, 1]),
        (b"IEND", vec![]),
    ] {
        out.extend((data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend(&data);
        out.extend(&chunk);
        out.extend(crc32(&chunk).to_be_bytes());
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn tracking_from_the_previous_box_finds_the_same_faces() {
    use facegate_vision::BoundingBox;
    // One face: tracked from its own box, then from a box shifted by a
    // tenth of its side (the head moved), it is found at the same place.
    let img = ENGINE.decode(&photo("obama_1.jpg")).unwrap();
    let full = ENGINE.detect(&img).unwrap();
    let face = full[0];
    let side = face.bbox.width();
    let moved = BoundingBox {
        x1: face.bbox.x1 + 0.1 * side,
        x2: face.bbox.x2 + 0.1 * side,
        ..face.bbox
    };
    for prev in [face.bbox, moved] {
        let tracked = ENGINE.detect_tracked(&img, &prev).unwrap();
        assert_eq!(tracked.len(), full.len());
        assert!(tracked[0].bbox.iou(&face.bbox) > 0.8, "{tracked:?}");
        for (a, b) in tracked[0].landmarks.iter().zip(face.landmarks) {
            assert!(
                (a[0] - b[0]).hypot(a[1] - b[1]) < 0.05 * side,
                "{a:?} {b:?}"
            );
        }
    }
    // Two people: tracking one still finds the other.
    let img = ENGINE.decode(&photo("multi_two_people.jpg")).unwrap();
    let full = ENGINE.faces_in_view(&img).unwrap();
    assert_eq!(full.len(), 2);
    let tracked = ENGINE.detect_tracked(&img, &full[0].0.bbox).unwrap();
    for (f, _) in &full {
        assert!(
            tracked.iter().any(|t| t.bbox.iou(&f.bbox) > 0.5),
            "{tracked:?}"
        );
    }
    // A box where there is no face: the face is found elsewhere.
    let nowhere = BoundingBox {
        x1: 0.0,
        y1: 0.0,
        x2: 40.0,
        y2: 40.0,
    };
    let img = ENGINE.decode(&photo("obama_1.jpg")).unwrap();
    let found = ENGINE.detect_tracked(&img, &nowhere).unwrap();
    assert!(found[0].bbox.iou(&face.bbox) > 0.8, "{found:?}");
}
