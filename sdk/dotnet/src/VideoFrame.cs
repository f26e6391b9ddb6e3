using System;
using System.Runtime.InteropServices;

namespace Umbra
{
    /// <summary>A plane of an I420 picture.</summary>
    public enum VideoPlane
    {
        Y = 0,
        U = 1,
        V = 2,
    }

    /// <summary>Pixel format of a frame. Umbra's frames are always planar YUV 4:2:0.</summary>
    public enum PixelFormat
    {
        Unknown = 0,
        I420 = 1,
    }

    /// <summary>
    /// An I420 picture in native memory. Planes are tightly packed: the Y stride is the width, U
    /// and V strides are <c>(width + 1) / 2</c>.
    /// <para>
    /// Frames you create (<see cref="CreateI420(int,int,byte[],int,byte[],int,byte[],int)"/>,
    /// <see cref="FromBuffer"/>, <see cref="CreateTestPattern"/>, <see cref="Clone"/>) are yours:
    /// dispose them (a finalizer frees forgotten ones). A frame passed to
    /// <see cref="IVideoRenderer.RenderFrame"/> belongs to the SDK and is valid only during that
    /// call: afterwards every member throws <see cref="ObjectDisposedException"/>; keep a
    /// <see cref="Clone"/> instead. Members are safe to call from any thread.
    /// </para>
    /// </summary>
    public sealed class VideoFrame : IDisposable
    {
        private readonly object gate = new object();
        private IntPtr frame;
        private readonly bool owned;
        private readonly long serial = System.Threading.Interlocked.Increment(ref serials);
        private static long serials;

        private VideoFrame(IntPtr frame, bool owned)
        {
            this.frame = frame;
            this.owned = owned;
        }

        ~VideoFrame()
        {
            if (owned && frame != IntPtr.Zero) Native.otc_video_frame_delete(frame);
        }

        internal static VideoFrame Borrow(IntPtr frame)
        {
            return new VideoFrame(frame, false);
        }

        private static VideoFrame Own(IntPtr frame, string what)
        {
            if (frame == IntPtr.Zero) throw new OpenTokException(ErrorCode.NullOrInvalidParameter, what + " refused its arguments");
            return new VideoFrame(frame, true);
        }

        /// <summary>Ends a borrowed frame's validity (the SDK's callback returned).</summary>
        internal void Invalidate()
        {
            lock (gate) frame = IntPtr.Zero;
        }

        /// <summary>Frees a frame you own (no effect on one borrowed from the SDK, other than ending its use).</summary>
        public void Dispose()
        {
            lock (gate)
            {
                if (owned && frame != IntPtr.Zero) Native.otc_video_frame_delete(frame);
                frame = IntPtr.Zero;
            }
            GC.SuppressFinalize(this);
        }

        // Runs f on the live native frame while holding the frame's lock (so a borrowed frame
        // cannot be invalidated, nor an owned one freed, in the middle).
        private T With<T>(Func<IntPtr, T> f)
        {
            lock (gate)
            {
                if (frame == IntPtr.Zero) throw new ObjectDisposedException("VideoFrame", "the frame was disposed, or was only valid during the SDK's callback (keep a Clone)");
                return f(frame);
            }
        }

        /// <summary>
        /// A copy of three planes with their strides (each at least the plane's width: width for
        /// Y, (width + 1) / 2 for U and V; each array holds stride * rows bytes).
        /// </summary>
        public static VideoFrame CreateI420(int width, int height, byte[] y, int yStride, byte[] u, int uStride, byte[] v, int vStride)
        {
            if (y == null || u == null || v == null) throw new ArgumentNullException(y == null ? "y" : u == null ? "u" : "v");
            int cw = (width + 1) / 2, ch = (height + 1) / 2;
            if (width < 1 || height < 1 || yStride < width || uStride < cw || vStride < cw) throw new ArgumentException("bad size or stride");
            if ((long)y.Length < (long)yStride * (height - 1) + width || (long)u.Length < (long)uStride * (ch - 1) + cw || (long)v.Length < (long)vStride * (ch - 1) + cw)
                throw new ArgumentException("a plane array is smaller than its stride and height need");
            UmbraSdk.Initialize();
            return Own(Native.otc_video_frame_new_I420(width, height, y, yStride, u, uStride, v, vStride), "otc_video_frame_new_I420");
        }

        /// <summary>
        /// A copy of three planes in native memory (e.g. a locked bitmap or a camera buffer); the
        /// caller guarantees each pointer covers stride * rows bytes.
        /// </summary>
        public static VideoFrame CreateI420(int width, int height, IntPtr y, int yStride, IntPtr u, int uStride, IntPtr v, int vStride)
        {
            UmbraSdk.Initialize();
            return Own(Native.otc_video_frame_new_I420_ptr(width, height, y, yStride, u, uStride, v, vStride), "otc_video_frame_new_I420");
        }

