using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace Umbra
{
    /// <summary>Owns a native object made by otc_stream_copy / otc_connection_copy and frees it once.</summary>
    internal abstract class NativeCopy : SafeHandle
    {
        protected NativeCopy(IntPtr p) : base(IntPtr.Zero, true)
        {
            SetHandle(p);
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }
    }

    internal sealed class StreamHandle : NativeCopy
    {
        internal StreamHandle(IntPtr p) : base(p) { }

        protected override bool ReleaseHandle()
        {
            return Native.otc_stream_delete(handle) == Native.OTC_SUCCESS;
        }
    }

    internal sealed class ConnectionHandle : NativeCopy
    {
        internal ConnectionHandle(IntPtr p) : base(p) { }

        protected override bool ReleaseHandle()
        {
            return Native.otc_connection_delete(handle) == Native.OTC_SUCCESS;
        }
    }

    /// <summary>
    /// A participant's connection to the session. Its properties are plain managed values, safe
    /// to read on any thread at any time. It holds a small native copy (freed by the garbage
    /// collector, or by <see cref="Dispose"/>) so that <see cref="Session.SendSignal(string,string,Connection)"/>
    /// can address it.
    /// </summary>
    public sealed class Connection : IDisposable
    {
        internal readonly ConnectionHandle Handle;

        internal Connection(IntPtr borrowed)
        {
            Id = Utf8.Decode(Native.otc_connection_get_id(borrowed)) ?? string.Empty;
            Data = Utf8.Decode(Native.otc_connection_get_data(borrowed)) ?? string.Empty;
            Handle = new ConnectionHandle(Native.otc_connection_copy(borrowed));
        }

        /// <summary>The connection id (as the server and the other SDKs name it).</summary>
        public string Id { get; private set; }
        /// <summary>The data set in the connection's token (may be empty).</summary>
        public string Data { get; private set; }

        public void Dispose()
        {
            Handle.Dispose();
        }

        public override string ToString()
        {
            return "Connection " + Id;
        }
    }

    /// <summary>
    /// A stream published in the session: yours (<see cref="Publisher.Stream"/>) or another
    /// participant's (<see cref="Session.StreamReceived"/>). Properties are plain managed
    /// values; a native copy is kept for <see cref="Subscriber"/> (freed by the garbage collector
    /// or <see cref="Dispose"/>).
    /// </summary>
    public sealed class Stream : IDisposable
    {
        internal readonly StreamHandle Handle;

        internal Stream(IntPtr borrowed, Session session)
        {
            Session = session;
            Id = Utf8.Decode(Native.otc_stream_get_id(borrowed)) ?? string.Empty;
            Name = Utf8.Decode(Native.otc_stream_get_name(borrowed)) ?? string.Empty;
            Refresh(borrowed);
            IntPtr c = Native.otc_stream_get_connection(borrowed);
            Connection = c == IntPtr.Zero ? null : new Connection(c);
            Handle = new StreamHandle(Native.otc_stream_copy(borrowed));
        }

        private volatile bool hasVideo, hasAudio;
        private int videoWidth, videoHeight;

        /// <summary>Reads the properties a publisher can change (on the SDK thread, before the change is raised).</summary>
        internal void Refresh(IntPtr borrowed)
        {
            hasVideo = Native.otc_stream_has_video(borrowed) != Native.OTC_FALSE;
            hasAudio = Native.otc_stream_has_audio(borrowed) != Native.OTC_FALSE;
            Volatile.Write(ref videoWidth, Math.Max(0, Native.otc_stream_get_video_width(borrowed)));
            Volatile.Write(ref videoHeight, Math.Max(0, Native.otc_stream_get_video_height(borrowed)));
        }

        /// <summary>The session this stream was reported by (null if unknown).</summary>
        public Session Session { get; private set; }
        public string Id { get; private set; }
        /// <summary>The name the publisher gave it (may be empty).</summary>
        public string Name { get; private set; }
        /// <summary>Whether the publisher sends video now (updated before <see cref="Umbra.Session.StreamHasVideoChanged"/>).</summary>
        public bool HasVideo
        {
            get { return hasVideo; }
        }

        /// <summary>Whether the publisher sends audio now (updated before <see cref="Umbra.Session.StreamHasAudioChanged"/>, e.g. after a forced mute).</summary>
        public bool HasAudio
        {
            get { return hasAudio; }
        }

        /// <summary>Video width as the publisher reports it; 0 when it has not (Umbra's native publishers report none; browsers may).</summary>
        public int VideoWidth
        {
            get { return Volatile.Read(ref videoWidth); }
        }

        /// <summary>Video height as the publisher reports it; 0 when it has not.</summary>
        public int VideoHeight
        {
            get { return Volatile.Read(ref videoHeight); }
        }
        /// <summary>The connection that publishes it.</summary>
        public Connection Connection { get; private set; }

        public void Dispose()
        {
            Handle.Dispose();
            if (Connection != null) Connection.Dispose();
        }

        public override string ToString()
        {
            return "Stream " + Id + " (" + Name + ")";
        }
    }
}
