//! VP8 and VP9 through the system's libvpx (Debian `libvpx-dev`, 1.12).
//!
//! This, `h264.rs` (through the `openh264` crate) and the session thread's poll(2)
//! (`worker/wait.rs`) are the crate's only `unsafe`: libvpx is a C library. Each call's safety conditions are local (valid context pointer we
//! own, buffers that outlive the call) and stated where they are.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use vpx_sys as vpx;

use super::{CodecError, EncodedPicture, VideoFrame};

fn check(op: &'static str, err: vpx::vpx_codec_err_t) -> Result<(), CodecError> {
    if err == vpx::vpx_codec_err_t::VPX_CODEC_OK { Ok(()) } else { Err(CodecError::Vpx { op, code: err as i32 }) }
}

/// Which of libvpx's codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vpx {
    Vp8,
    Vp9,
}

impl Vpx {
    fn encoder_iface(self) -> *mut vpx::vpx_codec_iface_t {
        // SAFETY: these return pointers to static interface descriptions.
        unsafe {
            match self {
                Vpx::Vp8 => vpx::vpx_codec_vp8_cx(),
                Vpx::Vp9 => vpx::vpx_codec_vp9_cx(),
            }
        }
    }

    fn decoder_iface(self) -> *mut vpx::vpx_codec_iface_t {
        // SAFETY: as above.
        unsafe {
            match self {
                Vpx::Vp8 => vpx::vpx_codec_vp8_dx(),
                Vpx::Vp9 => vpx::vpx_codec_vp9_dx(),
            }
        }
    }
}

/// Real-time VP8 or VP9 encoder.
pub struct VpxEncoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
    width: u32,
    height: u32,
    pts: i64,
    force_key: bool,
}

// SAFETY: the libvpx context is only touched through &mut self; libvpx contexts may move
// between threads as long as they are not used concurrently.
unsafe impl Send for VpxEncoder {}

impl VpxEncoder {
    pub fn new(codec: Vpx, width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, CodecError> {
        let valid = |d: u32| (2..=16_384).contains(&d) && d.is_multiple_of(2);
        if !valid(width) || !valid(height) {
            return Err(CodecError::BadSettings("width and height must be even and between 2 and 16384"));
        }
        if fps == 0 {
            return Err(CodecError::BadSettings("fps must be positive"));
        }
        // SAFETY: vpx_codec_enc_config_default fills the whole struct on success.
        let mut cfg = unsafe {
            let mut cfg = MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::zeroed();
            check("config", vpx::vpx_codec_enc_config_default(codec.encoder_iface(), cfg.as_mut_ptr(), 0))?;
            cfg.assume_init()
        };
        cfg.g_w = width;
        cfg.g_h = height;
        cfg.g_timebase = vpx::vpx_rational { num: 1, den: fps as c_int };
        cfg.rc_target_bitrate = bitrate_kbps;
        cfg.g_lag_in_frames = 0; // real time: no look-ahead
        cfg.g_error_resilient = 1; // VPX_ERROR_RESILIENT_DEFAULT: survive lost reference frames
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_max_dist = fps * 10;
        cfg.g_threads = 1;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 52;
        let mut ctx = Box::new(unsafe { MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed().assume_init() });
        // SAFETY: ctx and cfg are valid for the call; the ABI version is the one the bindings
        // were generated for, which build.rs matched against the installed libvpx.
        unsafe {
            check(
                "encoder init",
                vpx::vpx_codec_enc_init_ver(
                    &mut *ctx,
                    codec.encoder_iface(),
                    &cfg,
                    0,
                    vpx::VPX_ENCODER_ABI_VERSION as c_int,
                ),
            )?;
            // Speed for real time on small machines. VP8 reads a negative value as a fixed
            // speed; VP9 takes 0..9, 8 being its usual real-time setting.
            let speed: c_int = if codec == Vpx::Vp8 { -8 } else { 8 };
            vpx::vpx_codec_control_(&mut *ctx, vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int, speed);
            if codec == Vpx::Vp9 {
                // Cyclic refresh: VP9's real-time adaptive quantization, as WebRTC sets it.
                vpx::vpx_codec_control_(&mut *ctx, vpx::vp8e_enc_control_id::VP9E_SET_AQ_MODE as c_int, 3 as c_uint);
            }
        }
        Ok(Self { ctx, width, height, pts: 0, force_key: true })
    }

    /// The next frame will be a key frame (new subscriber, picture loss, new secret).
    pub fn request_key_frame(&mut self) {
        self.force_key = true;
    }

    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Vec<EncodedPicture>, CodecError> {
        CodecError::check_size(frame, self.width, self.height)?;
        let mut img = MaybeUninit::<vpx::vpx_image_t>::zeroed();
        // SAFETY: vpx_img_wrap only records the pointer; `frame.data` outlives vpx_codec_encode,
        // and libvpx does not write into input pictures.
        let img = unsafe {
            vpx::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                self.width,
                self.height,
                1,
                frame.data.as_ptr() as *mut u8,
            );
            img.assume_init()
        };
        let flags = if std::mem::take(&mut self.force_key) { vpx::VPX_EFLAG_FORCE_KF as i64 } else { 0 };
        // SAFETY: ctx was initialised in new(); img is valid for the call.
        unsafe {
            check(
                "encode",
                vpx::vpx_codec_encode(&mut *self.ctx, &img, self.pts, 1, flags, vpx::VPX_DL_REALTIME as c_ulong),
            )?;
        }
        self.pts += 1;
        let mut out = Vec::new();
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the returned packet stays valid until the next get_cx_data/encode call;
            // its bytes are copied out before that.
            let pkt = unsafe { vpx::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            unsafe {
                if (*pkt).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*pkt).data.frame;
                    let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize).to_vec();
                    out.push(EncodedPicture { key_frame: f.flags & vpx::VPX_FRAME_IS_KEY != 0, data });
                }
            }
        }
        Ok(out)
    }
}

