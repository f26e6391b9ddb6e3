//! Every pointer argument is checked: NULL gives OTC_INVALID_PARAMETER (or a NULL / -1 / 0
//! result), never a crash. Also the offline behaviour of the objects (no server needed).

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{null, null_mut};

use umbra::*;

const INVALID: otc_status = OTC_INVALID_PARAMETER;

fn s(c: &CStr) -> *const c_char {
    c.as_ptr()
}

fn empty_session_callbacks() -> otc_session_callbacks {
    otc_session_callbacks {
        on_connected: None,
        on_disconnected: None,
        on_connection_created: None,
        on_connection_dropped: None,
        on_stream_received: None,
        on_stream_dropped: None,
        on_signal_received: None,
        on_error: None,
        on_stream_has_audio_changed: None,
        on_stream_has_video_changed: None,
        on_stream_video_dimensions_changed: None,
        user_data: null_mut(),
        reserved: null_mut(),
    }
}

#[test]
fn null_arguments_are_refused_not_dereferenced() {
    unsafe {
        assert_eq!(otc_init(null_mut()), OTC_SUCCESS);
        let cb = empty_session_callbacks();
        // Constructors.
        assert!(otc_session_new(null(), s(c"sid"), &cb).is_null());
        assert!(otc_session_new(s(c"key"), null(), &cb).is_null());
        assert!(otc_session_new(s(c"key"), s(c"sid"), null()).is_null());
        assert!(otc_session_new_with_settings(s(c"key"), s(c"sid"), &cb, null()).is_null());
        assert!(otc_subscriber_new(null(), null()).is_null());
        assert!(otc_publisher_new_with_settings(null(), null()).is_null());
        assert!(otc_video_frame_new(OTC_VIDEO_FRAME_FORMAT_YUV420P, 64, 16, null()).is_null());
        assert!(otc_video_frame_new_I420(64, 16, null(), 64, null(), 32, null(), 32).is_null());
        assert!(otc_video_frame_copy(null()).is_null());
        assert!(otc_stream_copy(null()).is_null());
        assert!(otc_connection_copy(null()).is_null());
        // Session functions.
        assert_eq!(otc_session_set_encryption_secret(null_mut(), s(c"correct horse")), INVALID);
        assert_eq!(otc_session_connect(null_mut(), s(c"token")), INVALID);
        assert_eq!(otc_session_disconnect(null_mut()), INVALID);
        assert_eq!(otc_session_delete(null_mut()), INVALID);
        assert_eq!(otc_session_send_signal(null_mut(), s(c"t"), s(c"d")), INVALID);
        assert_eq!(otc_session_publish(null_mut(), null_mut()), INVALID);
        assert_eq!(otc_session_unpublish(null_mut(), null_mut()), INVALID);
        assert_eq!(otc_session_subscribe(null_mut(), null_mut()), INVALID);
        assert_eq!(otc_session_unsubscribe(null_mut(), null_mut()), INVALID);
        assert!(otc_session_get_id(null()).is_null());
        assert_eq!(otc_session_settings_delete(null_mut()), INVALID);
        assert_eq!(otc_session_settings_set_server_url(null_mut(), s(c"http://x")), INVALID);
        assert_eq!(otc_session_settings_set_bind_ip(null_mut(), s(c"127.0.0.1")), INVALID);
        // Other deletes and setters.
        assert_eq!(otc_publisher_delete(null_mut()), INVALID);
        assert_eq!(otc_subscriber_delete(null_mut()), INVALID);
        assert_eq!(otc_stream_delete(null_mut()), INVALID);
        assert_eq!(otc_connection_delete(null_mut()), INVALID);
        assert_eq!(otc_video_frame_delete(null_mut()), INVALID);
        assert_eq!(otc_publisher_settings_delete(null_mut()), INVALID);
        assert_eq!(otc_publisher_settings_set_name(null_mut(), s(c"n")), INVALID);
        assert_eq!(otc_publisher_settings_set_video_capturer(null_mut(), null()), INVALID);
        assert_eq!(otc_publisher_settings_set_audio_track(null_mut(), OTC_TRUE), INVALID);
        assert_eq!(otc_publisher_settings_set_video_track(null_mut(), OTC_TRUE), INVALID);
        assert_eq!(otc_publisher_settings_set_test_pattern(null_mut(), 320, 240, 30), INVALID);
        assert_eq!(otc_publisher_settings_set_preferred_video_codec(null_mut(), OTC_VIDEO_CODEC_VP9), INVALID);
        assert_eq!(otc_video_capturer_provide_frame(null(), 0, null()), INVALID);
        assert_eq!(otc_publisher_set_publish_audio(null_mut(), OTC_TRUE), INVALID);
        assert_eq!(otc_publisher_set_publish_video(null_mut(), OTC_TRUE), INVALID);
        assert_eq!(otc_subscriber_set_preferred_resolution(null_mut(), 320, 180), INVALID);
        assert_eq!(otc_subscriber_set_preferred_framerate(null_mut(), 15.0), INVALID);
        assert_eq!(otc_subscriber_set_subscribe_to_video(null_mut(), OTC_FALSE), INVALID);
        assert_eq!(otc_session_set_active_speaker_callback(null_mut(), None, null_mut()), INVALID);
        assert_eq!(otc_subscriber_set_video_layer_callback(null_mut(), None, null_mut()), INVALID);
        // Accessors.
        assert!(otc_stream_get_id(null()).is_null());
        assert!(otc_stream_get_name(null()).is_null());
        assert!(otc_stream_get_connection(null()).is_null());
        assert_eq!(otc_stream_has_audio(null()), OTC_FALSE);
        assert_eq!(otc_stream_has_video(null()), OTC_FALSE);
        assert_eq!(otc_stream_get_video_width(null()), -1);
        assert_eq!(otc_stream_get_video_height(null()), -1);
        assert_eq!(otc_publisher_get_publish_audio(null()), OTC_FALSE);
        assert_eq!(otc_publisher_get_publish_video(null()), OTC_FALSE);
        assert!(otc_connection_get_id(null()).is_null());
        assert!(otc_connection_get_data(null()).is_null());
        assert!(otc_publisher_get_stream(null()).is_null());
        assert!(otc_subscriber_get_stream(null()).is_null());
        assert_eq!(otc_video_frame_get_width(null()), -1);
        assert_eq!(otc_video_frame_get_height(null()), -1);
        assert_eq!(otc_video_frame_get_format(null()), OTC_VIDEO_FRAME_FORMAT_UNKNOWN);
        assert!(otc_video_frame_get_buffer(null()).is_null());
        assert_eq!(otc_video_frame_get_buffer_size(null()), 0);
        assert!(otc_video_frame_get_plane_binary_data(null(), OTC_VIDEO_FRAME_PLANE_Y).is_null());
        assert_eq!(otc_video_frame_get_plane_stride(null(), OTC_VIDEO_FRAME_PLANE_Y), -1);
        assert_eq!(otc_video_frame_get_plane_size(null(), OTC_VIDEO_FRAME_PLANE_Y), 0);
        assert_eq!(otc_test_pattern_read_frame_number(null()), -1);
        assert_eq!(otc_video_frame_psnr(null(), null()), -1.0);
        assert_eq!(otc_audio_device_write_capture_data(null(), 10), 0);
        assert_eq!(otc_audio_device_read_render_data(null_mut(), 10), 0);
        assert_eq!(otc_destroy(), OTC_SUCCESS);
    }
}

