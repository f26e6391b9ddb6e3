// The native callbacks: static methods behind static delegates, so the function pointers handed
// to libumbra stay valid for the life of the process (a delegate collected while native code
// still holds its pointer would crash the process). Each callback's user_data is a Registry
// number; each callback body catches every exception, so none ever crosses into native code.
using System;
using System.Runtime.InteropServices;

namespace Umbra
{
    internal static class Callbacks
    {
        // ---- delegates kept alive for the process lifetime ----
        private static readonly Native.SessionCb SessionConnected = OnSessionConnected;
        private static readonly Native.SessionCb SessionDisconnected = OnSessionDisconnected;
        private static readonly Native.SessionPtrCb SessionConnectionCreated = OnSessionConnectionCreated;
        private static readonly Native.SessionPtrCb SessionConnectionDropped = OnSessionConnectionDropped;
        private static readonly Native.SessionPtrCb SessionStreamReceived = OnSessionStreamReceived;
        private static readonly Native.SessionPtrCb SessionStreamDropped = OnSessionStreamDropped;
        private static readonly Native.SessionSignalCb SessionSignal = OnSessionSignal;
        private static readonly Native.SessionErrorCb SessionError = OnSessionError;
        private static readonly Native.SessionStreamFlagCb SessionStreamHasAudio = OnSessionStreamHasAudioChanged;
        private static readonly Native.SessionStreamFlagCb SessionStreamHasVideo = OnSessionStreamHasVideoChanged;
        private static readonly Native.SessionStreamSizeCb SessionStreamDimensions = OnSessionStreamVideoDimensionsChanged;
        private static readonly Native.SessionSpeakerCb SessionActiveSpeaker = OnSessionActiveSpeakerChanged;
        private static readonly Native.SubscriberLayerCb SubscriberVideoLayer = OnSubscriberVideoLayerChanged;

        private static readonly Native.PublisherStreamCb PublisherStreamCreated = OnPublisherStreamCreated;
        private static readonly Native.PublisherErrorCb PublisherError = OnPublisherError;
        private static readonly Native.PublisherCb PublisherMuteForced = OnPublisherMuteForced;

        private static readonly Native.SubscriberPtrCb SubscriberConnected = OnSubscriberConnected;
        private static readonly Native.SubscriberCb SubscriberDisconnected = OnSubscriberDisconnected;
        private static readonly Native.SubscriberPtrCb SubscriberRenderFrame = OnSubscriberRenderFrame;
        private static readonly Native.SubscriberPtrCb SubscriberAudioData = OnSubscriberAudioData;
        private static readonly Native.SubscriberErrorCb SubscriberError = OnSubscriberError;
        private static readonly Native.SubscriberCb SubscriberMismatch = OnSubscriberMismatch;
        private static readonly Native.SubscriberCb SubscriberMatch = OnSubscriberMatch;

        private static readonly Native.CapturerCb CapturerInit = OnCapturerInit;
        private static readonly Native.CapturerCb CapturerDestroy = OnCapturerDestroy;
        private static readonly Native.CapturerCb CapturerStart = OnCapturerStart;
        private static readonly Native.CapturerCb CapturerStop = OnCapturerStop;
        private static readonly Native.CapturerSettingsCb CapturerSettings = OnCapturerSettings;

        private static IntPtr Fp(Delegate d)
        {
            return Marshal.GetFunctionPointerForDelegate(d);
        }

        // ---- tables ----

        internal static Native.otc_session_callbacks SessionTable(IntPtr userData)
        {
            return new Native.otc_session_callbacks
            {
                on_connected = Fp(SessionConnected),
                on_disconnected = Fp(SessionDisconnected),
                on_connection_created = Fp(SessionConnectionCreated),
                on_connection_dropped = Fp(SessionConnectionDropped),
                on_stream_received = Fp(SessionStreamReceived),
                on_stream_dropped = Fp(SessionStreamDropped),
                on_signal_received = Fp(SessionSignal),
                on_error = Fp(SessionError),
                on_stream_has_audio_changed = Fp(SessionStreamHasAudio),
                on_stream_has_video_changed = Fp(SessionStreamHasVideo),
                on_stream_video_dimensions_changed = Fp(SessionStreamDimensions),
                user_data = userData,
                reserved = IntPtr.Zero,
            };
        }

        // Set with its own function: the C session callback table keeps its layout.
        internal static IntPtr ActiveSpeakerCallback()
        {
            return Fp(SessionActiveSpeaker);
        }

