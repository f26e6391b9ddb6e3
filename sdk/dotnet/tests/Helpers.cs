using System;
using System.Collections.Generic;
using System.Threading;

namespace Umbra.Tests
{
    /// <summary>
    /// A capturer that draws the SDK's test pattern on its own thread and hands it over through
    /// managed memory: picture n is made natively, its planes copied into byte arrays, and a new
    /// frame built from those arrays (with padded strides) is consumed. The subscriber's check of
    /// the frame numbers and PSNR therefore also checks the managed plane copies both ways.
    /// </summary>
    internal sealed class PatternCapturer : IVideoCapturer
    {
        private readonly int width, height, fps;
        private IVideoFrameConsumer consumer;
        private Thread thread;
        private volatile bool running;
        public int Consumed, Refused;
        public readonly List<string> Calls = new List<string>();
        public readonly Dictionary<string, int> CallThreads = new Dictionary<string, int>();

        public PatternCapturer(int width, int height, int fps)
        {
            this.width = width;
            this.height = height;
            this.fps = fps;
        }

        private void Note(string call)
        {
            lock (Calls)
            {
                Calls.Add(call);
                CallThreads[call] = Thread.CurrentThread.ManagedThreadId;
            }
        }

        public string CallList
        {
            get { lock (Calls) return string.Join(",", Calls); }
        }

        public void Init(IVideoFrameConsumer frameConsumer)
        {
            Note("Init");
            consumer = frameConsumer;
        }

        public VideoCaptureSettings GetCaptureSettings()
        {
            Note("GetCaptureSettings");
            return new VideoCaptureSettings { Width = width, Height = height, Fps = fps };
        }

        public void Start()
        {
            Note("Start");
            running = true;
            thread = new Thread(Loop) { IsBackground = true, Name = "test-capturer" };
            thread.Start();
        }

        public void Stop()
        {
            Note("Stop");
            running = false;
            if (thread != null) thread.Join(5000);
        }

        public void Destroy()
        {
            Note("Destroy");
        }

        private void Loop()
        {
            uint n = 0;
            int cw = (width + 1) / 2, ch = (height + 1) / 2, pad = 8;
            while (running)
            {
                using (var p = VideoFrame.CreateTestPattern(width, height, n++))
                {
                    byte[] y = Pad(p.GetPlaneBytes(VideoPlane.Y), width, height, pad);
                    byte[] u = Pad(p.GetPlaneBytes(VideoPlane.U), cw, ch, pad);
                    byte[] v = Pad(p.GetPlaneBytes(VideoPlane.V), cw, ch, pad);
                    using (var f = VideoFrame.CreateI420(width, height, y, width + pad, u, cw + pad, v, cw + pad))
                    {
                        if (consumer.Consume(f)) Interlocked.Increment(ref Consumed);
                        else Interlocked.Increment(ref Refused);
                    }
                }
                Thread.Sleep(1000 / fps);
            }
        }

        /// <summary>Copies a tightly packed plane into rows of stride width + pad (the padding filled with junk).</summary>
        internal static byte[] Pad(byte[] plane, int w, int h, int pad)
        {
            var o = new byte[(w + pad) * h];
            for (int i = 0; i < o.Length; i++) o[i] = 0xA5;
            for (int r = 0; r < h; r++) Buffer.BlockCopy(plane, r * w, o, r * (w + pad), w);
            return o;
        }
    }

    /// <summary>
    /// Checks every decoded picture against the test pattern: reads its frame number, regenerates
    /// that picture and measures the PSNR (natively, and again in managed code from the copied
    /// planes: both must agree). A frame passes with PSNR >= 30 dB and a number above the last.
    /// </summary>
    internal sealed class CheckingRenderer : IVideoRenderer
    {
        public const double MinPsnr = 30.0;
        public int Ok, Bad, ManagedMismatch, Calls;
        public long LastNumber = -1;
        public double MinSeenPsnr = double.PositiveInfinity;
        private readonly HashSet<int> threads = new HashSet<int>();
        public VideoFrame Kept; // the first frame object, kept to check it is invalid after the call
        public string FirstProblem;
        public int ExpectedWidth; // 0: any

        /// <summary>A copy of the managed thread ids RenderFrame ran on (it may still be running).</summary>
        public HashSet<int> Threads
        {
            get { lock (threads) return new HashSet<int>(threads); }
        }

