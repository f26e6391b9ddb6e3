//! What a subscriber wants of a routed stream's video (the router picks a simulcast layer for
//! it). Kept on the subscriber as an `umbra_client::VideoPreference`, so a wish made before
//! `Session::subscribe` applies when it subscribes, as in the C SDK.
//!
//! The native SDK checks a wish on its session thread and reports a bad one as a subscriber
//! error event; these bindings check it first and refuse it in the call, so a platform SDK can
//! throw at the line that made the mistake.

use umbra_client::{ClientError, MAX_PREFERRED_FRAME_RATE, MAX_PREFERRED_SIDE, VideoPreference};

use crate::error::{Family, UmbraError};
use crate::lock;
use crate::session::Subscriber;
use crate::types::VideoSize;

fn check_size(size: Option<VideoSize>) -> Result<Option<(u32, u32)>, UmbraError> {
    match size {
        None => Ok(None),
        Some(VideoSize { width, height })
            if (1..=MAX_PREFERRED_SIDE).contains(&width) && (1..=MAX_PREFERRED_SIDE).contains(&height) =>
        {
            Ok(Some((width, height)))
        }
        Some(VideoSize { width, height }) => Err(UmbraError::invalid(format!(
            "preferred resolution {width}x{height}: width and height must be 1 to {MAX_PREFERRED_SIDE} \
             (no preference is None)"
        ))),
    }
}

fn check_frame_rate(fps: Option<u32>) -> Result<Option<u32>, UmbraError> {
    match fps {
        Some(f) if !(1..=MAX_PREFERRED_FRAME_RATE).contains(&f) => Err(UmbraError::invalid(format!(
            "preferred frame rate {f}: it must be 1 to {MAX_PREFERRED_FRAME_RATE} (no preference is None)"
        ))),
        other => Ok(other),
    }
}

#[uniffi::export]
impl Subscriber {
    /// The largest picture wanted of this subscriber's video (OpenTok's `preferredResolution`),
    /// `None` for no limit. In a routed session the router forwards the smallest simulcast layer
    /// at least this large both ways (or the largest) and reports it with
    /// `on_video_layer_changed`. Before or after subscribing; kept across reconnections.
    /// `InvalidParameter` for a zero or absurd side.
    pub fn set_preferred_resolution(&self, size: Option<VideoSize>) -> Result<(), UmbraError> {
        let r = check_size(size)?;
        self.wish(|w| w.resolution = r)
    }

    pub fn preferred_resolution(&self) -> Option<VideoSize> {
        self.wishes().resolution.map(|(width, height)| VideoSize { width, height })
    }

    /// The most frames per second wanted (OpenTok's `preferredFrameRate`), 1 to 240, `None`
    /// for all; the router drops temporal layers above it. As `set_preferred_resolution`.
    pub fn set_preferred_frame_rate(&self, fps: Option<u32>) -> Result<(), UmbraError> {
        let f = check_frame_rate(fps)?;
        self.wish(|w| w.frame_rate = f)
    }

    pub fn preferred_frame_rate(&self) -> Option<u32> {
        self.wishes().frame_rate
    }

    /// Whether to receive video at all (OpenTok's `subscribeToVideo`, true by default); audio
    /// continues either way. As `set_preferred_resolution`.
    pub fn set_subscribe_to_video(&self, video: bool) -> Result<(), UmbraError> {
        self.wish(|w| w.video = video)
    }

    pub fn subscribe_to_video(&self) -> bool {
        self.wishes().video
    }
}

impl Subscriber {
    fn wishes(&self) -> VideoPreference {
        lock(&self.core.state).wishes
    }

    fn wish(&self, change: impl FnOnce(&mut VideoPreference)) -> Result<(), UmbraError> {
        // Recorded under the lock `Session::subscribe` holds while it applies the wishes, so a
        // wish is either applied there or sent here, never lost in between.
        let (before, after, target) = {
            let mut st = lock(&self.core.state);
            let before = st.wishes;
            change(&mut st.wishes);
            (before, st.wishes, st.subscribed.as_ref().and_then(|(w, id)| w.upgrade().map(|s| (s, *id))))
        };
        let Some((shared, id)) = target else {
            return Ok(());
        };
        match shared.with_native(|s| after.apply_changes(&before, s, id)) {
            // The session has closed or is closing: the subscription is over, the wish kept.
            Ok(()) | Err(ClientError::NotConnected) => Ok(()),
            Err(e) => Err(UmbraError::from_client(&e, Family::Subscriber)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_have_both_sides() {
        assert_eq!(check_size(None), Ok(None));
        assert_eq!(check_size(Some(VideoSize { width: 160, height: 90 })), Ok(Some((160, 90))));
        for (width, height) in [(0, 90), (160, 0), (0, 0), (MAX_PREFERRED_SIDE + 1, 90)] {
            let e = check_size(Some(VideoSize { width, height })).unwrap_err();
            assert!(matches!(e, UmbraError::InvalidParameter { .. }), "{width}x{height}: {e:?}");
            assert!(e.to_string().contains(&format!("{width}x{height}")), "{e}");
        }
    }

    #[test]
    fn frame_rates_are_1_to_240() {
        assert_eq!(check_frame_rate(None), Ok(None));
        assert_eq!(check_frame_rate(Some(1)), Ok(Some(1)));
        assert_eq!(check_frame_rate(Some(240)), Ok(Some(240)));
        for f in [0, 241] {
            assert!(matches!(check_frame_rate(Some(f)), Err(UmbraError::InvalidParameter { .. })), "{f}");
        }
    }
}
