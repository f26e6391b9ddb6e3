//! Audio device hooks: the application plays and records audio itself (its sound card, a file,
//! a test harness) and exchanges 48 kHz mono 16-bit PCM with the SDK. Without a device,
//! publishers send a 440 Hz tone and decoded audio only goes to `on_audio_data`.
//!
//! One device per process (like the vendor SDK's). Capture: samples written with
//! `otc_audio_device_write_capture_data` go to every publisher with audio (each has a queue the
//! encoder takes 20 ms blocks from). Render: each subscriber's decoded audio is queued, and
//! `otc_audio_device_read_render_data` returns the mix of all of them.

use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Mutex};

use umbra_client::AudioCapturer;
use umbra_client::media::{AUDIO_FRAME_SAMPLES, AudioFrame};

use crate::errors::*;
use crate::ffi::{AppPtr, guard, lock, ref_arg};

/// The only sample format the SDK exchanges: 48 kHz, one channel, signed 16-bit.
pub const OTC_AUDIO_SAMPLE_RATE: c_int = 48_000;
pub const OTC_AUDIO_CHANNELS: c_int = 1;

/// Each queue holds at most this many samples (one second); older ones are dropped, so an
/// application that stops reading or writing does not make memory grow.
const MAX_QUEUED: usize = 48_000;

/// Identifies the audio device in its callbacks (opaque; there is one per process).
pub struct otc_audio_device {
    _private: u8,
}

static DEVICE: otc_audio_device = otc_audio_device { _private: 0 };

/// Capture or render format, filled in by `get_capture_settings` / `get_render_settings`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct otc_audio_device_settings {
    /// Must be `OTC_AUDIO_SAMPLE_RATE` (48000).
    pub sampling_rate: c_int,
    /// Must be `OTC_AUDIO_CHANNELS` (1).
    pub number_of_channels: c_int,
}

/// The application's audio device. Every member may be NULL. `init` and the settings
/// callbacks run inside `otc_set_audio_device`; `destroy` when the device is replaced or
/// `otc_destroy` runs. `start_capturer` runs when the first publisher with audio is published
/// and `stop_capturer` when the last stops; `start_renderer` / `stop_renderer` likewise for
/// subscribers. All run on the thread of the `otc_*` call that causes them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_audio_device_callbacks {
    pub init: Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub destroy: Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub start_capturer:
        Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub stop_capturer:
        Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub start_renderer:
        Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub stop_renderer:
        Option<unsafe extern "C" fn(device: *const otc_audio_device, user_data: *mut c_void) -> otc_bool>,
    pub get_capture_settings: Option<
        unsafe extern "C" fn(
            device: *const otc_audio_device,
            user_data: *mut c_void,
            settings: *mut otc_audio_device_settings,
        ) -> otc_bool,
    >,
    pub get_render_settings: Option<
        unsafe extern "C" fn(
            device: *const otc_audio_device,
            user_data: *mut c_void,
            settings: *mut otc_audio_device_settings,
        ) -> otc_bool,
    >,
    /// Passed back to every callback; the SDK never dereferences it.
    pub user_data: *mut c_void,
    /// Must be NULL.
    pub reserved: *mut c_void,
}

type Queue = Arc<Mutex<VecDeque<i16>>>;

#[derive(Default)]
struct State {
    device: Option<AppPtr<otc_audio_device_callbacks>>,
    next_token: u64,
    capture: HashMap<u64, Queue>,
    /// Keyed by (session address, subscriber id).
    render: HashMap<(usize, u64), VecDeque<i16>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    f(lock(&STATE).get_or_insert_with(State::default))
}

type DeviceFn = Option<unsafe extern "C" fn(*const otc_audio_device, *mut c_void) -> otc_bool>;

/// Calls a device callback (no SDK lock held: it may call back into the SDK).
fn call(cb: AppPtr<otc_audio_device_callbacks>, f: impl FnOnce(&otc_audio_device_callbacks) -> DeviceFn) -> bool {
    match f(&cb.0) {
        // SAFETY: an application callback with the documented arguments.
        Some(f) => (unsafe { f(&DEVICE, cb.0.user_data) }) != OTC_FALSE,
        None => true,
    }
}

/// Frees a map's table once it is empty, so a process that stops using audio holds no memory
/// in this global (valgrind would otherwise count the table as possibly lost at exit: hashbrown
/// points into the middle of its allocation).
fn release_if_empty<K, V>(m: &mut HashMap<K, V>) {
    if m.is_empty() {
        *m = HashMap::new();
    }
}

fn push_bounded(q: &mut VecDeque<i16>, samples: &[i16]) {
    q.extend(samples.iter().copied());
    let excess = q.len().saturating_sub(MAX_QUEUED);
    q.drain(..excess);
}

/// Publisher audio from the device: 20 ms blocks as they become available.
struct DeviceCapturer(Queue);

impl AudioCapturer for DeviceCapturer {
    fn capture(&mut self) -> Option<AudioFrame> {
        let mut q = lock(&self.0);
        (q.len() >= AUDIO_FRAME_SAMPLES).then(|| AudioFrame { samples: q.drain(..AUDIO_FRAME_SAMPLES).collect() })
    }
}

/// A capture queue for a publisher being published, if a device is set.
pub(crate) fn capture_acquire() -> Option<(u64, Box<dyn AudioCapturer>)> {
    let (token, queue, first, device) = with_state(|s| {
        let device = s.device?;
        s.next_token += 1;
        let q = Queue::default();
        s.capture.insert(s.next_token, q.clone());
        Some((s.next_token, q, s.capture.len() == 1, device))
    })?;
    if first {
        call(device, |c| c.start_capturer);
    }
    Some((token, Box::new(DeviceCapturer(queue))))
}