impl Drop for VpxEncoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(), destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// VP8 or VP9 decoder.
pub struct VpxDecoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

// SAFETY: as for the encoder.
unsafe impl Send for VpxDecoder {}

impl VpxDecoder {
    pub fn new(codec: Vpx) -> Result<Self, CodecError> {
        let mut ctx = Box::new(unsafe { MaybeUninit::<vpx::vpx_codec_ctx_t>::zeroed().assume_init() });
        let cfg = vpx::vpx_codec_dec_cfg_t { threads: 1, w: 0, h: 0 };
        // SAFETY: ctx and cfg valid for the call.
        unsafe {
            check(
                "decoder init",
                vpx::vpx_codec_dec_init_ver(
                    &mut *ctx,
                    codec.decoder_iface(),
                    &cfg,
                    0,
                    vpx::VPX_DECODER_ABI_VERSION as c_int,
                ),
            )?;
        }
        Ok(Self { ctx })
    }

    /// Decodes one frame; returns the pictures it produced (usually one).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<VideoFrame>, CodecError> {
        // SAFETY: data is valid for data.len() bytes during the call.
        unsafe {
            check(
                "decode",
                vpx::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), data.len() as c_uint, ptr::null_mut(), 0),
            )?;
        }
        let mut out = Vec::new();
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the image stays valid until the next decode call; copied out now.
            let img = unsafe { vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            out.push(unsafe { copy_i420(&*img) });
        }
        Ok(out)
    }
}

/// Copies a decoded I420 image into a tightly packed frame.
///
/// # Safety
/// `img` must be an I420 image returned by libvpx and still valid.
unsafe fn copy_i420(img: &vpx::vpx_image_t) -> VideoFrame {
    let (w, h) = (img.d_w, img.d_h);
    let (cw, ch) = VideoFrame::chroma_size(w, h);
    let mut data = Vec::with_capacity(VideoFrame::byte_len(w, h));
    for (plane, pw, ph) in [(0usize, w, h), (1, cw, ch), (2, cw, ch)] {
        for row in 0..ph as isize {
            // SAFETY: libvpx guarantees `stride[plane] * rows` bytes behind planes[plane].
            let start = unsafe { img.planes[plane].offset(row * img.stride[plane] as isize) };
            data.extend_from_slice(unsafe { std::slice::from_raw_parts(start, pw as usize) });
        }
    }
    VideoFrame { width: w, height: h, data }
}

impl Drop for VpxDecoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(), destroyed once.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}
