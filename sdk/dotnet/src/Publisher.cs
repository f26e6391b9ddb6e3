using System;
using System.Threading;

namespace Umbra
{
    /// <summary>Video codecs a publisher can encode with, numbered as OpenTok's (and the C SDK's OTC_VIDEO_CODEC_*).</summary>
    public enum VideoCodec
    {
        /// <summary>libvpx; every WebRTC endpoint decodes it. The default.</summary>
        VP8 = 1,
        /// <summary>OpenH264, constrained baseline; Chromium decodes it, Firefox only with its OpenH264 download.</summary>
        H264 = 2,
        /// <summary>libvpx, profile 0; Chromium and Firefox decode it.</summary>
        VP9 = 3,
    }

    /// <summary>
    /// What this client publishes: video from an <see cref="IVideoCapturer"/> (or, without one,
    /// the SDK's built-in test pattern) and audio (the SDK's 440 Hz tone: Umbra's .NET SDK does
    /// not wrap the C SDK's audio device yet). Publish it with <see cref="Session.Publish"/>;
    /// dispose it when done. Its events are raised through the <see cref="Session.EventContext"/>
    /// of the session it is published in.
    /// </summary>
    public sealed class Publisher : IDisposable
    {
        private IntPtr handle;
        private readonly IntPtr userData;
        private readonly CapturerAdapter adapter;
        private int disposed;
        private volatile Stream stream;

        /// <summary>A publisher with video from <paramref name="capturer"/> (null: the built-in test pattern, 320x240 at 30 fps).</summary>
        public Publisher(IVideoCapturer capturer = null, string name = null, bool hasAudioTrack = true, bool hasVideoTrack = true)
            : this(new Builder { Capturer = capturer, Name = name, HasAudioTrack = hasAudioTrack, HasVideoTrack = hasVideoTrack })
        {
        }

        /// <summary>A publisher made from a <see cref="Builder"/>.</summary>
        /// <exception cref="OpenTokException">NullOrInvalidParameter: the capturer's Init failed, or its settings are invalid; or the test pattern's size is.</exception>
        public Publisher(Builder builder)
        {
            if (builder == null) throw new ArgumentNullException("builder");
            UmbraSdk.Initialize();
            Name = builder.Name ?? string.Empty;
            Capturer = builder.Capturer;
            HasAudioTrack = builder.HasAudioTrack;
            HasVideoTrack = builder.HasVideoTrack;
            userData = Registry.Add(this);
            if (Capturer != null && HasVideoTrack) adapter = new CapturerAdapter(this, Capturer);
            IntPtr settings = Native.otc_publisher_settings_new();
            try
            {
                if (settings == IntPtr.Zero) throw new OpenTokException(ErrorCode.InternalError, "otc_publisher_settings_new failed");
                OpenTokException.Check(Native.otc_publisher_settings_set_name(settings, Utf8.Encode(Name)), "publisher name");
                OpenTokException.Check(Native.otc_publisher_settings_set_audio_track(settings, HasAudioTrack ? Native.OTC_TRUE : Native.OTC_FALSE), "audio track");
                OpenTokException.Check(Native.otc_publisher_settings_set_video_track(settings, HasVideoTrack ? Native.OTC_TRUE : Native.OTC_FALSE), "video track");
                OpenTokException.Check(Native.otc_publisher_settings_set_preferred_video_codec(settings, (int)builder.PreferredVideoCodec), "preferred video codec (VP8, H264 or VP9)");
                OpenTokException.Check(Native.otc_publisher_settings_set_simulcast(settings, builder.Simulcast ? Native.OTC_TRUE : Native.OTC_FALSE), "simulcast");
                OpenTokException.Check(Native.otc_publisher_settings_set_audio_level(settings, builder.AudioLevel ? Native.OTC_TRUE : Native.OTC_FALSE), "audio level");
                if (adapter != null)
                {
                    var table = Callbacks.CapturerTable(adapter.UserData);
                    OpenTokException.Check(Native.otc_publisher_settings_set_video_capturer(settings, ref table), "video capturer");
                }
                else if (builder.TestPatternWidth != 0 || builder.TestPatternHeight != 0 || builder.TestPatternFps != 0)
                {
                    OpenTokException.Check(Native.otc_publisher_settings_set_test_pattern(settings,
                        builder.TestPatternWidth != 0 ? builder.TestPatternWidth : 320,
                        builder.TestPatternHeight != 0 ? builder.TestPatternHeight : 240,
                        builder.TestPatternFps != 0 ? builder.TestPatternFps : 30), "test pattern (even width 64-4096, even height 16-4096, fps 1-120)");
                }
                var callbacks = Callbacks.PublisherTable(userData);
                handle = Native.otc_publisher_new_with_settings(ref callbacks, settings);
                if (handle == IntPtr.Zero)
                    throw new OpenTokException(ErrorCode.NullOrInvalidParameter, "the publisher could not be made: the capturer's Init failed or its capture settings are invalid (I420, even width 64-4096, even height 16-4096, fps 1-120)");
            }
            catch
            {
                Registry.Remove(userData);
                if (adapter != null) adapter.Release();
                throw;
            }
            finally
            {
                if (settings != IntPtr.Zero) Native.otc_publisher_settings_delete(settings);
            }
        }