pub(crate) fn capture_release(token: u64) {
    let last = with_state(|s| {
        let removed = s.capture.remove(&token).is_some();
        release_if_empty(&mut s.capture);
        removed.then_some(s.capture.is_empty()).zip(s.device)
    });
    if let Some((true, device)) = last {
        call(device, |c| c.stop_capturer);
    }
}

pub(crate) fn render_acquire(id: u64, session: usize) {
    let first = with_state(|s| {
        let device = s.device?;
        s.render.insert((session, id), VecDeque::new());
        (s.render.len() == 1).then_some(device)
    });
    if let Some(device) = first {
        call(device, |c| c.start_renderer);
    }
}

pub(crate) fn render_release(id: u64, session: usize) {
    let last = with_state(|s| {
        let removed = s.render.remove(&(session, id)).is_some();
        release_if_empty(&mut s.render);
        removed.then_some(s.render.is_empty()).zip(s.device)
    });
    if let Some((true, device)) = last {
        call(device, |c| c.stop_renderer);
    }
}

pub(crate) fn render_push(id: u64, session: usize, samples: &[i16]) {
    with_state(|s| {
        if let Some(q) = s.render.get_mut(&(session, id)) {
            push_bounded(q, samples);
        }
    });
}

/// Installs the application's audio device (the table is copied), or goes back to the built-in
/// tone when `callbacks` is NULL. Calls the old device's `destroy`, then the new one's settings
/// callbacks and `init`. `OTC_INVALID_PARAMETER` if the device's settings are not 48 kHz mono,
/// `OTC_ILLEGAL_STATE` while a publisher or subscriber uses the current device,
/// `OTC_INTERNAL_ERROR` if `init` fails.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_set_audio_device(callbacks: *const otc_audio_device_callbacks) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a valid table.
        let new = unsafe { ref_arg(callbacks) }.map(|c| AppPtr(*c));
        if let Some(cb) = new {
            for get in [cb.0.get_capture_settings, cb.0.get_render_settings].into_iter().flatten() {
                let mut s = otc_audio_device_settings {
                    sampling_rate: OTC_AUDIO_SAMPLE_RATE,
                    number_of_channels: OTC_AUDIO_CHANNELS,
                };
                // SAFETY: an application callback; `s` is a live local for it to fill in.
                let ok = unsafe { get(&DEVICE, cb.0.user_data, &mut s) } != OTC_FALSE;
                if !ok || s.sampling_rate != OTC_AUDIO_SAMPLE_RATE || s.number_of_channels != OTC_AUDIO_CHANNELS {
                    return OTC_INVALID_PARAMETER;
                }
            }
        }
        let old =
            with_state(|s| if s.capture.is_empty() && s.render.is_empty() { Ok(s.device.take()) } else { Err(()) });
        let Ok(old) = old else {
            return OTC_ILLEGAL_STATE;
        };
        if let Some(old) = old {
            call(old, |c| c.destroy);
        }
        if let Some(cb) = new {
            if !call(cb, |c| c.init) {
                return OTC_INTERNAL_ERROR;
            }
            with_state(|s| s.device = Some(cb));
        }
        OTC_SUCCESS
    })
}

/// Gives the SDK recorded audio: `number_of_samples` 48 kHz mono samples, copied to every
/// publisher with audio. Returns how many were taken (0 without a device, for NULL `data`, or
/// while no publisher with audio is published). Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_audio_device_write_capture_data(data: *const i16, number_of_samples: usize) -> usize {
    guard(0, || {
        if data.is_null() || number_of_samples == 0 {
            return 0;
        }
        // SAFETY: the caller guarantees `data` holds `number_of_samples` samples.
        let samples = unsafe { std::slice::from_raw_parts(data, number_of_samples) };
        let queues: Vec<Queue> =
            with_state(|s| if s.device.is_some() { s.capture.values().cloned().collect() } else { Vec::new() });
        for q in &queues {
            push_bounded(&mut lock(q), samples);
        }
        if queues.is_empty() { 0 } else { number_of_samples }
    })
}

/// Fills `buffer` with up to `number_of_samples` samples of the mix of every subscriber's
/// decoded audio (48 kHz mono); silence where none is queued. Returns how many were written:
/// `number_of_samples`, or 0 without a device or for a NULL buffer. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_audio_device_read_render_data(buffer: *mut i16, number_of_samples: usize) -> usize {
    guard(0, || {
        if buffer.is_null() || number_of_samples == 0 {
            return 0;
        }
        // SAFETY: the caller guarantees `buffer` has room for `number_of_samples` samples.
        let out = unsafe { std::slice::from_raw_parts_mut(buffer, number_of_samples) };
        with_state(|s| {
            if s.device.is_none() {
                return 0;
            }
            let mut mix = vec![0i32; number_of_samples];
            for q in s.render.values_mut() {
                let n = q.len().min(number_of_samples);
                for (m, v) in mix.iter_mut().zip(q.drain(..n)) {
                    *m += v as i32;
                }
            }
            for (o, m) in out.iter_mut().zip(mix) {
                *o = m.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
            }
            number_of_samples
        })
    })
}

/// Removes the device (otc_destroy); fails like `otc_set_audio_device(NULL)`.
pub(crate) fn reset() -> otc_status {
    // SAFETY: NULL is a valid argument.
    unsafe { otc_set_audio_device(std::ptr::null()) }
}