        /// <summary>A copy of a packed I420 buffer: Y, then U, then V, tightly packed.</summary>
        public static VideoFrame FromBuffer(int width, int height, byte[] i420)
        {
            if (i420 == null) throw new ArgumentNullException("i420");
            if (width < 1 || height < 1 || i420.Length < BufferSize(width, height)) throw new ArgumentException("the buffer is smaller than an I420 picture of this size");
            UmbraSdk.Initialize();
            return Own(Native.otc_video_frame_new(Native.OTC_VIDEO_FRAME_FORMAT_YUV420P, width, height, i420), "otc_video_frame_new");
        }

        /// <summary>Bytes of a packed I420 picture of this size.</summary>
        public static int BufferSize(int width, int height)
        {
            return width * height + 2 * ((width + 1) / 2) * ((height + 1) / 2);
        }

        /// <summary>
        /// Picture number <paramref name="n"/> of the SDK's built-in test pattern (what a publisher
        /// without a capturer sends): its frame number is drawn in a strip at the top. Umbra-specific,
        /// for tests and diagnostics.
        /// </summary>
        public static VideoFrame CreateTestPattern(int width, int height, uint n)
        {
            UmbraSdk.Initialize();
            return Own(Native.otc_test_pattern_frame_new(width, height, n), "otc_test_pattern_frame_new");
        }

        /// <summary>
        /// PSNR in dB of <paramref name="decoded"/> against <paramref name="reference"/> over all
        /// three planes; +infinity for identical pictures, -1 if the sizes differ.
        /// </summary>
        public static double Psnr(VideoFrame reference, VideoFrame decoded)
        {
            if (reference == null) throw new ArgumentNullException("reference");
            if (decoded == null) throw new ArgumentNullException("decoded");
            // Both frames' locks, always in the same order (no deadlock with Psnr(b, a) elsewhere).
            VideoFrame first = reference.serial <= decoded.serial ? reference : decoded;
            VideoFrame second = ReferenceEquals(first, reference) ? decoded : reference;
            return first.With(a => second.With(b => Native.otc_video_frame_psnr(reference.frame, decoded.frame)));
        }

        /// <summary>The frame number the test pattern drew into this picture, read back (also from a lossy decoded picture); -1 if none.</summary>
        public long ReadTestPatternFrameNumber()
        {
            return With(f => Native.otc_test_pattern_read_frame_number(f));
        }

        public int Width
        {
            get { return With(f => Native.otc_video_frame_get_width(f)); }
        }

        public int Height
        {
            get { return With(f => Native.otc_video_frame_get_height(f)); }
        }

        public PixelFormat Format
        {
            get { return With(f => (PixelFormat)Native.otc_video_frame_get_format(f)); }
        }

        /// <summary>Address of a plane's first byte, valid while the frame is (see the class remarks).</summary>
        public IntPtr GetPlane(VideoPlane plane)
        {
            return With(f => Native.otc_video_frame_get_plane_binary_data(f, (int)plane));
        }

        /// <summary>Bytes from one row of a plane to the next.</summary>
        public int GetPlaneStride(VideoPlane plane)
        {
            return With(f => Native.otc_video_frame_get_plane_stride(f, (int)plane));
        }

        /// <summary>Bytes in a plane.</summary>
        public int GetPlaneSize(VideoPlane plane)
        {
            return With(f => checked((int)Native.otc_video_frame_get_plane_size(f, (int)plane).ToUInt64()));
        }

        /// <summary>A managed copy of a plane (stride * rows bytes).</summary>
        public byte[] GetPlaneBytes(VideoPlane plane)
        {
            return With(f =>
            {
                int size = checked((int)Native.otc_video_frame_get_plane_size(f, (int)plane).ToUInt64());
                var bytes = new byte[size];
                if (size > 0) Marshal.Copy(Native.otc_video_frame_get_plane_binary_data(f, (int)plane), bytes, 0, size);
                return bytes;
            });
        }

        /// <summary>A managed copy of the whole picture, packed (Y, U, V).</summary>
        public byte[] GetBuffer()
        {
            return With(f =>
            {
                int size = checked((int)Native.otc_video_frame_get_buffer_size(f).ToUInt64());
                var bytes = new byte[size];
                if (size > 0) Marshal.Copy(Native.otc_video_frame_get_buffer(f), bytes, 0, size);
                return bytes;
            });
        }

        /// <summary>A copy you own (dispose it): use it to keep a frame beyond <see cref="IVideoRenderer.RenderFrame"/>.</summary>
        public VideoFrame Clone()
        {
            return Own(With(f => Native.otc_video_frame_copy(f)), "otc_video_frame_copy");
        }

        internal int Provide(IntPtr capturer)
        {
            return With(f => Native.otc_video_capturer_provide_frame(capturer, 0, f));
        }
    }
}