        /// <summary>Publisher options (vendor-style builder).</summary>
        public sealed class Builder
        {
            public Builder()
            {
                HasAudioTrack = true;
                HasVideoTrack = true;
                PreferredVideoCodec = VideoCodec.VP8;
                Simulcast = true;
                AudioLevel = true;
            }

            /// <summary>The stream name others see.</summary>
            public string Name { get; set; }
            /// <summary>The video source; null for the built-in test pattern.</summary>
            public IVideoCapturer Capturer { get; set; }
            public bool HasAudioTrack { get; set; }
            public bool HasVideoTrack { get; set; }
            /// <summary>Umbra-specific: size and rate of the built-in test pattern when there is no capturer (0: 320, 240, 30).</summary>
            public int TestPatternWidth { get; set; }
            public int TestPatternHeight { get; set; }
            public int TestPatternFps { get; set; }
            /// <summary>The codec the video is encoded with (OpenTok's preferred video codec); subscribers decode whichever a stream carries.</summary>
            public VideoCodec PreferredVideoCodec { get; set; }
            /// <summary>Up to three simulcast layers in routed sessions (VP8, 270 lines or more), so subscribers can ask for smaller ones (default true).</summary>
            public bool Simulcast { get; set; }
            /// <summary>
            /// Send the level of each audio frame for <see cref="Session.ActiveSpeakerChanged"/> (default true).
            /// Levels travel in clear, outside end-to-end encryption: the router sees how loudly you speak.
            /// False keeps that private; this publisher is then never the active speaker.
            /// </summary>
            public bool AudioLevel { get; set; }

            public Publisher Build()
            {
                return new Publisher(this);
            }
        }

        /// <summary>The server accepted the stream (<see cref="Stream"/> is set before this is raised).</summary>
        public event EventHandler<StreamEventArgs> StreamCreated;
        /// <summary>
        /// A publisher error: <see cref="ErrorCode.EncryptionSecretMissing"/> when publishing in an
        /// end-to-end encrypted session without a secret (also thrown by <see cref="Session.Publish"/>),
        /// <see cref="ErrorCode.EncryptionInternalError"/> when encrypting fails,
        /// <see cref="ErrorCode.PublisherWebRtcError"/> when the media connection fails.
        /// </summary>
        public event EventHandler<ErrorEventArgs> Error;
        /// <summary>
        /// A moderator (or the REST API) forced this publisher to mute its audio. The SDK has
        /// already stopped sending audio (<see cref="PublishAudio"/> is now false); set
        /// <see cref="PublishAudio"/> to true to unmute.
        /// </summary>
        public event EventHandler MuteForced;

        /// <summary>
        /// Sends audio (true, the default) or not, before or while publishing. Off: nothing is
        /// encoded or sent and others see the stream's audio as off. Also how to unmute after
        /// <see cref="MuteForced"/>. A publisher made without an audio track stays without.
        /// </summary>
        public bool PublishAudio
        {
            get { return Native.otc_publisher_get_publish_audio(Handle()) != Native.OTC_FALSE; }
            set { OpenTokException.Check(Native.otc_publisher_set_publish_audio(Handle(), value ? Native.OTC_TRUE : Native.OTC_FALSE), "PublishAudio"); }
        }

        /// <summary>Sends video (true, the default) or not, as <see cref="PublishAudio"/>; turning it back on starts with a key frame.</summary>
        public bool PublishVideo
        {
            get { return Native.otc_publisher_get_publish_video(Handle()) != Native.OTC_FALSE; }
            set { OpenTokException.Check(Native.otc_publisher_set_publish_video(Handle(), value ? Native.OTC_TRUE : Native.OTC_FALSE), "PublishVideo"); }
        }

        public string Name { get; private set; }
        public IVideoCapturer Capturer { get; private set; }
        public bool HasAudioTrack { get; private set; }
        public bool HasVideoTrack { get; private set; }
        /// <summary>The stream of the latest publish, once <see cref="StreamCreated"/> happened; else null.</summary>
        public Stream Stream
        {
            get { return stream; }
        }
        /// <summary>The session it was last published in (null before).</summary>
        public Session Session { get; internal set; }

