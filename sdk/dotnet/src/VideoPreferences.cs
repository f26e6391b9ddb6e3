using System;

namespace Umbra
{
    /// <summary>A picture size in pixels.</summary>
    public struct VideoSize : IEquatable<VideoSize>
    {
        public VideoSize(int width, int height)
        {
            Width = width;
            Height = height;
        }

        public int Width { get; private set; }
        public int Height { get; private set; }

        public bool Equals(VideoSize other) { return Width == other.Width && Height == other.Height; }
        public override bool Equals(object obj) { return obj is VideoSize && Equals((VideoSize)obj); }
        public override int GetHashCode() { return Width * 16411 + Height; }
        public override string ToString() { return Width + "x" + Height; }
    }

    // What the subscriber asks of a routed stream's video. libumbra keeps the values and applies
    // them when the subscriber subscribes, so they may be set at any time.
    public sealed partial class Subscriber
    {
        private VideoSize? preferredResolution;
        private float? preferredFrameRate;
        private bool subscribeToVideo = true;

        /// <summary>
        /// The largest picture wanted (null, the default: no limit). In a routed session the
        /// router forwards the smallest simulcast layer at least this large both ways (or the
        /// largest). <see cref="ArgumentOutOfRangeException"/> for a side of 0 or less, or above 16384.
        /// </summary>
        public VideoSize? PreferredResolution
        {
            get { return preferredResolution; }
            set
            {
                if (value.HasValue)
                {
                    var v = value.Value;
                    if (v.Width < 1 || v.Height < 1 || v.Width > 16384 || v.Height > 16384)
                        throw new ArgumentOutOfRangeException("value", v.ToString(), "a preferred resolution's sides must be 1 to 16384 (null for no preference)");
                }
                uint w = value.HasValue ? (uint)value.Value.Width : 0, h = value.HasValue ? (uint)value.Value.Height : 0;
                Check(Native.otc_subscriber_set_preferred_resolution(Handle(), w, h), "PreferredResolution");
                preferredResolution = value;
            }
        }

        /// <summary>
        /// The most frames per second wanted (null, the default: all); fractions round up.
        /// <see cref="ArgumentOutOfRangeException"/> unless above 0 and at most 240.
        /// </summary>
        public float? PreferredFrameRate
        {
            get { return preferredFrameRate; }
            set
            {
                // libumbra reads 0 as "no limit": refuse it here, so a 0 is never a silent no-op.
                if (value.HasValue && (float.IsNaN(value.Value) || value.Value <= 0f || value.Value > 240f))
                    throw new ArgumentOutOfRangeException("value", value.Value, "a preferred frame rate must be above 0 and at most 240 (null for no preference)");
                Check(Native.otc_subscriber_set_preferred_framerate(Handle(), value.HasValue ? value.Value : 0f), "PreferredFrameRate");
                preferredFrameRate = value;
            }
        }

        /// <summary>Whether to receive video at all (default true); audio continues either way.</summary>
        public bool SubscribeToVideo
        {
            get { return subscribeToVideo; }
            set
            {
                Check(Native.otc_subscriber_set_subscribe_to_video(Handle(), value ? Native.OTC_TRUE : Native.OTC_FALSE), "SubscribeToVideo");
                subscribeToVideo = value;
            }
        }

        /// <summary>
        /// Umbra's (the vendor's Windows SDK has none): what the router forwards of this
        /// subscriber's video changed, after a preference above or a change of bandwidth (routed
        /// sessions only). Raised like the other events.
        /// </summary>
        public event EventHandler<VideoLayerEventArgs> VideoLayerChanged;

        internal void OnVideoLayerChanged(string rid, int? temporalLayer, bool paused)
        {
            var args = new VideoLayerEventArgs(rid, temporalLayer, paused);
            Raise("Subscriber.VideoLayerChanged", () => { var h = VideoLayerChanged; if (h != null) h(this, args); });
        }

        public sealed class VideoLayerEventArgs : EventArgs
        {
            internal VideoLayerEventArgs(string rid, int? temporalLayer, bool paused)
            {
                Rid = rid;
                TemporalLayer = temporalLayer;
                Paused = paused;
            }

            /// <summary>The simulcast layer now forwarded; null for a stream without rid layers (VP9 or AV1 SVC).</summary>
            public string Rid { get; private set; }
            /// <summary>The highest temporal layer forwarded; null for all of them.</summary>
            public int? TemporalLayer { get; private set; }
            /// <summary>True while no video is forwarded (SubscribeToVideo is false, or no layer fits the link).</summary>
            public bool Paused { get; private set; }

            public override string ToString() { return (Paused ? "paused" : (Rid ?? "-")) + (TemporalLayer.HasValue ? "/T" + TemporalLayer.Value : ""); }
        }

        private static void Check(int status, string what)
        {
            if (status != Native.OTC_SUCCESS)
                throw new OpenTokException((ErrorCode)status, "libumbra refused Subscriber." + what);
        }
    }
}
