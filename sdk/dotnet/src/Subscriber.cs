using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace Umbra
{
    /// <summary>Decoded audio of a subscriber: 48 kHz, mono, signed 16-bit, 20 ms per call.</summary>
    public sealed class AudioDataEventArgs : EventArgs
    {
        internal AudioDataEventArgs(short[] samples, int sampleRate, int channels)
        {
            Samples = samples;
            SampleRate = sampleRate;
            Channels = channels;
        }

        /// <summary>A copy of the samples (interleaved when there are several channels).</summary>
        public short[] Samples { get; private set; }
        public int SampleRate { get; private set; }
        public int Channels { get; private set; }
    }

    /// <summary>
    /// Receives one stream: decoded pictures go to an <see cref="IVideoRenderer"/> and decoded
    /// audio to <see cref="AudioData"/>, both on the SDK's dispatch thread. Subscribe with
    /// <see cref="Session.Subscribe"/>; dispose when done. Its other events are raised through
    /// the <see cref="Session.EventContext"/> of the session it is subscribed in.
    /// </summary>
    public sealed partial class Subscriber : IDisposable
    {
        private IntPtr handle;
        private readonly IntPtr userData;
        private int disposed;
        private long framesRendered;

        /// <summary>A subscriber to <paramref name="stream"/> (the SDK keeps its own copy of it).</summary>
        public Subscriber(Stream stream, IVideoRenderer renderer = null)
        {
            if (stream == null) throw new ArgumentNullException("stream");
            UmbraSdk.Initialize();
            Stream = stream;
            Renderer = renderer;
            userData = Registry.Add(this);
            bool added = false;
            try
            {
                stream.Handle.DangerousAddRef(ref added);
                var table = Callbacks.SubscriberTable(userData);
                handle = Native.otc_subscriber_new(stream.Handle.DangerousGetHandle(), ref table);
            }
            finally
            {
                if (added) stream.Handle.DangerousRelease();
            }
            if (handle == IntPtr.Zero)
            {
                Registry.Remove(userData);
                throw new OpenTokException(ErrorCode.NullOrInvalidParameter, "otc_subscriber_new refused the stream");
            }
            Native.otc_subscriber_set_video_layer_callback(handle, Callbacks.VideoLayerCallback(), userData);
        }

        /// <summary>The media connection is up.</summary>
        public event EventHandler Connected;
        /// <summary>The subscription ended (the stream ended or the session disconnected).</summary>
        public event EventHandler Disconnected;
        /// <summary>
        /// A subscriber error: <see cref="ErrorCode.EncryptionSecretMismatch"/> (once per mismatch:
        /// the publisher uses another secret), <see cref="ErrorCode.StreamNotEncrypted"/> (once: the
        /// publisher sends unencrypted media), <see cref="ErrorCode.DecryptionInternalError"/>,
        /// <see cref="ErrorCode.EncryptionSecretMissing"/> (also thrown by <see cref="Session.Subscribe"/>), ...
        /// </summary>
        public event EventHandler<ErrorEventArgs> Error;
        /// <summary>The stream's frames stopped decrypting (raised once, right after the Error with EncryptionSecretMismatch).</summary>
        public event EventHandler EncryptionSecretMismatch;
        /// <summary>
        /// The publisher declares end-to-end encryption but sends unencrypted media: its app does
        /// not encrypt (raised once, right after the Error with <see cref="ErrorCode.StreamNotEncrypted"/>).
        /// Nothing of the stream is rendered. Not a mismatch: show "this participant's app does not
        /// encrypt", do not ask for another secret.
        /// </summary>
        public event EventHandler StreamNotEncrypted;
        /// <summary>After a mismatch (or a stream not encrypted), frames decrypt again.</summary>
        public event EventHandler EncryptionSecretMatch;
        /// <summary>Decoded audio, raised on the SDK's dispatch thread (never marshalled; keep handlers short).</summary>
        public event EventHandler<AudioDataEventArgs> AudioData;

        public Stream Stream { get; private set; }
        /// <summary>Where decoded pictures go (may be null: they are dropped).</summary>
        public IVideoRenderer Renderer { get; private set; }
        /// <summary>The session it was last subscribed in (null before).</summary>
        public Session Session { get; internal set; }
        /// <summary>Pictures decoded so far (handed to the renderer, if any).</summary>
        public long FramesRendered
        {
            get { return Interlocked.Read(ref framesRendered); }
        }

        /// <summary>
        /// Unsubscribes (if subscribed) and frees the native subscriber. No SDK callback of it runs
        /// after this returns. May be called from the subscriber's own event handlers.
        /// </summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            Native.otc_subscriber_delete(handle);
            handle = IntPtr.Zero;
            Registry.Remove(userData);
        }

        internal IntPtr Handle()
        {
            if (Volatile.Read(ref disposed) != 0) throw new ObjectDisposedException("Subscriber");
            return handle;
        }

        private void Raise(string name, Action invoke)
        {
            var s = Session;
            if (s != null) s.Raise(this, name, invoke);
            else Session.Invoke(this, name, invoke);
        }

        internal void OnConnected()
        {
            Raise("Subscriber.Connected", () => { var h = Connected; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnDisconnected()
        {
            Raise("Subscriber.Disconnected", () => { var h = Disconnected; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnError(string message, int code)
        {
            var args = new ErrorEventArgs((ErrorCode)code, message);
            Raise("Subscriber.Error", () => { var h = Error; if (h != null) h(this, args); });
            // libumbra reports it through on_error only (a new callback member would change the
            // size of the C callback table); the event makes it as easy to handle as a mismatch.
            if (args.ErrorCode == ErrorCode.StreamNotEncrypted)
                Raise("Subscriber.StreamNotEncrypted", () => { var h = StreamNotEncrypted; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnMismatch()
        {
            Raise("Subscriber.EncryptionSecretMismatch", () => { var h = EncryptionSecretMismatch; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnMatch()
        {
            Raise("Subscriber.EncryptionSecretMatch", () => { var h = EncryptionSecretMatch; if (h != null) h(this, EventArgs.Empty); });
        }

        // SDK thread, not marshalled: the frame is valid during this call only.
        internal void OnRenderFrame(IntPtr ptr)
        {
            Interlocked.Increment(ref framesRendered);
            var renderer = Renderer;
            if (renderer == null) return;
            var frame = VideoFrame.Borrow(ptr);
            try
            {
                renderer.RenderFrame(frame);
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(this, "IVideoRenderer.RenderFrame", e);
            }
            finally
            {
                frame.Invalidate();
            }
        }

        // SDK thread, not marshalled: the samples are copied.
        internal void OnAudioData(IntPtr ptr)
        {
            var h = AudioData;
            if (h == null || ptr == IntPtr.Zero) return;
            var a = (Native.otc_audio_data)Marshal.PtrToStructure(ptr, typeof(Native.otc_audio_data));
            long count = (long)a.number_of_samples.ToUInt64() * (long)a.number_of_channels.ToUInt64();
            if (a.bits_per_sample != 16 || a.sample_buffer == IntPtr.Zero || count < 0 || count > 1 << 20) return;
            var samples = new short[count];
            if (count > 0) Marshal.Copy(a.sample_buffer, samples, 0, (int)count);
            Session.Invoke(this, "Subscriber.AudioData", () => h(this, new AudioDataEventArgs(samples, a.sample_rate, (int)a.number_of_channels.ToUInt64())));
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
}
