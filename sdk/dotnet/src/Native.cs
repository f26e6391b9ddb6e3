// P/Invoke declarations for the otc_* C API of libumbra (crates/umbra-capi/include/umbra/otc.h).
// Internal: applications use Session, Publisher, Subscriber and VideoFrame.
//
// Conventions:
// - Every function is cdecl. C `int` is Int32, `uintptr_t`/`size_t` is UIntPtr, pointers are IntPtr.
// - Strings going in are passed as NUL-terminated UTF-8 byte arrays (Utf8.Encode), never through
//   the runtime's string marshalling (which is ANSI on .NET Framework on Windows).
// - Strings coming out are read with Utf8.Decode (the SDK owns them).
// - Callback tables are copied by the SDK, so they are passed by ref from the stack; the function
//   pointers in them come from static delegates that live as long as the process (Callbacks.cs).
using System;
using System.Runtime.InteropServices;

namespace Umbra
{
    internal static class Native
    {
        // "umbra" resolves to libumbra.so on Linux (found through LD_LIBRARY_PATH, the loader's
        // cache, or next to the assembly), libumbra.dylib on macOS and umbra.dll on Windows.
        internal const string Lib = "umbra";
        private const CallingConvention Cdecl = CallingConvention.Cdecl;

        internal const int OTC_SUCCESS = 0;
        internal const int OTC_TRUE = 1;
        internal const int OTC_FALSE = 0;
        internal const int OTC_VIDEO_FRAME_FORMAT_YUV420P = 1;