#[test]
fn session_offline_behaviour() {
    unsafe {
        let cb = empty_session_callbacks();
        let settings = otc_session_settings_new();
        assert_eq!(otc_session_settings_set_server_url(settings, s(c"ftp://x")), INVALID);
        assert_eq!(otc_session_settings_set_bind_ip(settings, s(c"not an ip")), INVALID);
        assert_eq!(otc_session_settings_set_server_url(settings, s(c"http://127.0.0.1:9")), OTC_SUCCESS);
        let session = otc_session_new_with_settings(s(c"key"), s(c"sid"), &cb, settings);
        assert_eq!(otc_session_settings_delete(settings), OTC_SUCCESS);
        assert!(!session.is_null());
        assert_eq!(CStr::from_ptr(otc_session_get_id(session)), c"sid");
        // The secret rule is checked synchronously and reported as a return code.
        assert_eq!(
            otc_session_set_encryption_secret(session, s(c"short")),
            otc_session_error_code::OTC_SESSION_INVALID_ENCRYPTION_SECRET as otc_status
        );
        assert_eq!(
            otc_session_set_encryption_secret(session, s(c"")),
            otc_session_error_code::OTC_SESSION_INVALID_ENCRYPTION_SECRET as otc_status
        );
        assert_eq!(otc_session_set_encryption_secret(session, s(c"correct horse battery staple")), OTC_SUCCESS);
        // Not connected: media calls are refused with the publisher's / subscriber's code.
        let publisher = otc_publisher_new(s(c"p"), null(), null());
        assert!(!publisher.is_null());
        assert_eq!(
            otc_session_publish(session, publisher),
            otc_publisher_error_code::OTC_PUBLISHER_SESSION_DISCONNECTED as otc_status
        );
        assert_eq!(otc_session_unpublish(session, publisher), OTC_ILLEGAL_STATE);
        assert!(otc_publisher_get_stream(publisher).is_null());
        // Whether audio and video are sent can be set before publishing, and read back.
        assert_eq!(otc_publisher_get_publish_audio(publisher), OTC_TRUE);
        assert_eq!(otc_publisher_get_publish_video(publisher), OTC_TRUE);
        assert_eq!(otc_publisher_set_publish_audio(publisher, OTC_FALSE), OTC_SUCCESS);
        assert_eq!(otc_publisher_get_publish_audio(publisher), OTC_FALSE);
        assert_eq!(otc_publisher_get_publish_video(publisher), OTC_TRUE);
        assert_eq!(otc_publisher_set_publish_audio(publisher, OTC_TRUE), OTC_SUCCESS);
        assert_eq!(otc_publisher_get_publish_audio(publisher), OTC_TRUE);
        assert_eq!(
            otc_session_send_signal(session, s(c"t"), s(c"d")),
            otc_session_error_code::OTC_SESSION_NOT_CONNECTED as otc_status
        );
        assert_eq!(otc_publisher_delete(publisher), OTC_SUCCESS);
        // The active speaker callback can be set and removed at any time.
        unsafe extern "C" fn speaker(_: *mut otc_session, _: *mut c_void, _: *const c_char, _: *const c_char) {}
        assert_eq!(otc_session_set_active_speaker_callback(session, Some(speaker), null_mut()), OTC_SUCCESS);
        assert_eq!(otc_session_set_active_speaker_callback(session, None, null_mut()), OTC_SUCCESS);
        assert_eq!(otc_session_disconnect(session), OTC_SUCCESS);
        assert_eq!(otc_session_delete(session), OTC_SUCCESS);
    }
}