        // Likewise: the C subscriber callback table keeps its layout.
        internal static IntPtr VideoLayerCallback()
        {
            return Fp(SubscriberVideoLayer);
        }

        internal static Native.otc_publisher_callbacks PublisherTable(IntPtr userData)
        {
            return new Native.otc_publisher_callbacks
            {
                on_stream_created = Fp(PublisherStreamCreated),
                on_error = Fp(PublisherError),
                on_mute_forced = Fp(PublisherMuteForced),
                user_data = userData,
                reserved = IntPtr.Zero,
            };
        }

        internal static Native.otc_subscriber_callbacks SubscriberTable(IntPtr userData)
        {
            return new Native.otc_subscriber_callbacks
            {
                on_connected = Fp(SubscriberConnected),
                on_disconnected = Fp(SubscriberDisconnected),
                on_render_frame = Fp(SubscriberRenderFrame),
                on_audio_data = Fp(SubscriberAudioData),
                on_error = Fp(SubscriberError),
                on_encryption_secret_mismatch = Fp(SubscriberMismatch),
                on_encryption_secret_match = Fp(SubscriberMatch),
                user_data = userData,
                reserved = IntPtr.Zero,
            };
        }

        internal static Native.otc_video_capturer_callbacks CapturerTable(IntPtr userData)
        {
            return new Native.otc_video_capturer_callbacks
            {
                init = Fp(CapturerInit),
                destroy = Fp(CapturerDestroy),
                start = Fp(CapturerStart),
                stop = Fp(CapturerStop),
                get_capture_settings = Fp(CapturerSettings),
                user_data = userData,
                reserved = IntPtr.Zero,
            };
        }

        // ---- session ----

        private static void OnSessionConnected(IntPtr session, IntPtr ud)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnConnected(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.Connected", e); }
        }

        private static void OnSessionDisconnected(IntPtr session, IntPtr ud)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnDisconnected(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.Disconnected", e); }
        }

        private static void OnSessionConnectionCreated(IntPtr session, IntPtr ud, IntPtr connection)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnConnectionCreated(connection); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.ConnectionCreated", e); }
        }