        public void RenderFrame(VideoFrame frame)
        {
            Interlocked.Increment(ref Calls);
            lock (threads) threads.Add(Thread.CurrentThread.ManagedThreadId);
            if (Kept == null) Kept = frame;
            long n = frame.ReadTestPatternFrameNumber();
            int w = frame.Width, h = frame.Height;
            bool good = false;
            string problem = null;
            if (ExpectedWidth != 0 && w != ExpectedWidth)
            {
                problem = "a " + w + "x" + h + " picture, expected width " + ExpectedWidth;
            }
            else if (n < 0)
            {
                problem = "no frame number";
            }
            else
            {
                using (var reference = VideoFrame.CreateTestPattern(w, h, (uint)n))
                {
                    double psnr = VideoFrame.Psnr(reference, frame);
                    double managed = ManagedPsnr(reference.GetBuffer(), frame.GetBuffer());
                    if (Math.Abs(psnr - managed) > 0.01 && !(double.IsInfinity(psnr) && double.IsInfinity(managed)))
                    {
                        Interlocked.Increment(ref ManagedMismatch);
                        problem = "native PSNR " + psnr + " != managed " + managed;
                    }
                    else if (frame.GetPlaneStride(VideoPlane.Y) != w || frame.GetPlaneStride(VideoPlane.U) != (w + 1) / 2 ||
                             frame.GetPlaneSize(VideoPlane.V) != ((w + 1) / 2) * ((h + 1) / 2) || frame.Format != PixelFormat.I420)
                    {
                        problem = "plane strides or sizes disagree with " + w + "x" + h;
                    }
                    else if (psnr < MinPsnr)
                    {
                        problem = "frame " + n + " PSNR " + psnr.ToString("0.0") + " dB";
                    }
                    else if (n <= LastNumber)
                    {
                        problem = "frame " + n + " after " + LastNumber;
                    }
                    else
                    {
                        good = true;
                        if (psnr < MinSeenPsnr) MinSeenPsnr = psnr;
                    }
                }
                LastNumber = Math.Max(LastNumber, n);
            }
            if (good) Interlocked.Increment(ref Ok);
            else
            {
                Interlocked.Increment(ref Bad);
                if (FirstProblem == null) FirstProblem = problem;
            }
        }

        internal static double ManagedPsnr(byte[] a, byte[] b)
        {
            if (a.Length != b.Length) return -1;
            double se = 0;
            for (int i = 0; i < a.Length; i++)
            {
                int d = a[i] - b[i];
                se += d * d;
            }
            if (se == 0) return double.PositiveInfinity;
            double mse = se / a.Length;
            return 10 * Math.Log10(255.0 * 255.0 / mse);
        }

        public string Summary
        {
            get
            {
                return Ok + " frames matched (min PSNR " + MinSeenPsnr.ToString("0.0") + " dB), " + Bad + " did not" +
                       (FirstProblem != null ? " (first: " + FirstProblem + ")" : "");
            }
        }
    }

    /// <summary>
    /// A list the SDK's event threads append to while the test thread reads it. Every access takes
    /// the one lock: <see cref="List{T}.Add"/> raises <c>Count</c> before it stores the item, so an
    /// unlocked reader that saw <c>Count == 1</c> could still read a null <c>[0]</c>.
    /// </summary>
    internal sealed class Recorded<T>
    {
        private readonly List<T> items = new List<T>();

        public void Add(T item) { lock (items) items.Add(item); }
        public int Count { get { lock (items) return items.Count; } }
        public T this[int i] { get { lock (items) return items[i]; } }
        public T Find(Predicate<T> match) { lock (items) return items.Find(match); }
        public bool Exists(Predicate<T> match) { lock (items) return items.Exists(match); }
        public bool TrueForAll(Predicate<T> match) { lock (items) return items.TrueForAll(match); }
    }

    /// <summary>Records what a session, its publisher and its subscribers raise, with the thread each ran on.</summary>
    internal sealed class Recorder
    {
        private readonly List<string> events = new List<string>();
        private readonly List<int> threads = new List<int>();
        public readonly Recorded<Session.ErrorEventArgs> SessionErrors = new Recorded<Session.ErrorEventArgs>();
        public readonly Recorded<Publisher.ErrorEventArgs> PublisherErrors = new Recorded<Publisher.ErrorEventArgs>();
        public readonly Recorded<Subscriber.ErrorEventArgs> SubscriberErrors = new Recorded<Subscriber.ErrorEventArgs>();
        public readonly Recorded<Session.SignalEventArgs> Signals = new Recorded<Session.SignalEventArgs>();
        public readonly Recorded<Stream> StreamsReceived = new Recorded<Stream>(), StreamsDropped = new Recorded<Stream>();
        public readonly Recorded<Session.StreamPropertyChangedEventArgs> PropertyChanges = new Recorded<Session.StreamPropertyChangedEventArgs>();
        public readonly Recorded<Connection> ConnectionsCreated = new Recorded<Connection>(), ConnectionsDropped = new Recorded<Connection>();
        public volatile bool Connected, Disconnected;

        /// <summary>A copy of the events so far, in order (the SDK's threads keep appending).</summary>
        public List<string> Events
        {
            get { lock (events) return new List<string>(events); }
        }

        /// <summary>A copy of the managed thread id each event ran on, in event order.</summary>
        public List<int> Threads
        {
            get { lock (events) return new List<int>(threads); }
        }

        public void Add(string e)
        {
            lock (events)
            {
                events.Add(e);
                threads.Add(Thread.CurrentThread.ManagedThreadId);
            }
        }

        public int Count(string e)
        {
            lock (events) return events.FindAll(x => x == e).Count;
        }

        public string List
        {
            get { lock (events) return string.Join(", ", events); }
        }

        public bool AllOnThread(int id)
        {
            lock (events) return threads.TrueForAll(t => t == id);
        }