        /// <summary>
        /// Unpublishes (if published), stops and destroys the capturer (its Stop and Destroy run
        /// on this thread), and frees the native publisher. No SDK callback of it runs after this
        /// returns. May be called from the publisher's own event handlers.
        /// </summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            Native.otc_publisher_delete(handle);
            handle = IntPtr.Zero;
            Registry.Remove(userData);
            if (adapter != null) adapter.Release();
        }

        internal IntPtr Handle()
        {
            if (Volatile.Read(ref disposed) != 0) throw new ObjectDisposedException("Publisher");
            return handle;
        }

        private void Raise(string name, Action invoke)
        {
            var s = Session;
            if (s != null) s.Raise(this, name, invoke);
            else Session.Invoke(this, name, invoke);
        }

        internal void OnStreamCreated(IntPtr ptr)
        {
            var st = new Stream(ptr, Session);
            stream = st;
            var args = new StreamEventArgs(st);
            Raise("Publisher.StreamCreated", () => { var h = StreamCreated; if (h != null) h(this, args); });
        }

        internal void OnError(string message, int code)
        {
            var args = new ErrorEventArgs((ErrorCode)code, message);
            Raise("Publisher.Error", () => { var h = Error; if (h != null) h(this, args); });
        }

        internal void OnMuteForced()
        {
            Raise("Publisher.MuteForced", () => { var h = MuteForced; if (h != null) h(this, EventArgs.Empty); });
        }

        public sealed class StreamEventArgs : EventArgs
        {
            internal StreamEventArgs(Stream stream)
            {
                Stream = stream;
            }

            public Stream Stream { get; private set; }
        }

        public sealed class ErrorEventArgs : EventArgs
        {
            internal ErrorEventArgs(ErrorCode code, string message)
            {
                ErrorCode = code;
                Message = message ?? string.Empty;
            }

            public ErrorCode ErrorCode { get; private set; }
            public string Message { get; private set; }

            public override string ToString()
            {
                return ErrorCode + " (" + (int)ErrorCode + "): " + Message;
            }
        }
    }

    /// <summary>
    /// Connects an <see cref="IVideoCapturer"/> to the C capturer interface and is its
    /// <see cref="IVideoFrameConsumer"/>. The native capturer handle is valid from init until
    /// destroy; Consume holds the lock while it uses it, and destroy clears it under the lock,
    /// so a late Consume from the app's thread gets false instead of touching freed memory.
    /// </summary>
    internal sealed class CapturerAdapter : IVideoFrameConsumer
    {
        private readonly object gate = new object();
        private readonly Publisher publisher;
        private readonly IVideoCapturer capturer;
        private IntPtr native;
        internal readonly IntPtr UserData;

        internal CapturerAdapter(Publisher publisher, IVideoCapturer capturer)
        {
            this.publisher = publisher;
            this.capturer = capturer;
            UserData = Registry.Add(this);
        }

        internal void Release()
        {
            lock (gate) native = IntPtr.Zero;
            Registry.Remove(UserData);
        }

        public bool Consume(VideoFrame frame)
        {
            if (frame == null) throw new ArgumentNullException("frame");
            lock (gate)
            {
                if (native == IntPtr.Zero) return false;
                return frame.Provide(native) == Native.OTC_SUCCESS;
            }
        }

        internal bool Init(IntPtr nativeCapturer)
        {
            lock (gate) native = nativeCapturer;
            try
            {
                capturer.Init(this);
                return true;
            }
            catch (Exception e)
            {
                lock (gate) native = IntPtr.Zero;
                UmbraSdk.ReportCallbackException(publisher, "IVideoCapturer.Init", e);
                return false;
            }
        }

        internal bool GetSettings(out Native.otc_video_capturer_settings s)
        {
            s = new Native.otc_video_capturer_settings();
            VideoCaptureSettings v;
            try
            {
                v = capturer.GetCaptureSettings();
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(publisher, "IVideoCapturer.GetCaptureSettings", e);
                return false;
            }
            if (v == null) return false;
            s.format = (int)v.PixelFormat;
            s.width = v.Width;
            s.height = v.Height;
            s.fps = v.Fps;
            s.expected_delay = v.ExpectedDelay;
            s.mirror_on_local_render = v.MirrorOnLocalRender ? Native.OTC_TRUE : Native.OTC_FALSE;
            return true;
        }

        internal bool Start()
        {
            try
            {
                capturer.Start();
                return true;
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(publisher, "IVideoCapturer.Start", e);
                return false;
            }
        }

        internal void Stop()
        {
            try
            {
                capturer.Stop();
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(publisher, "IVideoCapturer.Stop", e);
            }
        }

        internal void Destroy()
        {
            lock (gate) native = IntPtr.Zero;
            try
            {
                capturer.Destroy();
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(publisher, "IVideoCapturer.Destroy", e);
            }
        }
    }
}
