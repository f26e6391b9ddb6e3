//! `otc_video_frame`: an I420 picture, as delivered to `on_render_frame` and as supplied by a
//! video capturer; plus the built-in test pattern and PSNR for C code that checks pictures.

use std::ffi::{c_double, c_int, c_long};

use umbra_client::media::VideoFrame;
use umbra_client::media::analysis::psnr;
use umbra_client::media::pattern::TestPattern;

use crate::errors::{OTC_INTERNAL_ERROR, OTC_INVALID_PARAMETER, OTC_SUCCESS, otc_status};
use crate::ffi::{guard, ref_arg};

/// Pixel format of a frame. Umbra frames are always planar YUV 4:2:0 (I420).
pub const OTC_VIDEO_FRAME_FORMAT_UNKNOWN: c_int = 0;
pub const OTC_VIDEO_FRAME_FORMAT_YUV420P: c_int = 1;

/// Plane indexes for `otc_video_frame_get_plane_binary_data` and friends.
pub const OTC_VIDEO_FRAME_PLANE_Y: c_int = 0;
pub const OTC_VIDEO_FRAME_PLANE_U: c_int = 1;
pub const OTC_VIDEO_FRAME_PLANE_V: c_int = 2;

/// Largest width or height the SDK accepts for a frame it is given.
pub const OTC_VIDEO_FRAME_MAX_DIMENSION: c_int = 4096;

/// An I420 picture (opaque). Planes are tightly packed: the Y stride is the width, the U and V
/// strides are `(width + 1) / 2`.
pub struct otc_video_frame {
    pub(crate) frame: VideoFrame,
}

impl otc_video_frame {
    fn plane(&self, plane: c_int) -> Option<&[u8]> {
        match plane {
            OTC_VIDEO_FRAME_PLANE_Y => Some(self.frame.y()),
            OTC_VIDEO_FRAME_PLANE_U => Some(self.frame.u()),
            OTC_VIDEO_FRAME_PLANE_V => Some(self.frame.v()),
            _ => None,
        }
    }

    fn stride(&self, plane: c_int) -> Option<u32> {
        match plane {
            OTC_VIDEO_FRAME_PLANE_Y => Some(self.frame.width),
            OTC_VIDEO_FRAME_PLANE_U | OTC_VIDEO_FRAME_PLANE_V => {
                Some(VideoFrame::chroma_size(self.frame.width, self.frame.height).0)
            }
            _ => None,
        }
    }
}

fn valid_size(width: c_int, height: c_int) -> bool {
    (1..=OTC_VIDEO_FRAME_MAX_DIMENSION).contains(&width) && (1..=OTC_VIDEO_FRAME_MAX_DIMENSION).contains(&height)
}

fn boxed(frame: VideoFrame) -> *mut otc_video_frame {
    Box::into_raw(Box::new(otc_video_frame { frame }))
}

/// Copies one plane of `rows` rows of `row_bytes` bytes, `stride` apart, from `src`.
///
/// # Safety
/// `src` points to at least `stride * (rows - 1) + row_bytes` readable bytes.
unsafe fn copy_plane(out: &mut Vec<u8>, src: *const u8, stride: usize, row_bytes: usize, rows: usize) {
    for r in 0..rows {
        // SAFETY: row r starts at r * stride and has row_bytes bytes, inside what the caller
        // guarantees.
        out.extend_from_slice(unsafe { std::slice::from_raw_parts(src.add(r * stride), row_bytes) });
    }
}

/// A new frame copied from a contiguous buffer in `format` (only
/// `OTC_VIDEO_FRAME_FORMAT_YUV420P`: Y, then U, then V, tightly packed, so `buffer` holds
/// `width * height + 2 * ((width + 1) / 2) * ((height + 1) / 2)` bytes). The caller owns the
/// result and frees it with `otc_video_frame_delete`. NULL for a NULL buffer, another format, or a
/// size outside 1..=4096.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_new(
    format: c_int,
    width: c_int,
    height: c_int,
    buffer: *const u8,
) -> *mut otc_video_frame {
    guard(std::ptr::null_mut(), || {
        if format != OTC_VIDEO_FRAME_FORMAT_YUV420P || !valid_size(width, height) || buffer.is_null() {
            return std::ptr::null_mut();
        }
        let len = VideoFrame::byte_len(width as u32, height as u32);
        // SAFETY: the caller guarantees `buffer` holds an I420 picture of this size (len bytes).
        let data = unsafe { std::slice::from_raw_parts(buffer, len) }.to_vec();
        VideoFrame::from_i420(width as u32, height as u32, data).map_or(std::ptr::null_mut(), boxed)
    })
}

/// A new I420 frame copied from three planes with their strides (each stride at least the
/// plane's width: `width` for Y, `(width + 1) / 2` for U and V). The caller owns the result and
/// frees it with `otc_video_frame_delete`. NULL for a NULL plane, a too small stride, or a size
/// outside 1..=4096.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn otc_video_frame_new_I420(
    width: c_int,
    height: c_int,
    y_plane: *const u8,
    y_stride: c_int,
    u_plane: *const u8,
    u_stride: c_int,
    v_plane: *const u8,
    v_stride: c_int,
) -> *mut otc_video_frame {
    guard(std::ptr::null_mut(), || {
        if !valid_size(width, height) || y_plane.is_null() || u_plane.is_null() || v_plane.is_null() {
            return std::ptr::null_mut();
        }
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        if (y_stride as i64) < w as i64 || (u_stride as i64) < cw as i64 || (v_stride as i64) < cw as i64 {
            return std::ptr::null_mut();
        }
        let mut data = Vec::with_capacity(w * h + 2 * cw * ch);
        // SAFETY: the caller guarantees each plane has its rows at its stride.
        unsafe {
            copy_plane(&mut data, y_plane, y_stride as usize, w, h);
            copy_plane(&mut data, u_plane, u_stride as usize, cw, ch);
            copy_plane(&mut data, v_plane, v_stride as usize, cw, ch);
        }
        VideoFrame::from_i420(width as u32, height as u32, data).map_or(std::ptr::null_mut(), boxed)
    })
}

