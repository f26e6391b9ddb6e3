using System;

namespace Umbra
{
    /// <summary>What a video capturer produces (<see cref="IVideoCapturer.GetCaptureSettings"/>).</summary>
    public sealed class VideoCaptureSettings
    {
        public VideoCaptureSettings()
        {
            PixelFormat = PixelFormat.I420;
            Width = 640;
            Height = 480;
            Fps = 30;
        }

        /// <summary>Must be <see cref="Umbra.PixelFormat.I420"/>.</summary>
        public PixelFormat PixelFormat { get; set; }
        /// <summary>Picture width: even, 64 to 4096. Every frame consumed must have this size.</summary>
        public int Width { get; set; }
        /// <summary>Picture height: even, 16 to 4096.</summary>
        public int Height { get; set; }
        /// <summary>Frames per second the SDK encodes (1 to 120): it takes the latest consumed frame at this rate.</summary>
        public int Fps { get; set; }
        /// <summary>Unused by Umbra (kept for the shape of the vendor's API).</summary>
        public int ExpectedDelay { get; set; }
        /// <summary>Unused by Umbra (there is no local renderer).</summary>
        public bool MirrorOnLocalRender { get; set; }
    }

    /// <summary>Where a capturer hands its pictures (given to <see cref="IVideoCapturer.Init"/>).</summary>
    public interface IVideoFrameConsumer
    {
        /// <summary>
        /// Hands a picture to the SDK, which copies it (the caller keeps and disposes
        /// <paramref name="frame"/>). Call it from any thread between <see cref="IVideoCapturer.Start"/>
        /// and <see cref="IVideoCapturer.Stop"/>; the encoder takes the latest picture at the
        /// capture rate. Returns false when the SDK refused the frame (wrong size, or the
        /// capturer is not started or already destroyed); it never throws for those.
        /// </summary>
        bool Consume(VideoFrame frame);
    }

    /// <summary>
    /// A video source the application implements (a camera, a screen, generated pictures), for
    /// <see cref="Publisher"/>. The SDK calls these methods on the thread of the SDK call that
    /// causes them: <see cref="Init"/> and <see cref="GetCaptureSettings"/> inside the
    /// Publisher constructor, <see cref="Start"/> inside <see cref="Session.Publish"/>,
    /// <see cref="Stop"/> inside <see cref="Session.Unpublish"/>, <see cref="Session.Dispose"/>
    /// or <see cref="Publisher.Dispose"/>, and <see cref="Destroy"/> inside
    /// <see cref="Publisher.Dispose"/>. An exception thrown by one of them counts as a failure
    /// (Init or Start: the SDK call fails) and is reported to <see cref="UmbraSdk.CallbackException"/>.
    /// </summary>
    public interface IVideoCapturer
    {
        void Init(IVideoFrameConsumer frameConsumer);
        VideoCaptureSettings GetCaptureSettings();
        void Start();
        /// <summary>Stop calling Consume (join your capture thread here: Consume calls may still be running).</summary>
        void Stop();
        void Destroy();
    }

    /// <summary>
    /// Receives a subscriber's decoded pictures. <see cref="RenderFrame"/> runs on the session's
    /// SDK dispatch thread (never marshalled to a SynchronizationContext): copy what you need
    /// (<see cref="VideoFrame.Clone"/>, <see cref="VideoFrame.GetBuffer"/>) and hand it to your
    /// UI thread yourself. A slow RenderFrame delays the session's later events.
    /// </summary>
    public interface IVideoRenderer
    {
        /// <summary>A decoded I420 picture, valid only during this call.</summary>
        void RenderFrame(VideoFrame frame);
    }
}
