// The .NET SDK's tests, run with Mono by sdk/dotnet/run-tests.sh (scripts/test.d/60-dotnet.sh)
// against a real `umbra serve` and the real libumbra.so. Offline tests first, then end-to-end
// scenarios, each in its own end-to-end encrypted routed session.
//
//   mono Umbra.Tests.exe                      run everything (environment: see Server)
//   mono Umbra.Tests.exe --emit-layout-probe  print a C program that prints the C layouts
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace Umbra.Tests
{
    internal static class Program
    {
        private const string Secret = "correct horse battery staple";
        private const string OtherSecret = "a different secret entirely";
        private static Server server;

        private static int Main(string[] args)
        {
            if (args.Length == 1 && args[0] == "--emit-layout-probe")
            {
                Console.Write(LayoutProbe());
                return 0;
            }
            // Every wait below is bounded; this bounds the whole run too.
            var watchdog = new Timer(_ =>
            {
                Console.WriteLine("FAIL: the test run did not finish within 280 s");
                Console.WriteLine("0 passed, 1 failed");
                Environment.Exit(3);
            }, null, 280000, Timeout.Infinite);

            Console.WriteLine("Umbra .NET SDK tests, libumbra " + UmbraSdk.Version + ", runtime " + Environment.Version);
            Runner.Test("ErrorCode has every code of the C header, with the C SDK's values", 10, ErrorCodesMatchHeader);
            Runner.Test("P/Invoke callback tables and structs match the C compiler's layout", 10, LayoutsMatch);
            Runner.Test("VideoFrame: test pattern, planes, strides, copies, PSNR, lifetime", 20, Frames);
            Runner.Test("SetEncryptionSecret: 7 and 257 characters -> InvalidEncryptionSecret; code points, not UTF-16 units", 20, SecretRule);
            Runner.Test("offline calls throw OpenTokException / ArgumentException / ObjectDisposedException", 20, OfflineErrors);
            server = new Server();
            Runner.Test("a refused token -> Session.Error, Disconnected; Dispose from the SDK thread's own handler", 30, BadToken);
            Runner.Test("same secret: C# capturer publisher -> C# subscriber, frames checked, events marshalled through a SynchronizationContext", 60, SameSecret);
            Runner.Test("Builder.PreferredVideoCodec VP9 and H264: test-pattern publisher -> C# subscriber, frames checked", 60, OtherCodecs);
            Runner.Test("different secret: exactly one EncryptionSecretMismatch, nothing decoded; changing the secret -> match and frames", 60, DifferentSecret);
            Runner.Test("missing secret: EncryptionSecretMissing on connect (stays connected), on Publish and on Subscribe", 40, MissingSecret);
            Runner.Test("three clients, two secrets: each subscribes to the two others only, decodes the one with its secret, mismatch for the other", 40, ThreeClients);
            Runner.Test("forced mute (REST) -> Publisher.MuteForced; PublishAudio/PublishVideo -> Session.StreamHasAudioChanged/StreamHasVideoChanged", 40, MuteAndToggles);
            Runner.Test("interop: C# publisher -> C example subscriber (frame numbers and PSNR checked in C)", 60, CSharpToC);
            Runner.Test("interop: C example publisher -> C# subscriber (frames checked in C#)", 60, CToCSharp);
            Runner.Test("a publisher that declares E2EE but sends plain media: one StreamNotEncrypted (Error, then the event), never a mismatch, nothing rendered", 60, NotEncrypted);
            Runner.Test("bad PreferredResolution / PreferredFrameRate -> ArgumentOutOfRangeException, nothing changed", 30, () => SimulcastTests.BadPreferences(server));
            Runner.Test("PreferredResolution 320x180 then 160x90 -> pictures of that simulcast layer only; SubscribeToVideo false -> none", 60, () => SimulcastTests.PreferredResolution(server));
            Runner.Test("ActiveSpeakerChanged: never a publisher with AudioLevel = false; names the stream and connection of one sending a tone", 45, () => SimulcastTests.ActiveSpeaker(server));
            watchdog.Dispose();
            int rc = Runner.Finish();
            Console.Out.Flush();
            // Exit at once: a test thread that timed out may still be blocked in native code.
            Environment.Exit(rc);
            return rc;
        }

        // ------------------------------------------------------------------ offline

        private static void ErrorCodesMatchHeader()
        {
            string header = File.ReadAllText(Server.Env("UMBRA_TEST_HEADER"));
            var values = new SortedSet<int>();
            var names = new Dictionary<string, int>();
            foreach (Match m in Regex.Matches(header, @"\b(OTC_[A-Z_0-9]+)\s*=\s*(\d+)\s*,"))
            {
                values.Add(int.Parse(m.Groups[2].Value));
                names[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
            }
            foreach (var d in new[] { "OTC_SUCCESS", "OTC_INVALID_PARAMETER", "OTC_ILLEGAL_STATE", "OTC_INTERNAL_ERROR" })
            {
                var m = Regex.Match(header, @"#define\s+" + d + @"\s+(\d+)");
                Check.True(m.Success, d + " defined in otc.h");
                values.Add(int.Parse(m.Groups[1].Value));
                names[d] = int.Parse(m.Groups[1].Value);
            }
            Check.True(values.Count >= 15, "parsed the header's error codes (" + values.Count + ")");
            foreach (int v in values)
            {
                Check.True(Enum.IsDefined(typeof(ErrorCode), v), "ErrorCode defines the C SDK's code " + v);
                Check.True(v == 0 || UmbraSdk.ErrorString((ErrorCode)v) != "unknown error code", "otc_error_string knows " + v);
            }
            foreach (ErrorCode c in Enum.GetValues(typeof(ErrorCode)))
                Check.True(values.Contains((int)c), "ErrorCode." + c + " is a code of the C header");
            var same = new Dictionary<string, ErrorCode>
            {
                { "OTC_SESSION_INVALID_ENCRYPTION_SECRET", ErrorCode.InvalidEncryptionSecret },
                { "OTC_SESSION_ENCRYPTION_SECRET_MISSING", ErrorCode.EncryptionSecretMissing },
                { "OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING", ErrorCode.EncryptionSecretMissing },
                { "OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISSING", ErrorCode.EncryptionSecretMissing },
                { "OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH", ErrorCode.EncryptionSecretMismatch },
                { "OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR", ErrorCode.EncryptionInternalError },
                { "OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR", ErrorCode.DecryptionInternalError },
                { "OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED", ErrorCode.StreamNotEncrypted },
                { "OTC_SESSION_UNSUPPORTED_CIPHER_SUITE", ErrorCode.UnsupportedCipherSuite },
                { "OTC_SESSION_AUTHORIZATION_FAILURE", ErrorCode.AuthorizationFailure },
                { "OTC_SESSION_NOT_CONNECTED", ErrorCode.NotConnected },
                { "OTC_INVALID_PARAMETER", ErrorCode.NullOrInvalidParameter },
                { "OTC_ILLEGAL_STATE", ErrorCode.IllegalState },
                { "OTC_INTERNAL_ERROR", ErrorCode.InternalError },
            };
            foreach (var kv in same)
            {
                Check.True(names.ContainsKey(kv.Key), kv.Key + " in otc.h");
                Check.Equal((int)kv.Value, names[kv.Key], kv.Key);
            }
            Console.WriteLine("  " + values.Count + " codes: " + string.Join(" ", values));
        }

        /// <summary>A C program printing sizeof and every field's offsetof for the structs the SDK declares (names as in C).</summary>
        private static string LayoutProbe()
        {
            var sb = new StringBuilder();
            sb.Append("/* generated by Umbra.Tests.exe --emit-layout-probe */\n#include <stddef.h>\n#include <stdio.h>\n#include <umbra/otc.h>\nint main(void) {\n");
            foreach (var t in Native.CheckedStructs)
            {
                sb.AppendFormat("  printf(\"{0} sizeof %zu\\n\", sizeof(struct {0}));\n", t.Name);
                foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public))
                    sb.AppendFormat("  printf(\"{0} {1} %zu\\n\", offsetof(struct {0}, {1}));\n", t.Name, f.Name);
            }
            sb.Append("  return 0;\n}\n");
            return sb.ToString();
        }

        private static void LayoutsMatch()
        {
            var c = new Dictionary<string, long>();
            foreach (var line in File.ReadAllLines(Server.Env("UMBRA_TEST_LAYOUT")))
            {
                var parts = line.Split(' ');
                if (parts.Length == 3) c[parts[0] + " " + parts[1]] = long.Parse(parts[2]);
            }
            int n = 0;
            foreach (var t in Native.CheckedStructs)
            {
                Check.Equal(c[t.Name + " sizeof"], (long)Marshal.SizeOf(t), "sizeof(" + t.Name + ") (a member added to the C struct?)");
                foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public))
                {
                    Check.Equal(c[t.Name + " " + f.Name], Marshal.OffsetOf(t, f.Name).ToInt64(), "offsetof(" + t.Name + ", " + f.Name + ")");
                    n++;
                }
            }
            Console.WriteLine("  " + Native.CheckedStructs.Length + " structs, " + n + " fields agree");
        }

        private static void Frames()
        {
            using (var p = VideoFrame.CreateTestPattern(320, 240, 42))
            {
                Check.Equal(320, p.Width, "width");
                Check.Equal(240, p.Height, "height");
                Check.Equal(PixelFormat.I420, p.Format, "format");
                Check.Equal(42L, p.ReadTestPatternFrameNumber(), "frame number read back");
                Check.Equal(320, p.GetPlaneStride(VideoPlane.Y), "Y stride");
                Check.Equal(160, p.GetPlaneStride(VideoPlane.U), "U stride");
                Check.Equal(160 * 120, p.GetPlaneSize(VideoPlane.V), "V size");
                byte[] buf = p.GetBuffer();
                Check.Equal(VideoFrame.BufferSize(320, 240), buf.Length, "packed size");
                Check.True(p.GetPlane(VideoPlane.Y) != IntPtr.Zero, "Y plane address");

                // Packed buffer round trip.
                using (var q = VideoFrame.FromBuffer(320, 240, buf))
                {
                    Check.True(double.IsPositiveInfinity(VideoFrame.Psnr(p, q)), "identical after FromBuffer");
                    Check.Equal(42L, q.ReadTestPatternFrameNumber(), "number after FromBuffer");
                }
                // Planes with padded strides.
                byte[] y = PatternCapturer.Pad(p.GetPlaneBytes(VideoPlane.Y), 320, 240, 32);
                byte[] u = PatternCapturer.Pad(p.GetPlaneBytes(VideoPlane.U), 160, 120, 16);
                byte[] v = PatternCapturer.Pad(p.GetPlaneBytes(VideoPlane.V), 160, 120, 16);
                using (var r = VideoFrame.CreateI420(320, 240, y, 352, u, 176, v, 176))
                {
                    Check.True(double.IsPositiveInfinity(VideoFrame.Psnr(p, r)), "identical after CreateI420 with strides");
                    Check.Equal(320, r.GetPlaneStride(VideoPlane.Y), "packed again");
                }
                // Native plane pointers.
                var handles = new[] { y, u, v }.Select(a => GCHandle.Alloc(a, GCHandleType.Pinned)).ToArray();
                try
                {
                    using (var r = VideoFrame.CreateI420(320, 240, handles[0].AddrOfPinnedObject(), 352, handles[1].AddrOfPinnedObject(), 176, handles[2].AddrOfPinnedObject(), 176))
                        Check.True(double.IsPositiveInfinity(VideoFrame.Psnr(p, r)), "identical after CreateI420 from pointers");
                }
                finally
                {
                    foreach (var h in handles) h.Free();
                }
                // A different picture and a different size.
                using (var other = VideoFrame.CreateTestPattern(320, 240, 43))
                {
                    double psnr = VideoFrame.Psnr(p, other);
                    Check.True(psnr > 0 && !double.IsInfinity(psnr), "another picture has a finite PSNR (" + psnr + ")");
                    Check.True(Math.Abs(psnr - CheckingRenderer.ManagedPsnr(p.GetBuffer(), other.GetBuffer())) < 0.01, "native and managed PSNR agree");
                }
                using (var small = VideoFrame.CreateTestPattern(160, 120, 42))
                    Check.Equal(-1.0, VideoFrame.Psnr(p, small), "PSNR of different sizes");
                // Clone outlives its source.
                var clone = p.Clone();
                p.Dispose();
                Check.Throws<ObjectDisposedException>(() => { var w = p.Width; }, "a disposed frame");
                Check.Equal(42L, clone.ReadTestPatternFrameNumber(), "clone keeps the picture");
                clone.Dispose();
                clone.Dispose();
            }
            Check.OpenTokError(ErrorCode.NullOrInvalidParameter, () => VideoFrame.CreateTestPattern(10, 10, 0), "a too small test pattern");
            Check.Throws<ArgumentException>(() => VideoFrame.FromBuffer(320, 240, new byte[100]), "a too short buffer");
            Check.Throws<ArgumentException>(() => VideoFrame.CreateI420(320, 240, new byte[320 * 240], 300, new byte[160 * 120], 160, new byte[160 * 120], 160), "a stride below the width");
        }

        private static string Repeat(string s, int n)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < n; i++) sb.Append(s);
            return sb.ToString();
        }

        private static void SecretRule()
        {
            using (var s = new Session("key", "session", "http://127.0.0.1:9", null))
            {
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret("1234567"), "7 characters");
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret(Repeat("x", 257)), "257 characters");
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret(""), "empty");
                s.SetEncryptionSecret("12345678");
                s.SetEncryptionSecret(Repeat("x", 256));
                // U+1F512 is two UTF-16 units and one code point: 7 of them are 14 C# chars but 7 characters.
                const string Lock = "\U0001F512";
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret(Repeat(Lock, 7)), "7 astral characters (14 UTF-16 units)");
                s.SetEncryptionSecret(Repeat(Lock, 8));
                s.SetEncryptionSecret(Repeat(Lock, 200)); // 400 UTF-16 units, 200 characters
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret(Repeat(Lock, 257)), "257 astral characters");
                Check.OpenTokError(ErrorCode.InvalidEncryptionSecret, () => s.SetEncryptionSecret("abcdefgh\uD800"), "an unpaired surrogate");
                s.SetEncryptionSecret("pässwörd-ünïcødé");
                Check.Throws<ArgumentNullException>(() => s.SetEncryptionSecret(null), "null");
            }
        }

        private static void OfflineErrors()
        {
            Check.Throws<ArgumentException>(() => new Session("k", "s", "ftp://example"), "a URL that is not http(s)");
            Check.Throws<ArgumentException>(() => new Session("k", "s", "http://127.0.0.1:9", null, "not-an-ip"), "a bad bind address");
            int registered = Registry.Count;
            var s = new Session("k", "s", "http://127.0.0.1:9", null, "127.0.0.1");
            Check.True(s.EventContext == null, "explicit null context");
            Check.Equal("s", s.Id, "Id");
            using (var p = new Publisher(name: "offline"))
            {
                Check.OpenTokError(ErrorCode.NotConnected, () => s.Publish(p), "publishing while not connected");
                Check.OpenTokError(ErrorCode.IllegalState, () => s.Unpublish(p), "unpublishing what is not published");
                Check.Equal("offline", p.Name, "publisher name");
                Check.True(p.Stream == null, "no stream before publishing");
            }
            s.Disconnect(); // not connected: does nothing
            s.Dispose();
            s.Dispose();
            Check.Throws<ObjectDisposedException>(() => s.Connect("t"), "Connect after Dispose");
            Check.Throws<ObjectDisposedException>(() => s.SetEncryptionSecret(Secret), "SetEncryptionSecret after Dispose");
            // A capturer whose settings are invalid, one whose Init throws.
            var bad = new PatternCapturer(10, 10, 30);
            Check.OpenTokError(ErrorCode.NullOrInvalidParameter, () => new Publisher(bad), "capturer with a 10x10 picture");
            Check.Equal("Init,GetCaptureSettings,Destroy", bad.CallList, "capturer calls of a refused publisher");
            int reported = 0;
            EventHandler<CallbackExceptionEventArgs> h = (o, e) => { if (e.Callback == "IVideoCapturer.Init") Interlocked.Increment(ref reported); };
            UmbraSdk.CallbackException += h;
            try
            {
                Check.OpenTokError(ErrorCode.NullOrInvalidParameter, () => new Publisher(new ThrowingCapturer()), "capturer whose Init throws");
            }
            finally
            {
                UmbraSdk.CallbackException -= h;
            }
            Check.Equal(1, reported, "the Init exception reported to UmbraSdk.CallbackException");
            Check.Equal(registered, Registry.Count, "every callback registration released");
        }

        private sealed class ThrowingCapturer : IVideoCapturer
        {
            public void Init(IVideoFrameConsumer c) { throw new InvalidOperationException("no camera"); }
            public VideoCaptureSettings GetCaptureSettings() { return new VideoCaptureSettings(); }
            public void Start() { }
            public void Stop() { }
            public void Destroy() { }
        }

        // ------------------------------------------------------------------ against the server

        private static void BadToken()
        {
            string sid = server.CreateE2eeSession();
            int registered = Registry.Count;
            var rec = new Recorder();
            var s = new Session(server.ApiKey, sid, server.Url, null);
            rec.Watch(s);
            var disposedFromHandler = new ManualResetEventSlim();
            s.Disconnected += (o, e) => { s.Dispose(); disposedFromHandler.Set(); };
            s.SetEncryptionSecret(Secret);
            s.Connect("T1==not-a-token");
            Wait.For(() => rec.Disconnected, 20, () => "Disconnected after a refused token (events: " + rec.List + ")");
            Check.True(disposedFromHandler.Wait(5000), "Dispose from the SDK thread's own Disconnected handler returned");
            Check.True(!rec.Connected, "never connected");
            Check.True(rec.SessionErrors.Count == 1, "one Session.Error (events: " + rec.List + ")");
            var code = rec.SessionErrors[0].ErrorCode;
            Check.True(code == ErrorCode.AuthorizationFailure || code == ErrorCode.ConnectionRefused || code == ErrorCode.ConnectionFailed,
                "a refusal code, got " + rec.SessionErrors[0]);
            Console.WriteLine("  " + rec.SessionErrors[0]);
            Check.Throws<ObjectDisposedException>(() => s.Connect("x"), "disposed from the handler");
            Wait.For(() => Registry.Count == registered, 10, "the deferred Dispose to finish on the thread pool");
        }

        private static void SameSecret()
        {
            string sid = server.CreateE2eeSession();
            int registered = Registry.Count;
            var pumpContext = new PumpContext();
            var pubRec = new Recorder();
            var subRec = new Recorder();
            var callbackErrors = new List<CallbackExceptionEventArgs>();
            EventHandler<CallbackExceptionEventArgs> onCallbackError = (o, e) => { lock (callbackErrors) callbackErrors.Add(e); };
            UmbraSdk.CallbackException += onCallbackError;
            // Garbage collections all along (finalizers of frames, streams and connections
            // included) while the SDK calls back: nothing it calls may have been collected.
            int collections = 0;
            bool collecting = true;
            var collector = new Thread(() =>
            {
                while (Volatile.Read(ref collecting))
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    collections++;
                    Thread.Sleep(20);
                }
            }) { IsBackground = true, Name = "test-gc" };
            collector.Start();
            Session pubSession = null, subSession = null;
            Publisher publisher = null;
            Subscriber subscriber = null;
            try
            {
                // The publisher's session raises events on the SDK thread (no context); one handler throws.
                pubSession = new Session(server.ApiKey, sid, server.Url, null);
                pubRec.Watch(pubSession);
                pubSession.Connected += (o, e) => { throw new InvalidOperationException("a handler that throws"); };
                var capturer = new PatternCapturer(320, 240, 30);
                int constructingThread = Thread.CurrentThread.ManagedThreadId;
                publisher = new Publisher.Builder { Name = "csharp-publisher", Capturer = capturer }.Build();
                pubRec.Watch(publisher);
                Check.Equal("Init,GetCaptureSettings", capturer.CallList, "capturer calls in the constructor");
                Check.Equal(constructingThread, capturer.CallThreads["Init"], "Init on the constructing thread");
                pubSession.SetEncryptionSecret(Secret);
                pubSession.Connect(server.Token(sid));
                Wait.For(() => pubRec.Connected, 20, "publisher session Connected");
                Check.True(pubSession.IsConnected, "IsConnected");
                pubSession.Publish(publisher);
                Check.True(capturer.CallList.EndsWith("Start"), "Start inside Publish");
                Wait.For(() => publisher.Stream != null, 20, "Publisher.StreamCreated");
                Check.Equal("csharp-publisher", publisher.Stream.Name, "own stream's name");
                Check.True(publisher.Stream.HasVideo && publisher.Stream.HasAudio, "own stream has video and audio");

                // The subscriber's session raises events through a SynchronizationContext (a pump thread, like a UI thread).
                subSession = new Session(server.ApiKey, sid, server.Url, pumpContext);
                subRec.Watch(subSession);
                var renderer = new CheckingRenderer();
                long audioChunks = 0;
                double audioEnergy = 0;
                int audioThread = -1;
                subSession.StreamReceived += (o, e) =>
                {
                    if (subscriber != null) return;
                    var sub = new Subscriber(e.Stream, renderer);
                    subRec.Watch(sub);
                    sub.AudioData += (o2, a) =>
                    {
                        audioThread = Thread.CurrentThread.ManagedThreadId;
                        double sum = 0;
                        foreach (short x in a.Samples) sum += (double)x * x;
                        if (a.Samples.Length > 0) audioEnergy += sum / a.Samples.Length;
                        Interlocked.Increment(ref audioChunks);
                    };
                    subSession.Subscribe(sub);
                    subscriber = sub;
                };
                subSession.Connected += (o, e) => subSession.SendSignal("csharp", "hello ✓ ünïcödé from the C# subscriber");
                subSession.SetEncryptionSecret(Secret);
                subSession.Connect(server.Token(sid));

                Wait.For(() => renderer.Ok >= 60, 30, () => "60 checked frames (" + renderer.Summary + "; events: " + subRec.List + ")");
                Console.WriteLine("  subscriber: " + renderer.Summary + "; capturer consumed " + capturer.Consumed + ", refused " + capturer.Refused);
                Check.True(renderer.Bad <= renderer.Ok / 4, "few frames that do not match: " + renderer.Summary);
                Check.Equal(0, renderer.ManagedMismatch, "managed and native PSNR agree on every frame");
                Check.True(!renderer.Threads.Contains(pumpContext.ThreadId) && renderer.Threads.Count == 1,
                    "RenderFrame runs on one SDK thread, not the context's");
                Check.Throws<ObjectDisposedException>(() => { var w = renderer.Kept.Width; }, "a frame kept after RenderFrame returned");
                Wait.For(() => Interlocked.Read(ref audioChunks) >= 10, 10, "decoded audio");
                double rms = Math.Sqrt(audioEnergy / Interlocked.Read(ref audioChunks));
                Console.WriteLine("  audio: " + audioChunks + " chunks, RMS " + rms.ToString("0"));
                Check.True(rms > 3000, "the 440 Hz tone is heard (RMS " + rms.ToString("0") + ")");
                Check.True(audioThread != pumpContext.ThreadId, "AudioData on the SDK thread");

                // Signals both ways, UTF-8 intact; the sender's connection is known.
                Wait.For(() => pubRec.Signal("csharp") != null, 10, "the subscriber's signal at the publisher");
                var sig = pubRec.Signal("csharp");
                Check.Equal("hello ✓ ünïcödé from the C# subscriber", sig.Data, "signal data");
                Check.True(sig.Connection != null, "signal sender's connection");
                Wait.For(() => pubRec.ConnectionsCreated.Count >= 1, 10, "ConnectionCreated at the publisher");
                Check.Equal(pubRec.ConnectionsCreated[0].Id, sig.Connection.Id, "signal sender is the connection that joined");
                pubSession.SendSignal("direct", "to you only", sig.Connection);
                Wait.For(() => subRec.Signal("direct") != null, 10, "a signal to one connection");

                // Stream and connection as the subscriber saw them.
                Check.Equal(1, subRec.StreamsReceived.Count, "one StreamReceived");
                var stream = subRec.StreamsReceived[0];
                Check.Equal(publisher.Stream.Id, stream.Id, "the publisher's stream id");
                Check.Equal("csharp-publisher", stream.Name, "stream name");
                Check.True(stream.Session == subSession, "Stream.Session");
                Wait.For(() => subRec.Count("Subscriber.Connected") == 1, 10, "Subscriber.Connected");
                Check.True(subRec.ConnectionsCreated.Exists(c => c.Id == stream.Connection.Id), "the publisher's connection was created first");

                // Tear down: the subscriber sees the stream and then the connection go.
                pubSession.Unpublish(publisher);
                Check.True(capturer.CallList.EndsWith("Stop"), "Stop inside Unpublish (" + capturer.CallList + ")");
                Wait.For(() => subRec.StreamsDropped.Count == 1, 15, "StreamDropped");
                Check.True(ReferenceEquals(stream, subRec.StreamsDropped[0]), "StreamDropped gives the same Stream object");
                Wait.For(() => subRec.Count("Subscriber.Disconnected") == 1, 10, "Subscriber.Disconnected");
                pubSession.Disconnect();
                Wait.For(() => pubRec.Disconnected, 10, "publisher session Disconnected");
                Wait.For(() => subRec.ConnectionsDropped.Count == 1, 15, "ConnectionDropped");
                Check.Equal(stream.Connection.Id, subRec.ConnectionsDropped[0].Id, "the publisher's connection dropped");
                subscriber.Dispose();
                publisher.Dispose();
                Check.Equal("Init,GetCaptureSettings,Start,Stop,Destroy", capturer.CallList, "capturer lifecycle");
                Check.True(capturer.Consumed > 30, "the capturer's frames were taken (" + capturer.Consumed + ")");
                subSession.Dispose();
                pubSession.Dispose();
                pumpContext.Drain();

                // Threading: every subscriber-side event ran on the pump thread, in order; the
                // publisher-side ones on one SDK thread; the throwing handler was contained.
                Check.True(subRec.AllOnThread(pumpContext.ThreadId), "subscriber-side events all ran on the context's thread");
                Check.Equal("Connected", subRec.Events[0], "first event (" + subRec.List + ")");
                Check.Equal("Disconnected", subRec.Events[subRec.Events.Count - 1], "last event (" + subRec.List + ")");
                Check.True(subRec.Events.IndexOf("StreamReceived") < subRec.Events.IndexOf("Subscriber.Connected") &&
                           subRec.Events.IndexOf("Subscriber.Connected") < subRec.Events.IndexOf("StreamDropped") &&
                           subRec.Events.IndexOf("StreamDropped") < subRec.Events.IndexOf("ConnectionDropped"),
                    "events in order: " + subRec.List);
                Check.True(pumpContext.Errors.Count == 0, "no handler failed on the pump");
                Check.True(!pubRec.Threads.Contains(constructingThread) && !pubRec.Threads.Contains(pumpContext.ThreadId) && pubRec.Threads.Distinct().Count() == 1,
                    "publisher-side events on one SDK thread");
                lock (callbackErrors)
                {
                    Check.Equal(1, callbackErrors.Count, "one contained handler exception");
                    Check.Equal("Session.Connected", callbackErrors[0].Callback, "which handler threw");
                    Check.True(callbackErrors[0].Source == pubSession, "CallbackException.Source");
                }
                Check.Equal(0, pubRec.StreamsReceived.Count + pubRec.StreamsDropped.Count, "the publisher's session is not told of its own stream (" + pubRec.List + ")");
                Check.Equal(0, subRec.SessionErrors.Count + subRec.SubscriberErrors.Count + pubRec.SessionErrors.Count + pubRec.PublisherErrors.Count,
                    "no errors (subscriber: " + subRec.List + "; publisher: " + pubRec.List + ")");
                Check.Equal(registered, Registry.Count, "every callback registration released");
                Volatile.Write(ref collecting, false);
                collector.Join(5000);
                Console.WriteLine("  " + collections + " garbage collections during the scenario");
                Check.True(collections >= 20, "the collector ran");
            }
            finally
            {
                // Idempotent: after a failure, stop everything before the next test.
                if (subscriber != null) subscriber.Dispose();
                if (publisher != null) publisher.Dispose();
                if (subSession != null) subSession.Dispose();
                if (pubSession != null) pubSession.Dispose();
                Volatile.Write(ref collecting, false);
                UmbraSdk.CallbackException -= onCallbackError;
                pumpContext.Dispose();
            }
        }

        private static void OtherCodecs()
        {
            foreach (var codec in new[] { VideoCodec.VP9, VideoCodec.H264 })
            {
                var renderer = new CheckingRenderer { ExpectedWidth = 320 };
                using (var pair = new PubSub(server, server.CreateE2eeSession(), new Publisher(new Publisher.Builder { Name = codec.ToString(), PreferredVideoCodec = codec })))
                {
                    var rec = pair.Rec;
                    pair.Publish(Secret);
                    pair.Subscribe(Secret, renderer);
                    Wait.For(() => renderer.Ok >= 15, 30, () => codec + ": 15 checked frames (" + renderer.Summary + ", events: " + rec.List + ")");
                    // OpenH264 may send a picture below 30 dB while its rate control settles.
                    Check.True(renderer.Bad * 10 <= renderer.Ok, codec + ": at most 1 in 10 frames below the check (" + renderer.Summary + ")");
                    Check.Equal(0, rec.SubscriberErrors.Count, codec + ": subscriber errors (" + rec.List + ")");
                    Console.WriteLine("  " + codec + ": " + renderer.Summary);
                }
            }
        }

        private static void DifferentSecret()
        {
            var renderer = new CheckingRenderer();
            // The built-in test pattern this time.
            using (var pair = new PubSub(server, server.CreateE2eeSession(), new Publisher(name: "pattern")))
            {
                var rec = pair.Rec;
                var pubRec = pair.PubRec;
                var subSession = pair.SubSession;
                pair.Publish(Secret);
                pair.Subscribe(OtherSecret, renderer);
                Wait.For(() => rec.Count("Subscriber.Mismatch") == 1, 30, () => "EncryptionSecretMismatch (events: " + rec.List + ")");
                // Keep receiving undecryptable frames a while: still exactly one report, nothing rendered.
                Thread.Sleep(3000);
                Check.Equal(1, rec.SubscriberErrors.Count, "subscriber errors (" + rec.List + ")");
                Check.Equal(ErrorCode.EncryptionSecretMismatch, rec.SubscriberErrors[0].ErrorCode, "the subscriber error");
                Check.Equal(1, rec.Count("Subscriber.Mismatch"), "EncryptionSecretMismatch events");
                Check.True(rec.Events.IndexOf("Subscriber.Error:EncryptionSecretMismatch") < rec.Events.IndexOf("Subscriber.Mismatch"), "Error, then the mismatch event");
                Check.Equal(0L, pair.Subscriber.FramesRendered, "no decoded frame");
                Check.Equal(0, renderer.Calls, "nothing rendered");
                Check.Equal(0, rec.SessionErrors.Count, "no session error");
                Console.WriteLine("  " + rec.SubscriberErrors[0]);

                // Same secret now: frames decrypt again.
                subSession.SetEncryptionSecret(Secret);
                Wait.For(() => rec.Count("Subscriber.Match") == 1, 20, () => "EncryptionSecretMatch (events: " + rec.List + ")");
                Wait.For(() => renderer.Ok >= 15, 20, () => "15 checked frames after the match (" + renderer.Summary + ")");
                Check.Equal(1, rec.SubscriberErrors.Count, "no further subscriber error");
                Check.Equal(0, pubRec.PublisherErrors.Count, "no publisher error");
                Console.WriteLine("  after the change: " + renderer.Summary);
            }
        }

        private static void MissingSecret()
        {
            string sid = server.CreateE2eeSession();
            var other = new Session(server.ApiKey, sid, server.Url, null);
            var otherPublisher = new Publisher(name: "with-secret");
            var s = new Session(server.ApiKey, sid, server.Url, null);
            var publisher = new Publisher(name: "no-secret");
            var rec = new Recorder();
            Subscriber subscriber = null;
            try
            {
                other.SetEncryptionSecret(Secret);
                other.Connect(server.Token(sid));
                Wait.For(() => other.IsConnected, 20, "the other client connected");
                other.Publish(otherPublisher);
                Wait.For(() => otherPublisher.Stream != null, 20, "the other client's stream");

                rec.Watch(s);
                rec.Watch(publisher);
                s.Connect(server.Token(sid)); // no secret
                Wait.For(() => rec.Connected && rec.SessionErrors.Count >= 1, 20, () => "Connected and Session.Error (events: " + rec.List + ")");
                Check.Equal(ErrorCode.EncryptionSecretMissing, rec.SessionErrors[0].ErrorCode, "Session.Error on connect");
                Console.WriteLine("  connect: " + rec.SessionErrors[0]);

                Check.OpenTokError(ErrorCode.EncryptionSecretMissing, () => s.Publish(publisher), "Publish without a secret");
                Wait.For(() => rec.PublisherErrors.Count >= 1, 10, () => "Publisher.Error (events: " + rec.List + ")");
                Check.Equal(ErrorCode.EncryptionSecretMissing, rec.PublisherErrors[0].ErrorCode, "Publisher.Error");

                Wait.For(() => rec.StreamsReceived.Count >= 1, 10, "the other client's stream received");
                subscriber = new Subscriber(rec.StreamsReceived[0]);
                rec.Watch(subscriber);
                Check.OpenTokError(ErrorCode.EncryptionSecretMissing, () => s.Subscribe(subscriber), "Subscribe without a secret");
                Wait.For(() => rec.SubscriberErrors.Count >= 1, 10, () => "Subscriber.Error (events: " + rec.List + ")");
                Check.Equal(ErrorCode.EncryptionSecretMissing, rec.SubscriberErrors[0].ErrorCode, "Subscriber.Error");

                Thread.Sleep(1000);
                Check.True(s.IsConnected && !rec.Disconnected, "the session stays connected (" + rec.List + ")");
                Check.Equal(1, rec.SessionErrors.Count, "one session error");
                Check.Equal(1, rec.PublisherErrors.Count, "one publisher error");
                Check.Equal(1, rec.SubscriberErrors.Count, "one subscriber error");
            }
            finally
            {
                if (subscriber != null) subscriber.Dispose();
                publisher.Dispose();
                s.Dispose();
                otherPublisher.Dispose();
                other.Dispose();
            }
        }

        private static void ThreeClients()
        {
            string sid = server.CreateE2eeSession();
            var secrets = new[] { Secret, OtherSecret, Secret };
            var widths = new[] { 320, 256, 160 };
            var sessions = new List<Session>();
            var publishers = new List<Publisher>();
            var subscribers = new List<Subscriber>();
            // renderers[i][j]: client i's renderer for client j's stream.
            var renderers = new CheckingRenderer[3, 3];
            var mismatches = new int[3, 3];
            var recs = new Recorder[3];
            try
            {
                for (int i = 0; i < 3; i++)
                {
                    int me = i;
                    var s = new Session(server.ApiKey, sid, server.Url, null);
                    var p = new Publisher(new Publisher.Builder { Name = "client" + i, TestPatternWidth = widths[i], TestPatternHeight = widths[i] * 3 / 4, TestPatternFps = 30 });
                    sessions.Add(s);
                    publishers.Add(p);
                    recs[i] = new Recorder();
                    recs[i].Watch(s);
                    s.Connected += (o, e) => s.Publish(p);
                    s.StreamReceived += (o, e) =>
                    {
                        int from = int.Parse(e.Stream.Name.Substring("client".Length));
                        var r = new CheckingRenderer { ExpectedWidth = widths[from] };
                        renderers[me, from] = r;
                        var sub = new Subscriber(e.Stream, r);
                        sub.Error += (o2, se) => { if (se.ErrorCode == ErrorCode.EncryptionSecretMismatch) Interlocked.Increment(ref mismatches[me, from]); };
                        lock (subscribers) subscribers.Add(sub);
                        s.Subscribe(sub);
                    };
                    s.SetEncryptionSecret(secrets[i]);
                    s.Connect(server.Token(sid));
                }
                Func<int, int, bool> same = (a, b) => secrets[a] == secrets[b];
                Func<bool> done = () =>
                {
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++)
                        {
                            if (i == j) continue;
                            if (renderers[i, j] == null) return false;
                            if (same(i, j) ? renderers[i, j].Ok < 30 : Volatile.Read(ref mismatches[i, j]) < 1) return false;
                        }
                    return true;
                };
                Func<string> state = () =>
                {
                    var sb = new StringBuilder();
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++)
                            if (i != j) sb.Append(" " + i + "<-" + j + ": " + (renderers[i, j] == null ? "none" : renderers[i, j].Ok + " ok, " + mismatches[i, j] + " mismatch"));
                    return sb.ToString();
                };
                Wait.For(done, 30, () => "every pair decoded or reported the mismatch:" + state());
                for (int i = 0; i < 3; i++)
                {
                    Check.Equal(2, recs[i].StreamsReceived.Count, "client " + i + " is told of the two other streams only (" + recs[i].List + ")");
                    Check.True(renderers[i, i] == null, "client " + i + " did not subscribe to itself");
                    for (int j = 0; j < 3; j++)
                    {
                        if (i == j) continue;
                        var r = renderers[i, j];
                        if (same(i, j))
                        {
                            Check.True(r.Bad <= r.Ok / 4 && r.LastNumber >= 0, i + "<-" + j + ": " + r.Summary);
                            Check.Equal(0, mismatches[i, j], i + "<-" + j + " mismatches");
                        }
                        else
                        {
                            Check.Equal(0, r.Calls, i + "<-" + j + " decoded nothing");
                            Check.Equal(1, mismatches[i, j], i + "<-" + j + " mismatches");
                        }
                    }
                }
                // Each decoded picture had its publisher's size (ExpectedWidth): the streams stayed apart.
                Console.WriteLine("  " + state().Trim());
            }
            finally
            {
                lock (subscribers) foreach (var sub in subscribers) sub.Dispose();
                foreach (var p in publishers) p.Dispose();
                foreach (var s in sessions) s.Dispose();
            }
        }

        private static void MuteAndToggles()
        {
            string sid = server.CreateE2eeSession();
            var renderer = new CheckingRenderer();
            using (var pair = new PubSub(server, sid, new Publisher(name: "mutable")))
            {
                var publisher = pair.Publisher;
                var rec = pair.Rec;
                var pubRec = pair.PubRec;
                Check.True(publisher.PublishAudio && publisher.PublishVideo, "publishing audio and video by default");
                pair.Publish(Secret);
                pair.Subscribe(Secret, renderer);
                Wait.For(() => renderer.Ok >= 5, 20, () => "frames (" + renderer.Summary + ")");
                var stream = rec.StreamsReceived[0];
                Check.True(stream.HasAudio && stream.HasVideo, "the stream has audio and video");

                // The app server forces the stream's audio off.
                server.Post("/v2/project/" + server.ApiKey + "/session/" + sid + "/stream/" + publisher.Stream.Id + "/mute", "{}");
                Wait.For(() => pubRec.Count("Publisher.MuteForced") == 1, 10, () => "Publisher.MuteForced (" + pubRec.List + ")");
                Check.True(!publisher.PublishAudio, "PublishAudio is false after a forced mute");
                Wait.For(() => rec.Count("HasAudio:False") == 1, 10, () => "StreamHasAudioChanged false at the subscriber (" + rec.List + ")");
                Check.True(!stream.HasAudio && stream.HasVideo, "Stream.HasAudio updated");

                publisher.PublishAudio = true; // unmute
                Wait.For(() => rec.Count("HasAudio:True") == 1, 10, () => "StreamHasAudioChanged true (" + rec.List + ")");
                Check.True(stream.HasAudio && publisher.PublishAudio, "unmuted");

                publisher.PublishVideo = false;
                Wait.For(() => rec.Count("HasVideo:False") == 1, 10, () => "StreamHasVideoChanged false (" + rec.List + ")");
                Check.True(!stream.HasVideo, "Stream.HasVideo updated");
                publisher.PublishVideo = true;
                Wait.For(() => rec.Count("HasVideo:True") == 1, 10, () => "StreamHasVideoChanged true (" + rec.List + ")");
                int before = renderer.Ok;
                Wait.For(() => renderer.Ok >= before + 10, 10, () => "frames again after video is back on (" + renderer.Summary + ")");
                Check.True(rec.PropertyChanges.TrueForAll(e => ReferenceEquals(e.Stream, stream)), "the changes name the received Stream object");
                Check.Equal(0, pubRec.PropertyChanges.Count + pubRec.StreamsReceived.Count, "the publisher's own session hears nothing of its own stream (" + pubRec.List + ")");
                Check.Equal(0, rec.SessionErrors.Count + rec.SubscriberErrors.Count + pubRec.SessionErrors.Count + pubRec.PublisherErrors.Count,
                    "no errors (subscriber: " + rec.List + "; publisher: " + pubRec.List + ")");
                Console.WriteLine("  subscriber saw: " + string.Join(", ", rec.Events.FindAll(e => e.StartsWith("Has"))));
            }
        }

        private static string CExample(string name)
        {
            string path = Path.Combine(Server.Env("UMBRA_TEST_C_EXAMPLES"), name);
            Check.True(File.Exists(path), "the C example " + path + " is built");
            return path;
        }

        private static string[] CArgs(string sid, params string[] more)
        {
            var a = new List<string> { "--url", server.Url, "--api-key", server.ApiKey, "--session-id", sid, "--token", server.Token(sid) };
            a.AddRange(more);
            return a.ToArray();
        }

        private static void CSharpToC()
        {
            string sid = server.CreateE2eeSession();
            var session = new Session(server.ApiKey, sid, server.Url, null);
            var capturer = new PatternCapturer(320, 240, 30);
            var publisher = new Publisher(capturer, "csharp-to-c");
            var rec = new Recorder();
            var output = new StringBuilder();
            System.Diagnostics.Process c = null;
            try
            {
                rec.Watch(session);
                rec.Watch(publisher);
                session.SetEncryptionSecret(Secret);
                session.Connect(server.Token(sid));
                Wait.For(() => session.IsConnected, 20, "connected");
                session.Publish(publisher);
                Wait.For(() => publisher.Stream != null, 20, "stream created");
                c = Proc.Start(CExample("subscriber"), CArgs(sid, "--secret", Secret, "--frames", "30", "--seconds", "40"), output);
                int rc = Proc.Finish(c, 45);
                string o;
                lock (output) o = output.ToString();
                foreach (var line in o.Split('\n')) if (line.StartsWith("PASS") || line.StartsWith("FAIL") || line.Contains("matched")) Console.WriteLine("  [C subscriber] " + line.Trim());
                Check.True(rc == 0, "the C subscriber passed (exit " + rc + "):\n" + o);
                Check.True(o.Contains("PASS frames match the test pattern") && o.Contains("PASS audio heard"), "the C subscriber checked frames and audio");
                // The C subscriber says hello ("c-sdk") when it connects and "c-sdk-done" when it leaves.
                Wait.For(() => rec.Signal("c-sdk-done") != null, 10, "the C subscriber's signals");
                Check.True(rec.Signal("c-sdk") != null, "the C subscriber's hello");
                Check.Equal(0, rec.SessionErrors.Count + rec.PublisherErrors.Count, "no errors (" + rec.List + ")");
            }
            finally
            {
                publisher.Dispose();
                session.Dispose();
            }
        }

        private static void CToCSharp()
        {
            string sid = server.CreateE2eeSession();
            var output = new StringBuilder();
            var c = Proc.Start(CExample("publisher"), CArgs(sid, "--secret", Secret, "--seconds", "40"), output);
            var session = new Session(server.ApiKey, sid, server.Url, null);
            var rec = new Recorder();
            var renderer = new CheckingRenderer();
            Subscriber subscriber = null;
            try
            {
                rec.Watch(session);
                session.StreamReceived += (src, e) =>
                {
                    var s = new Subscriber(e.Stream, renderer);
                    rec.Watch(s);
                    session.Subscribe(s);
                    subscriber = s;
                };
                session.SetEncryptionSecret(Secret);
                session.Connect(server.Token(sid));
                Wait.For(() => renderer.Ok >= 30, 40, () => "30 checked frames from the C publisher (" + renderer.Summary + "; events: " + rec.List + ")");
                Console.WriteLine("  C# subscriber: " + renderer.Summary);
                Check.Equal("c-publisher", rec.StreamsReceived[0].Name, "the C publisher's stream name");
                Check.True(renderer.Bad <= renderer.Ok / 4, "few frames that do not match: " + renderer.Summary);
                session.SendSignal("c-sdk-done", ""); // the C publisher stops on this
                int rc = Proc.Finish(c, 20);
                string o;
                lock (output) o = output.ToString();
                foreach (var line in o.Split('\n')) if (line.StartsWith("PASS") || line.StartsWith("FAIL")) Console.WriteLine("  [C publisher] " + line.Trim());
                Check.True(rc == 0 && o.Contains("PASS published until the subscriber was done"), "the C publisher stopped on the C# signal and passed (exit " + rc + "):\n" + o);
                Check.Equal(0, rec.SessionErrors.Count + rec.SubscriberErrors.Count, "no errors (" + rec.List + ")");
            }
            finally
            {
                if (!c.HasExited) { try { c.Kill(); } catch { } }
                if (subscriber != null) subscriber.Dispose();
                session.Dispose();
            }
        }

        private static void NotEncrypted()
        {
            string sid = server.CreateE2eeSession();
            var output = new StringBuilder();
            // The Rust SDK's test-only lying publisher (cargo feature testing-plaintext-publisher).
            string liar = Server.Env("UMBRA_TEST_PLAINTEXT_PUBLISHER");
            Check.True(File.Exists(liar), "the plaintext publisher " + liar + " is built");
            var p = Proc.Start(liar, CArgs(sid, "--secret", Secret, "--seconds", "40"), output);
            var session = new Session(server.ApiKey, sid, server.Url, null);
            var rec = new Recorder();
            var renderer = new CheckingRenderer();
            Subscriber subscriber = null;
            try
            {
                rec.Watch(session);
                session.StreamReceived += (src, e) =>
                {
                    var s = new Subscriber(e.Stream, renderer);
                    rec.Watch(s);
                    session.Subscribe(s);
                    subscriber = s;
                };
                session.SetEncryptionSecret(Secret); // the right secret: nothing to fix on this side
                session.Connect(server.Token(sid));
                Wait.For(() => rec.Count("Subscriber.NotEncrypted") == 1, 30, () => "StreamNotEncrypted (events: " + rec.List + ")");
                // Plain frames keep coming: still exactly one report, nothing rendered.
                Thread.Sleep(3000);
                Check.True(rec.StreamsReceived[0].HasVideo, "the stream was received");
                Check.Equal(1, rec.Count("Subscriber.NotEncrypted"), "StreamNotEncrypted events");
                Check.Equal(1, rec.Count("Subscriber.Error:StreamNotEncrypted"), "errors with StreamNotEncrypted (" + rec.List + ")");
                Check.True(rec.Events.IndexOf("Subscriber.Error:StreamNotEncrypted") < rec.Events.IndexOf("Subscriber.NotEncrypted"), "Error, then the event");
                Check.Equal(0, rec.Count("Subscriber.Mismatch") + rec.Count("Subscriber.Error:EncryptionSecretMismatch"), "never a mismatch (" + rec.List + ")");
                Check.Equal(0L, subscriber.FramesRendered, "no decoded frame");
                Check.Equal(0, renderer.Calls, "nothing rendered");
                Check.Equal(0, rec.SessionErrors.Count, "no session error");
                session.SendSignal("c-sdk-done", ""); // the plaintext publisher stops on this
                int rc = Proc.Finish(p, 20);
                string o;
                lock (output) o = output.ToString();
                Check.True(rc == 0, "the plaintext publisher published and stopped on the signal (exit " + rc + "):\n" + o);
            }
            finally
            {
                if (!p.HasExited) { try { p.Kill(); } catch { } }
                if (subscriber != null) subscriber.Dispose();
                session.Dispose();
            }
        }
    }
}
