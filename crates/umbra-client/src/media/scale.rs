//! Downscaling I420 pictures for simulcast's smaller layers.
//!
//! An area average (box filter): each output sample is the mean of the source samples its area
//! covers, weighted by how much of each it covers. For the halvings simulcast uses, that is the
//! plain mean of 2x2 blocks; for other ratios it still never skips source samples, so fine
//! detail averages out instead of aliasing into moiré, which a bilinear tap at ratio 4 would do.

use super::VideoFrame;

/// `frame` scaled to `width` x `height` (each at least 1 and at most the source's size).
/// `None` when the target is empty or larger than the source: upscaling is never wanted here.
pub fn downscale(frame: &VideoFrame, width: u32, height: u32) -> Option<VideoFrame> {
    if width == 0 || height == 0 || width > frame.width || height > frame.height {
        return None;
    }
    if width == frame.width && height == frame.height {
        return Some(frame.clone());
    }
    let mut data = Vec::with_capacity(VideoFrame::byte_len(width, height));
    let (scw, sch) = VideoFrame::chroma_size(frame.width, frame.height);
    let (dcw, dch) = VideoFrame::chroma_size(width, height);
    scale_plane(frame.y(), frame.width, frame.height, width, height, &mut data);
    scale_plane(frame.u(), scw, sch, dcw, dch, &mut data);
    scale_plane(frame.v(), scw, sch, dcw, dch, &mut data);
    Some(VideoFrame { width, height, data })
}

/// How one output index covers the source: for each source index it touches, the weight in
/// units of 1/`dst` of a source sample (the weights of one output sum to `src`).
fn coverage(src: u32, dst: u32) -> Vec<Vec<(usize, u32)>> {
    // Output i covers source interval [i*src/dst, (i+1)*src/dst); in units of 1/dst that is
    // [i*src, (i+1)*src), all integers.
    (0..dst)
        .map(|i| {
            let (start, end) = (i * src, (i + 1) * src);
            let mut taps = Vec::new();
            let mut s = start / dst;
            while s * dst < end {
                let lo = (s * dst).max(start);
                let hi = ((s + 1) * dst).min(end);
                taps.push((s as usize, hi - lo));
                s += 1;
            }
            taps
        })
        .collect()
}

fn scale_plane(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32, out: &mut Vec<u8>) {
    let cols = coverage(sw, dw);
    let rows = coverage(sh, dh);
    // Sum of all weights of one output sample: (sw) * (sh) in units of 1/(dw*dh).
    let total = u64::from(sw) * u64::from(sh);
    let stride = sw as usize;
    for row_taps in &rows {
        for col_taps in &cols {
            let mut acc: u64 = 0;
            for &(r, wr) in row_taps {
                let line = &src[r * stride..(r + 1) * stride];
                for &(c, wc) in col_taps {
                    acc += u64::from(line[c]) * u64::from(wr) * u64::from(wc);
                }
            }
            // Rounded to nearest.
            out.push(((acc + total / 2) / total) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_from(width: u32, height: u32, luma: impl Fn(u32, u32) -> u8, chroma: u8) -> VideoFrame {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.push(luma(x, y));
            }
        }
        let (cw, ch) = VideoFrame::chroma_size(width, height);
        data.extend(std::iter::repeat_n(chroma, (2 * cw * ch) as usize));
        VideoFrame::from_i420(width, height, data).unwrap()
    }

    #[test]
    fn halving_averages_each_two_by_two_block() {
        // Luma 0..16 in a 4x4 grid: each 2x2 block's mean, rounded.
        let f = frame_from(4, 4, |x, y| (y * 4 + x) as u8 * 10, 128);
        let h = downscale(&f, 2, 2).unwrap();
        assert_eq!((h.width, h.height), (2, 2));
        // Block (0,0): 0,10,40,50 → 25; (1,0): 20,30,60,70 → 45; (0,1): 80,90,120,130 → 105.
        assert_eq!(h.y(), &[25, 45, 105, 125]);
        assert_eq!(h.u(), &[128]);
        assert_eq!(h.v(), &[128]);
        assert_eq!(h.data.len(), VideoFrame::byte_len(2, 2));
    }

    #[test]
    fn quarter_of_a_striped_picture_is_flat_grey_not_aliased() {
        // Alternate columns of 0 and 200: a point sampler would keep one colour; the average
        // over every source column is 100 everywhere.
        let f = frame_from(64, 32, |x, _| if x % 2 == 0 { 0 } else { 200 }, 90);
        let q = downscale(&f, 16, 8).unwrap();
        assert!(q.y().iter().all(|&v| v == 100), "{:?}", &q.y()[..16]);
        assert!(q.u().iter().chain(q.v()).all(|&v| v == 90));
    }

    #[test]
    fn non_integer_ratio_keeps_a_gradient_monotonic_and_in_range() {
        let f = frame_from(30, 10, |x, _| (x * 8) as u8, 128);
        let s = downscale(&f, 20, 4).unwrap();
        let row = &s.y()[..20];
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        assert!(row[0] <= 8 && row[19] >= 224, "{row:?}");
        // Odd sizes: chroma planes are rounded up and still filled.
        let o = downscale(&frame_from(7, 5, |_, _| 50, 60), 3, 3).unwrap();
        assert_eq!(o.data.len(), VideoFrame::byte_len(3, 3));
        assert!(o.y().iter().all(|&v| v == 50) && o.u().iter().all(|&v| v == 60));
    }

    #[test]
    fn refuses_upscaling_and_empty_targets_and_copies_same_size() {
        let f = VideoFrame::black(8, 8);
        assert_eq!(downscale(&f, 16, 8), None);
        assert_eq!(downscale(&f, 0, 4), None);
        assert_eq!(downscale(&f, 8, 8), Some(f));
    }
}