/// A copy of `frame` that the caller owns (free it with `otc_video_frame_delete`); use it to keep
/// a frame from `on_render_frame` beyond the callback. NULL if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_copy(frame: *const otc_video_frame) -> *mut otc_video_frame {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.map_or(std::ptr::null_mut(), |f| boxed(f.frame.clone()))
    })
}

/// Frees a frame the caller owns (from `otc_video_frame_new*`, `otc_video_frame_copy` or
/// `otc_test_pattern_frame_new`; never one handed to a callback). NULL gives
/// `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_delete(frame: *mut otc_video_frame) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if frame.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes a frame it owns, once.
        drop(unsafe { Box::from_raw(frame) });
        OTC_SUCCESS
    })
}

/// Width in pixels; -1 if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_width(frame: *const otc_video_frame) -> c_int {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.map_or(-1, |f| f.frame.width as c_int)
    })
}

/// Height in pixels; -1 if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_height(frame: *const otc_video_frame) -> c_int {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.map_or(-1, |f| f.frame.height as c_int)
    })
}

/// `OTC_VIDEO_FRAME_FORMAT_YUV420P`, or `OTC_VIDEO_FRAME_FORMAT_UNKNOWN` if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_format(frame: *const otc_video_frame) -> c_int {
    guard(OTC_VIDEO_FRAME_FORMAT_UNKNOWN, || {
        // SAFETY: the caller passes NULL or a live frame.
        if unsafe { ref_arg(frame) }.is_some() {
            OTC_VIDEO_FRAME_FORMAT_YUV420P
        } else {
            OTC_VIDEO_FRAME_FORMAT_UNKNOWN
        }
    })
}

/// The whole picture (Y, U, V contiguous), owned by the frame; NULL if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_buffer(frame: *const otc_video_frame) -> *const u8 {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.map_or(std::ptr::null(), |f| f.frame.data.as_ptr())
    })
}

/// Bytes in `otc_video_frame_get_buffer`; 0 if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_buffer_size(frame: *const otc_video_frame) -> usize {
    guard(0, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.map_or(0, |f| f.frame.data.len())
    })
}

/// First byte of a plane (`OTC_VIDEO_FRAME_PLANE_Y`, `_U` or `_V`), owned by the frame; NULL for a
/// NULL frame or another plane index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_plane_binary_data(
    frame: *const otc_video_frame,
    plane: c_int,
) -> *const u8 {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.and_then(|f| f.plane(plane)).map_or(std::ptr::null(), <[u8]>::as_ptr)
    })
}

/// Bytes from one row of a plane to the next; -1 for a NULL frame or another plane index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_plane_stride(frame: *const otc_video_frame, plane: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.and_then(|f| f.stride(plane)).map_or(-1, |s| s as c_int)
    })
}

/// Bytes in a plane; 0 for a NULL frame or another plane index.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_get_plane_size(frame: *const otc_video_frame, plane: c_int) -> usize {
    guard(0, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.and_then(|f| f.plane(plane)).map_or(0, <[u8]>::len)
    })
}

/// Picture number `n` of the built-in test pattern at this size (the pictures a publisher
/// without a capturer sends, in order from 0). The caller owns the result and frees it with
/// `otc_video_frame_delete`. NULL for a size outside 64..=4096 x 16..=4096.
#[unsafe(no_mangle)]
pub extern "C" fn otc_test_pattern_frame_new(width: c_int, height: c_int, n: u32) -> *mut otc_video_frame {
    guard(std::ptr::null_mut(), || {
        if !valid_size(width, height) || width < 64 || height < 16 {
            return std::ptr::null_mut();
        }
        boxed(TestPattern::new(width as u32, height as u32).frame(n))
    })
}

/// The frame number the test pattern drew into the strip at the top of `frame` (read back from
/// a decoded, possibly lossy picture); -1 if `frame` is NULL or too small to carry the strip.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_test_pattern_read_frame_number(frame: *const otc_video_frame) -> c_long {
    guard(-1, || {
        // SAFETY: the caller passes NULL or a live frame.
        unsafe { ref_arg(frame) }.and_then(|f| TestPattern::read_frame_number(&f.frame)).map_or(-1, |n| n as c_long)
    })
}

/// PSNR in dB of `decoded` against `reference` over all three planes; +infinity for identical
/// pictures, -1 if either is NULL or their sizes differ.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_frame_psnr(
    reference: *const otc_video_frame,
    decoded: *const otc_video_frame,
) -> c_double {
    guard(-1.0, || {
        // SAFETY: the caller passes NULL or live frames.
        match unsafe { (ref_arg(reference), ref_arg(decoded)) } {
            (Some(r), Some(d)) => psnr(&r.frame, &d.frame).unwrap_or(-1.0),
            _ => -1.0,
        }
    })
}