        public void Watch(Session s)
        {
            s.Connected += (o, e) => { Add("Connected"); Connected = true; };
            s.Disconnected += (o, e) => { Add("Disconnected"); Disconnected = true; };
            s.Error += (o, e) => { SessionErrors.Add(e); Add("Error:" + e.ErrorCode); };
            s.StreamReceived += (o, e) => { StreamsReceived.Add(e.Stream); Add("StreamReceived"); };
            s.StreamDropped += (o, e) => { StreamsDropped.Add(e.Stream); Add("StreamDropped"); };
            s.ConnectionCreated += (o, e) => { ConnectionsCreated.Add(e.Connection); Add("ConnectionCreated"); };
            s.ConnectionDropped += (o, e) => { ConnectionsDropped.Add(e.Connection); Add("ConnectionDropped"); };
            s.Signal += (o, e) => { Signals.Add(e); Add("Signal:" + e.Type); };
            s.StreamHasAudioChanged += (o, e) => { PropertyChanges.Add(e); Add("HasAudio:" + e.HasAudio); };
            s.StreamHasVideoChanged += (o, e) => { PropertyChanges.Add(e); Add("HasVideo:" + e.HasVideo); };
            s.StreamVideoDimensionsChanged += (o, e) => { PropertyChanges.Add(e); Add("VideoDimensions:" + e.VideoWidth + "x" + e.VideoHeight); };
        }

        public void Watch(Publisher p)
        {
            p.StreamCreated += (o, e) => Add("Publisher.StreamCreated");
            p.Error += (o, e) => { PublisherErrors.Add(e); Add("Publisher.Error:" + e.ErrorCode); };
            p.MuteForced += (o, e) => Add("Publisher.MuteForced");
        }

        public void Watch(Subscriber s)
        {
            s.Connected += (o, e) => Add("Subscriber.Connected");
            s.Disconnected += (o, e) => Add("Subscriber.Disconnected");
            s.Error += (o, e) => { SubscriberErrors.Add(e); Add("Subscriber.Error:" + e.ErrorCode); };
            s.EncryptionSecretMismatch += (o, e) => Add("Subscriber.Mismatch");
            s.StreamNotEncrypted += (o, e) => Add("Subscriber.NotEncrypted");
            s.EncryptionSecretMatch += (o, e) => Add("Subscriber.Match");
        }

        public Session.SignalEventArgs Signal(string type)
        {
            return Signals.Find(x => x.Type == type);
        }
    }

    /// <summary>
    /// The two clients most end-to-end tests start from, in one session of <paramref name="server"/>:
    /// one connects and publishes <see cref="Publisher"/>, the other subscribes to each stream it
    /// receives, rendering into the given renderer (with <c>beforeSubscribe</c> applied to the
    /// subscriber first). <see cref="PubRec"/> records the publishing side, <see cref="Rec"/> the
    /// subscribing one. Dispose frees everything, the subscriber first.
    /// </summary>
    internal sealed class PubSub : IDisposable
    {
        private readonly Server server;
        private readonly string sid;
        public readonly Session PubSession, SubSession;
        public readonly Publisher Publisher;
        public readonly Recorder PubRec = new Recorder(), Rec = new Recorder();
        private Subscriber subscriber;

        public PubSub(Server server, string sid, Publisher publisher)
        {
            this.server = server;
            this.sid = sid;
            Publisher = publisher;
            PubSession = new Session(server.ApiKey, sid, server.Url, null);
            SubSession = new Session(server.ApiKey, sid, server.Url, null);
            PubRec.Watch(PubSession);
            PubRec.Watch(publisher);
        }

        /// <summary>The subscriber, once a stream was received (null before).</summary>
        public Subscriber Subscriber { get { return Volatile.Read(ref subscriber); } }

        /// <summary>Connects the publishing client with <paramref name="secret"/>, publishes and waits for the stream.</summary>
        public void Publish(string secret)
        {
            PubSession.SetEncryptionSecret(secret);
            PubSession.Connect(server.Token(sid));
            Wait.For(() => PubSession.IsConnected, 20, "publisher connected");
            PubSession.Publish(Publisher);
            Wait.For(() => Publisher.Stream != null, 20, "publisher stream");
        }

        /// <summary>Connects the subscribing client with <paramref name="secret"/>; it subscribes to each stream it receives.</summary>
        public void Subscribe(string secret, IVideoRenderer renderer, Action<Subscriber> beforeSubscribe = null)
        {
            Rec.Watch(SubSession);
            SubSession.StreamReceived += (o, e) =>
            {
                var s = new Subscriber(e.Stream, renderer);
                Rec.Watch(s);
                if (beforeSubscribe != null) beforeSubscribe(s);
                SubSession.Subscribe(s);
                Volatile.Write(ref subscriber, s);
            };
            SubSession.SetEncryptionSecret(secret);
            SubSession.Connect(server.Token(sid));
        }

        public void Dispose()
        {
            var s = Subscriber;
            if (s != null) s.Dispose();
            SubSession.Dispose();
            Publisher.Dispose();
            PubSession.Dispose();
        }
    }
}