#[test]
fn frames_and_test_pattern() {
    unsafe {
        let f = otc_test_pattern_frame_new(160, 120, 1234);
        assert!(!f.is_null());
        assert_eq!(otc_video_frame_get_width(f), 160);
        assert_eq!(otc_video_frame_get_plane_stride(f, OTC_VIDEO_FRAME_PLANE_U), 80);
        assert_eq!(otc_video_frame_get_plane_size(f, OTC_VIDEO_FRAME_PLANE_V), 80 * 60);
        assert_eq!(otc_video_frame_get_buffer_size(f), 160 * 120 * 3 / 2);
        assert!(otc_video_frame_get_plane_binary_data(f, 3).is_null());
        assert_eq!(otc_test_pattern_read_frame_number(f), 1234);
        // Rebuilding it from planes with padded strides gives the same picture.
        let (y, u, v) = (
            otc_video_frame_get_plane_binary_data(f, OTC_VIDEO_FRAME_PLANE_Y),
            otc_video_frame_get_plane_binary_data(f, OTC_VIDEO_FRAME_PLANE_U),
            otc_video_frame_get_plane_binary_data(f, OTC_VIDEO_FRAME_PLANE_V),
        );
        let pad = |p: *const u8, w: usize, h: usize| -> Vec<u8> {
            let src = std::slice::from_raw_parts(p, w * h);
            src.chunks(w).flat_map(|row| row.iter().copied().chain([0u8; 8])).collect()
        };
        let (py, pu, pv) = (pad(y, 160, 120), pad(u, 80, 60), pad(v, 80, 60));
        let g = otc_video_frame_new_I420(160, 120, py.as_ptr(), 168, pu.as_ptr(), 88, pv.as_ptr(), 88);
        assert!(!g.is_null());
        assert!(otc_video_frame_psnr(f, g).is_infinite());
        // A stride smaller than the plane is refused.
        assert!(otc_video_frame_new_I420(160, 120, py.as_ptr(), 100, pu.as_ptr(), 88, pv.as_ptr(), 88).is_null());
        let c = otc_video_frame_copy(g);
        assert_eq!(otc_video_frame_get_buffer_size(c), otc_video_frame_get_buffer_size(f));
        for p in [f, g, c] {
            assert_eq!(otc_video_frame_delete(p), OTC_SUCCESS);
        }
        assert!(otc_test_pattern_frame_new(10, 10, 0).is_null());
        assert!(otc_video_frame_new(7, 64, 16, py.as_ptr()).is_null());
    }
}

#[test]
fn preferred_video_codec_takes_the_three_codecs_and_refuses_others() {
    unsafe {
        let settings = otc_publisher_settings_new();
        for codec in [OTC_VIDEO_CODEC_VP8, OTC_VIDEO_CODEC_H264, OTC_VIDEO_CODEC_VP9] {
            assert_eq!(otc_publisher_settings_set_preferred_video_codec(settings, codec), OTC_SUCCESS);
        }
        for bad in [0, 4, -1] {
            assert_eq!(otc_publisher_settings_set_preferred_video_codec(settings, bad), INVALID);
        }
        let publisher = otc_publisher_new_with_settings(null(), settings);
        assert!(!publisher.is_null());
        assert_eq!(otc_publisher_delete(publisher), OTC_SUCCESS);
        assert_eq!(otc_publisher_settings_delete(settings), OTC_SUCCESS);
    }
}

#[test]
fn error_strings() {
    let text = |c: otc_status| unsafe { CStr::from_ptr(otc_error_string(c)) }.to_str().unwrap().to_string();
    assert!(text(otc_session_error_code::OTC_SESSION_INVALID_ENCRYPTION_SECRET as otc_status).contains("8 to 256"));
    assert!(
        text(otc_subscriber_error_code::OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH as otc_status).contains("mismatch")
    );
    assert_eq!(text(123456), "unknown error code");
}