        // ---- Callback tables (layouts checked against the C header by the tests) ----

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_session_callbacks
        {
            public IntPtr on_connected;
            public IntPtr on_disconnected;
            public IntPtr on_connection_created;
            public IntPtr on_connection_dropped;
            public IntPtr on_stream_received;
            public IntPtr on_stream_dropped;
            public IntPtr on_signal_received;
            public IntPtr on_error;
            public IntPtr on_stream_has_audio_changed;
            public IntPtr on_stream_has_video_changed;
            public IntPtr on_stream_video_dimensions_changed;
            public IntPtr user_data;
            public IntPtr reserved;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_publisher_callbacks
        {
            public IntPtr on_stream_created;
            public IntPtr on_error;
            public IntPtr on_mute_forced;
            public IntPtr user_data;
            public IntPtr reserved;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_subscriber_callbacks
        {
            public IntPtr on_connected;
            public IntPtr on_disconnected;
            public IntPtr on_render_frame;
            public IntPtr on_audio_data;
            public IntPtr on_error;
            public IntPtr on_encryption_secret_mismatch;
            public IntPtr on_encryption_secret_match;
            public IntPtr user_data;
            public IntPtr reserved;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_video_capturer_callbacks
        {
            public IntPtr init;
            public IntPtr destroy;
            public IntPtr start;
            public IntPtr stop;
            public IntPtr get_capture_settings;
            public IntPtr user_data;
            public IntPtr reserved;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_video_capturer_settings
        {
            public int format;
            public int width;
            public int height;
            public int fps;
            public int expected_delay;
            public int mirror_on_local_render;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct otc_audio_data
        {
            public IntPtr sample_buffer;
            public int bits_per_sample;
            public int sample_rate;
            public UIntPtr number_of_channels;
            public UIntPtr number_of_samples;
        }

        // The structs above, for the layout check (tests compare them with the C compiler's view).
        internal static readonly Type[] CheckedStructs =
        {
            typeof(otc_session_callbacks), typeof(otc_publisher_callbacks), typeof(otc_subscriber_callbacks),
            typeof(otc_video_capturer_callbacks), typeof(otc_video_capturer_settings), typeof(otc_audio_data),
        };

        // ---- Callback signatures ----

        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionCb(IntPtr session, IntPtr userData);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionPtrCb(IntPtr session, IntPtr userData, IntPtr obj);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionSignalCb(IntPtr session, IntPtr userData, IntPtr type, IntPtr signal, IntPtr connection);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionErrorCb(IntPtr session, IntPtr userData, IntPtr message, int error);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionStreamFlagCb(IntPtr session, IntPtr userData, IntPtr stream, int value);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionStreamSizeCb(IntPtr session, IntPtr userData, IntPtr stream, int width, int height);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SessionSpeakerCb(IntPtr session, IntPtr userData, IntPtr streamId, IntPtr connectionId);

        [UnmanagedFunctionPointer(Cdecl)] internal delegate void PublisherStreamCb(IntPtr publisher, IntPtr userData, IntPtr stream);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void PublisherErrorCb(IntPtr publisher, IntPtr userData, IntPtr message, int error);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void PublisherCb(IntPtr publisher, IntPtr userData);

        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SubscriberCb(IntPtr subscriber, IntPtr userData);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SubscriberPtrCb(IntPtr subscriber, IntPtr userData, IntPtr obj);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SubscriberErrorCb(IntPtr subscriber, IntPtr userData, IntPtr message, int error);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate void SubscriberLayerCb(IntPtr subscriber, IntPtr userData, IntPtr rid, int temporalLayer, int paused);

        [UnmanagedFunctionPointer(Cdecl)] internal delegate int CapturerCb(IntPtr capturer, IntPtr userData);
        [UnmanagedFunctionPointer(Cdecl)] internal delegate int CapturerSettingsCb(IntPtr capturer, IntPtr userData, IntPtr settings);

        // ---- Library ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_version();
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_init(IntPtr reserved);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_destroy();
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_error_string(int code);

        // ---- Session ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_session_settings_new();
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_settings_delete(IntPtr settings);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_settings_set_server_url(IntPtr settings, byte[] url);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_settings_set_bind_ip(IntPtr settings, byte[] ip);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_session_new_with_settings(byte[] apiKey, byte[] sessionId, ref otc_session_callbacks callbacks, IntPtr settings);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_session_get_id(IntPtr session);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_set_encryption_secret(IntPtr session, byte[] secret);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_connect(IntPtr session, byte[] token);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_disconnect(IntPtr session);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_send_signal_to_connection(IntPtr session, byte[] type, byte[] signal, IntPtr connection);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_delete(IntPtr session);

        // ---- Streams and connections ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_stream_get_id(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_stream_get_name(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_stream_get_connection(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_stream_has_video(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_stream_has_audio(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_stream_get_video_width(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_stream_get_video_height(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_stream_copy(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_stream_delete(IntPtr stream);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_connection_get_id(IntPtr connection);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_connection_get_data(IntPtr connection);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_connection_copy(IntPtr connection);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_connection_delete(IntPtr connection);

        // ---- Publisher ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_publisher_settings_new();
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_delete(IntPtr settings);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_name(IntPtr settings, byte[] name);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_video_capturer(IntPtr settings, ref otc_video_capturer_callbacks capturer);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_video_track(IntPtr settings, int enabled);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_audio_track(IntPtr settings, int enabled);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_test_pattern(IntPtr settings, int width, int height, int fps);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_preferred_video_codec(IntPtr settings, int codec);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_simulcast(IntPtr settings, int enabled);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_settings_set_audio_level(IntPtr settings, int enabled);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_publisher_new_with_settings(ref otc_publisher_callbacks callbacks, IntPtr settings);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_publisher_get_stream(IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_publish(IntPtr session, IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_unpublish(IntPtr session, IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_delete(IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_set_publish_audio(IntPtr publisher, int publishAudio);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_set_publish_video(IntPtr publisher, int publishVideo);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_get_publish_audio(IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_publisher_get_publish_video(IntPtr publisher);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_capturer_provide_frame(IntPtr capturer, int rotation, IntPtr frame);

        // ---- Subscriber ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_subscriber_new(IntPtr stream, ref otc_subscriber_callbacks callbacks);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_subscribe(IntPtr session, IntPtr subscriber);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_unsubscribe(IntPtr session, IntPtr subscriber);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_subscriber_delete(IntPtr subscriber);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_subscriber_set_preferred_resolution(IntPtr subscriber, uint width, uint height);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_subscriber_set_preferred_framerate(IntPtr subscriber, float frameRate);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_subscriber_set_subscribe_to_video(IntPtr subscriber, int subscribeToVideo);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_session_set_active_speaker_callback(IntPtr session, IntPtr callback, IntPtr userData);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_subscriber_set_video_layer_callback(IntPtr subscriber, IntPtr callback, IntPtr userData);

        // ---- Video frames ----

        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_video_frame_new(int format, int width, int height, byte[] buffer);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_video_frame_new_I420(int width, int height, byte[] y, int yStride, byte[] u, int uStride, byte[] v, int vStride);
        [DllImport(Lib, CallingConvention = Cdecl, EntryPoint = "otc_video_frame_new_I420")] internal static extern IntPtr otc_video_frame_new_I420_ptr(int width, int height, IntPtr y, int yStride, IntPtr u, int uStride, IntPtr v, int vStride);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_video_frame_copy(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_frame_delete(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_frame_get_width(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_frame_get_height(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_frame_get_format(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_video_frame_get_buffer(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern UIntPtr otc_video_frame_get_buffer_size(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_video_frame_get_plane_binary_data(IntPtr frame, int plane);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern int otc_video_frame_get_plane_stride(IntPtr frame, int plane);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern UIntPtr otc_video_frame_get_plane_size(IntPtr frame, int plane);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern IntPtr otc_test_pattern_frame_new(int width, int height, uint n);
        [DllImport(Lib, CallingConvention = Cdecl)] internal static extern double otc_video_frame_psnr(IntPtr reference, IntPtr decoded);

        // C `long` is 64-bit on 64-bit Linux and macOS but 32-bit on Windows (LLP64): two
        // declarations of the same entry point, chosen at run time.
        [DllImport(Lib, CallingConvention = Cdecl, EntryPoint = "otc_test_pattern_read_frame_number")] private static extern long read_frame_number_lp64(IntPtr frame);
        [DllImport(Lib, CallingConvention = Cdecl, EntryPoint = "otc_test_pattern_read_frame_number")] private static extern int read_frame_number_llp64(IntPtr frame);

        private static readonly bool CLongIs64 = IntPtr.Size == 8 && Environment.OSVersion.Platform != PlatformID.Win32NT;

        internal static long otc_test_pattern_read_frame_number(IntPtr frame)
        {
            return CLongIs64 ? read_frame_number_lp64(frame) : read_frame_number_llp64(frame);
        }
    }
}
