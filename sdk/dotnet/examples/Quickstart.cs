// A console app with the Umbra .NET SDK: joins a session with an end-to-end encryption secret,
// publishes pictures from its own capturer, subscribes to every other stream and counts the
// pictures it decodes. (run-tests.sh compiles it, so it stays in step with the SDK.)
//
//   mcs -out:quickstart.exe -r:Umbra.dll sdk/dotnet/examples/Quickstart.cs
//   LD_LIBRARY_PATH=$CARGO_TARGET_DIR/debug mono quickstart.exe URL API_KEY SESSION_ID TOKEN SECRET
using System;
using System.Threading;
using Umbra;

internal sealed class GrayCapturer : IVideoCapturer
{
    private const int W = 320, H = 240;
    private IVideoFrameConsumer consumer;
    private Thread thread;
    private volatile bool running;

    public void Init(IVideoFrameConsumer frameConsumer) { consumer = frameConsumer; }
    public VideoCaptureSettings GetCaptureSettings() { return new VideoCaptureSettings { Width = W, Height = H, Fps = 15 }; }

    public void Start()
    {
        running = true;
        thread = new Thread(() =>
        {
            byte[] y = new byte[W * H], u = new byte[W * H / 4], v = new byte[W * H / 4];
            for (int i = 0; i < u.Length; i++) u[i] = v[i] = 128;
            for (int n = 0; running; n++)
            {
                for (int i = 0; i < y.Length; i++) y[i] = (byte)((i % W + n) & 0xff); // a moving ramp
                using (var frame = VideoFrame.CreateI420(W, H, y, W, u, W / 2, v, W / 2)) consumer.Consume(frame);
                Thread.Sleep(1000 / 15);
            }
        }) { IsBackground = true };
        thread.Start();
    }

    public void Stop() { running = false; thread.Join(); }
    public void Destroy() { }
}

internal sealed class CountingRenderer : IVideoRenderer
{
    public int Frames;

    // On the SDK's thread; the frame is valid during this call only (Clone or GetBuffer to keep it).
    public void RenderFrame(VideoFrame frame)
    {
        if (Interlocked.Increment(ref Frames) % 30 == 1) Console.WriteLine("picture " + frame.Width + "x" + frame.Height);
    }
}

internal static class Quickstart
{
    private static int Main(string[] args)
    {
        if (args.Length != 5)
        {
            Console.Error.WriteLine("usage: quickstart.exe URL API_KEY SESSION_ID TOKEN SECRET");
            return 2;
        }
        var renderer = new CountingRenderer();
        // A console app has no SynchronizationContext: events run on the SDK's thread.
        using (var session = new Session(args[1], args[2], args[0]))
        using (var publisher = new Publisher(new GrayCapturer(), name: "quickstart"))
        {
            try
            {
                session.SetEncryptionSecret(args[4]);
            }
            catch (OpenTokException e) when (e.ErrorCode == ErrorCode.InvalidEncryptionSecret)
            {
                Console.Error.WriteLine("the secret must be 8 to 256 characters");
                return 1;
            }
            session.Error += (s, e) => Console.WriteLine("session error " + e.ErrorCode + ": " + e.Message);
            publisher.Error += (s, e) => Console.WriteLine("publisher error " + e.ErrorCode + ": " + e.Message);
            session.Connected += (s, e) => session.Publish(publisher);
            session.StreamReceived += (s, e) =>
            {
                var subscriber = new Subscriber(e.Stream, renderer); // disposed when the session is (here: at exit)
                subscriber.Error += (o, se) =>
                {
                    if (se.ErrorCode == ErrorCode.EncryptionSecretMismatch) Console.WriteLine(e.Stream.Name + " uses another secret");
                };
                session.Subscribe(subscriber);
            };
            session.Connect(args[3]);
            Thread.Sleep(TimeSpan.FromSeconds(30));
            session.Disconnect();
        }
        Console.WriteLine(renderer.Frames + " pictures decoded");
        return 0;
    }
}