        private static void OnSessionConnectionDropped(IntPtr session, IntPtr ud, IntPtr connection)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnConnectionDropped(connection); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.ConnectionDropped", e); }
        }

        private static void OnSessionStreamReceived(IntPtr session, IntPtr ud, IntPtr stream)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnStreamReceived(stream); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.StreamReceived", e); }
        }

        private static void OnSessionStreamDropped(IntPtr session, IntPtr ud, IntPtr stream)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnStreamDropped(stream); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.StreamDropped", e); }
        }

        private static void OnSessionSignal(IntPtr session, IntPtr ud, IntPtr type, IntPtr signal, IntPtr connection)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnSignal(type, signal, connection); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.Signal", e); }
        }

        private static void OnSessionError(IntPtr session, IntPtr ud, IntPtr message, int error)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnError(Utf8.Decode(message), error); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.Error", e); }
        }

        private static void OnSessionStreamHasAudioChanged(IntPtr session, IntPtr ud, IntPtr stream, int value)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnStreamHasAudioChanged(stream, value != Native.OTC_FALSE); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.StreamHasAudioChanged", e); }
        }

        private static void OnSessionStreamHasVideoChanged(IntPtr session, IntPtr ud, IntPtr stream, int value)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnStreamHasVideoChanged(stream, value != Native.OTC_FALSE); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.StreamHasVideoChanged", e); }
        }

        private static void OnSessionStreamVideoDimensionsChanged(IntPtr session, IntPtr ud, IntPtr stream, int width, int height)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnStreamVideoDimensionsChanged(stream, width, height); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.StreamVideoDimensionsChanged", e); }
        }

        private static void OnSubscriberVideoLayerChanged(IntPtr subscriber, IntPtr ud, IntPtr rid, int temporalLayer, int paused)
        {
            try
            {
                var s = Registry.Get<Subscriber>(ud);
                if (s != null) s.OnVideoLayerChanged(Utf8.Decode(rid), temporalLayer < 0 ? (int?)null : temporalLayer, paused != Native.OTC_FALSE);
            }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.VideoLayerChanged", e); }
        }

        private static void OnSessionActiveSpeakerChanged(IntPtr session, IntPtr ud, IntPtr streamId, IntPtr connectionId)
        {
            try { var s = Registry.Get<Session>(ud); if (s != null) s.OnActiveSpeakerChanged(Utf8.Decode(streamId), Utf8.Decode(connectionId)); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Session.ActiveSpeakerChanged", e); }
        }

        // ---- publisher ----

        private static void OnPublisherStreamCreated(IntPtr publisher, IntPtr ud, IntPtr stream)
        {
            try { var p = Registry.Get<Publisher>(ud); if (p != null) p.OnStreamCreated(stream); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Publisher.StreamCreated", e); }
        }

        private static void OnPublisherError(IntPtr publisher, IntPtr ud, IntPtr message, int error)
        {
            try { var p = Registry.Get<Publisher>(ud); if (p != null) p.OnError(Utf8.Decode(message), error); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Publisher.Error", e); }
        }

        private static void OnPublisherMuteForced(IntPtr publisher, IntPtr ud)
        {
            try { var p = Registry.Get<Publisher>(ud); if (p != null) p.OnMuteForced(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Publisher.MuteForced", e); }
        }

        // ---- subscriber ----

        private static void OnSubscriberConnected(IntPtr subscriber, IntPtr ud, IntPtr stream)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnConnected(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.Connected", e); }
        }

        private static void OnSubscriberDisconnected(IntPtr subscriber, IntPtr ud)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnDisconnected(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.Disconnected", e); }
        }

        private static void OnSubscriberRenderFrame(IntPtr subscriber, IntPtr ud, IntPtr frame)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnRenderFrame(frame); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoRenderer.RenderFrame", e); }
        }

        private static void OnSubscriberAudioData(IntPtr subscriber, IntPtr ud, IntPtr audio)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnAudioData(audio); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.AudioData", e); }
        }

        private static void OnSubscriberError(IntPtr subscriber, IntPtr ud, IntPtr message, int error)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnError(Utf8.Decode(message), error); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.Error", e); }
        }

        private static void OnSubscriberMismatch(IntPtr subscriber, IntPtr ud)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnMismatch(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.EncryptionSecretMismatch", e); }
        }

        private static void OnSubscriberMatch(IntPtr subscriber, IntPtr ud)
        {
            try { var s = Registry.Get<Subscriber>(ud); if (s != null) s.OnMatch(); }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "Subscriber.EncryptionSecretMatch", e); }
        }

        // ---- capturer (returns OTC_TRUE / OTC_FALSE) ----

        private static int OnCapturerInit(IntPtr capturer, IntPtr ud)
        {
            try { var c = Registry.Get<CapturerAdapter>(ud); return c != null && c.Init(capturer) ? Native.OTC_TRUE : Native.OTC_FALSE; }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoCapturer.Init", e); return Native.OTC_FALSE; }
        }

        private static int OnCapturerDestroy(IntPtr capturer, IntPtr ud)
        {
            try { var c = Registry.Get<CapturerAdapter>(ud); if (c != null) c.Destroy(); return Native.OTC_TRUE; }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoCapturer.Destroy", e); return Native.OTC_FALSE; }
        }

        private static int OnCapturerStart(IntPtr capturer, IntPtr ud)
        {
            try { var c = Registry.Get<CapturerAdapter>(ud); return c != null && c.Start() ? Native.OTC_TRUE : Native.OTC_FALSE; }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoCapturer.Start", e); return Native.OTC_FALSE; }
        }

        private static int OnCapturerStop(IntPtr capturer, IntPtr ud)
        {
            try { var c = Registry.Get<CapturerAdapter>(ud); if (c != null) c.Stop(); return Native.OTC_TRUE; }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoCapturer.Stop", e); return Native.OTC_FALSE; }
        }

        private static int OnCapturerSettings(IntPtr capturer, IntPtr ud, IntPtr settings)
        {
            try
            {
                var c = Registry.Get<CapturerAdapter>(ud);
                if (c == null || settings == IntPtr.Zero) return Native.OTC_FALSE;
                Native.otc_video_capturer_settings s;
                if (!c.GetSettings(out s)) return Native.OTC_FALSE;
                Marshal.StructureToPtr(s, settings, false);
                return Native.OTC_TRUE;
            }
            catch (Exception e) { UmbraSdk.ReportCallbackException(null, "IVideoCapturer.GetCaptureSettings", e); return Native.OTC_FALSE; }
        }
    }
}
