// Subscriber video preferences and active speakers through the real router of a real
// `umbra serve`, end-to-end encrypted (the checks of crates/umbra-client/tests/simulcast.rs).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace Umbra.Tests
{
    /// <summary>The size of every decoded picture, in order.</summary>
    internal sealed class SizeRenderer : IVideoRenderer
    {
        private readonly List<VideoSize> sizes = new List<VideoSize>();

        public void RenderFrame(VideoFrame frame)
        {
            lock (sizes) sizes.Add(new VideoSize(frame.Width, frame.Height));
        }

        public int Count
        {
            get { lock (sizes) return sizes.Count; }
        }

        public List<VideoSize> From(int index)
        {
            lock (sizes) return sizes.Skip(index).ToList();
        }

        public bool Any(VideoSize size)
        {
            lock (sizes) return sizes.Contains(size);
        }
    }

    internal static class SimulcastTests
    {
        private const string Secret = "correct horse battery staple";

        private static string Sizes(IEnumerable<VideoSize> sizes)
        {
            return string.Join(", ", sizes.Distinct().Select(s => s.ToString()).ToArray());
        }

        /// <summary>
        /// A 640x360 publisher sends three layers (160x90, 320x180, 640x360): a subscriber asking
        /// for 320x180 gets 320x180 pictures, then 160x90 only once it asks for that, and none
        /// while it does not subscribe to video.
        /// </summary>
        public static void PreferredResolution(Server server)
        {
            var renderer = new SizeRenderer();
            var layers = new List<string>();
            Func<string> layerList = () => { lock (layers) return string.Join(", ", layers); };
            Func<string, bool> layerSeen = l => { lock (layers) return layers.Contains(l); };
            var camera = new Publisher(new Publisher.Builder { Name = "camera", TestPatternWidth = 640, TestPatternHeight = 360, TestPatternFps = 30 });
            using (var pair = new PubSub(server, server.CreateE2eeSession(), camera))
            {
                var rec = pair.Rec;
                pair.Publish(Secret);
                pair.Subscribe(Secret, renderer, s =>
                {
                    s.VideoLayerChanged += (_, l) => { lock (layers) layers.Add(l.ToString()); };
                    // Before subscribing: libumbra applies it when the subscription starts.
                    s.PreferredResolution = new VideoSize(320, 180);
                });
                Wait.For(() => renderer.Any(new VideoSize(320, 180)), 30, () => "a 320x180 picture (seen: " + Sizes(renderer.From(0)) + "; events: " + rec.List + ")");
                Check.Equal(new VideoSize(320, 180), pair.Subscriber.PreferredResolution.Value, "PreferredResolution reads back");
                // The layers are q, h, f (160, 320, 640 wide): 320x180 is h.
                Wait.For(() => layerSeen("h"), 10, () => "VideoLayerChanged naming h (seen: " + layerList() + ")");

                pair.Subscriber.PreferredResolution = new VideoSize(160, 90);
                int asked = renderer.Count;
                Wait.For(() => renderer.From(asked).Contains(new VideoSize(160, 90)), 15, () => "a 160x90 picture (seen: " + Sizes(renderer.From(asked)) + ")");
                Thread.Sleep(300); // pictures of the previous layer still in flight
                int from = renderer.Count;
                Thread.Sleep(2000);
                var after = renderer.From(from);
                Check.True(after.Count >= 20, after.Count + " pictures in 2 s at 160x90");
                Check.True(after.All(s => s.Equals(new VideoSize(160, 90))), "only 160x90 pictures (seen: " + Sizes(after) + ")");
                Wait.For(() => layerSeen("q"), 10, () => "VideoLayerChanged naming q (seen: " + layerList() + ")");

                pair.Subscriber.SubscribeToVideo = false;
                Wait.For(() => layerSeen("paused"), 10, () => "VideoLayerChanged paused (seen: " + layerList() + ")");
                Thread.Sleep(1500);
                int stopped = renderer.Count;
                Thread.Sleep(1500);
                Check.True(renderer.Count <= stopped + 1, (renderer.Count - stopped) + " pictures while SubscribeToVideo is false");
                pair.Subscriber.SubscribeToVideo = true;
                Wait.For(() => renderer.Count >= stopped + 10, 15, "pictures again after SubscribeToVideo = true");

                Check.Equal(0, rec.SubscriberErrors.Count, "subscriber errors (" + rec.List + ")");
                Check.Equal(0, rec.Count("Subscriber.Mismatch"), "mismatches");
            }
        }

        /// <summary>Bad preferences are refused before anything reaches libumbra, and change nothing.</summary>
        public static void BadPreferences(Server server)
        {
            string sid = server.CreateE2eeSession();
            var session = new Session(server.ApiKey, sid, server.Url, null);
            var publisher = new Publisher(new Publisher.Builder { Name = "own" });
            Subscriber subscriber = null;
            try
            {
                session.SetEncryptionSecret(Secret);
                session.Connect(server.Token(sid));
                Wait.For(() => session.IsConnected, 20, "connected");
                session.Publish(publisher);
                Wait.For(() => publisher.Stream != null, 20, "the publisher's stream");
                subscriber = new Subscriber(publisher.Stream);
                var s = subscriber;
                Check.Throws<ArgumentOutOfRangeException>(() => s.PreferredResolution = new VideoSize(0, 90), "a width of 0");
                Check.Throws<ArgumentOutOfRangeException>(() => s.PreferredResolution = new VideoSize(160, -1), "a negative height");
                Check.Throws<ArgumentOutOfRangeException>(() => s.PreferredFrameRate = 0f, "a frame rate of 0");
                Check.Throws<ArgumentOutOfRangeException>(() => s.PreferredFrameRate = 241f, "a frame rate of 241");
                Check.Throws<ArgumentOutOfRangeException>(() => s.PreferredFrameRate = float.NaN, "a frame rate of NaN");
                Check.True(s.PreferredResolution == null && s.PreferredFrameRate == null && s.SubscribeToVideo, "nothing changed");
                s.PreferredFrameRate = 7.5f;
                s.PreferredFrameRate = null;
                s.PreferredResolution = null;
                Check.True(s.PreferredFrameRate == null && s.PreferredResolution == null, "no preference again");
            }
            finally
            {
                if (subscriber != null) subscriber.Dispose();
                publisher.Dispose();
                session.Dispose();
            }
        }

        /// <summary>
        /// An audio-only publisher of a tone without audio levels is never named; one with them
        /// is named active speaker, with its connection.
        /// </summary>
        public static void ActiveSpeaker(Server server)
        {
            string sid = server.CreateE2eeSession();
            var watcher = new Session(server.ApiKey, sid, server.Url, null);
            var pubSession = new Session(server.ApiKey, sid, server.Url, null);
            var publisher = new Publisher(new Publisher.Builder { Name = "speaker", HasVideoTrack = false });
            var hidden = new Publisher(new Publisher.Builder { Name = "private", HasVideoTrack = false, AudioLevel = false });
            var heard = new List<string>();
            try
            {
                watcher.ActiveSpeakerChanged += (o, e) => { lock (heard) heard.Add(e.StreamId + "/" + e.ConnectionId); };
                watcher.SetEncryptionSecret(Secret);
                watcher.Connect(server.Token(sid));
                Wait.For(() => watcher.IsConnected, 20, "watcher connected");
                pubSession.SetEncryptionSecret(Secret);
                pubSession.Connect(server.Token(sid));
                Wait.For(() => pubSession.IsConnected, 20, "publisher connected");
                pubSession.Publish(hidden);
                Wait.For(() => hidden.Stream != null, 20, "the private publisher's stream");
                Thread.Sleep(4000);
                lock (heard) Check.Equal(0, heard.Count, "speakers heard while only a publisher without audio levels spoke (" + string.Join(", ", heard.ToArray()) + ")");
                pubSession.Publish(publisher);
                Wait.For(() => publisher.Stream != null, 20, "the publisher's stream");
                string expected = publisher.Stream.Id + "/" + publisher.Stream.Connection.Id;
                Wait.For(() => { lock (heard) return heard.Contains(expected); }, 15, () => { lock (heard) return "ActiveSpeakerChanged naming " + expected + " (heard: " + string.Join(", ", heard.ToArray()) + ")"; });
            }
            finally
            {
                publisher.Dispose();
                hidden.Dispose();
                pubSession.Dispose();
                watcher.Dispose();
            }
        }
    }
}
