using System;
using System.Collections.Generic;
using System.Threading;

namespace Umbra
{
    /// <summary>
    /// A connection to one session of an Umbra server (<c>umbra serve</c>), in the shape of the
    /// vendor's Windows SDK: connect with a token, publish, subscribe, signal, and end-to-end
    /// encryption with <see cref="SetEncryptionSecret"/>.
    /// <para>
    /// Threading: the SDK calls back on its own dispatch thread (one per session, events in the
    /// order they happened). Session, Publisher and Subscriber events are raised through the
    /// <see cref="EventContext"/> given to the constructor, with
    /// <see cref="SynchronizationContext.Post"/> (asynchronous, in order), or directly on the
    /// SDK's dispatch thread when it is null. Media callbacks (<see cref="IVideoRenderer"/>,
    /// <see cref="Subscriber.AudioData"/>, <see cref="IVideoCapturer"/>) are never marshalled.
    /// Every method may be called from any thread, event handlers included.
    /// </para>
    /// </summary>
    public sealed partial class Session : IDisposable
    {
        private IntPtr handle;
        private readonly IntPtr userData;
        private int disposed;
        private readonly object sync = new object();
        private readonly Dictionary<string, Stream> streams = new Dictionary<string, Stream>();
        private readonly Dictionary<string, Connection> connections = new Dictionary<string, Connection>();
        private readonly HashSet<string> ownStreams = new HashSet<string>();
        private volatile bool connected;

        /// <summary>
        /// A session whose events are raised through the <see cref="SynchronizationContext"/> of
        /// the constructing thread (<see cref="SynchronizationContext.Current"/>: the UI thread of a
        /// WPF or WinForms app), or on the SDK's thread when there is none (a console app).
        /// </summary>
        /// <param name="apiKey">The project's API key.</param>
        /// <param name="sessionId">The session id your app server created.</param>
        /// <param name="serverUrl">The <c>http://host:port</c> (or https) URL of <c>umbra serve</c>;
        /// null for <c>$UMBRA_URL</c> or else <c>http://127.0.0.1:8080</c>.</param>
        public Session(string apiKey, string sessionId, string serverUrl)
            : this(apiKey, sessionId, serverUrl, SynchronizationContext.Current, null)
        {
        }

        /// <summary>
        /// A session whose events are raised through <paramref name="eventContext"/>, or directly
        /// on the SDK's dispatch thread when it is null.
        /// </summary>
        /// <param name="mediaBindAddress">Local IP address media sockets bind to (default
        /// 127.0.0.1: set the host's address to reach a server on another machine).</param>
        public Session(string apiKey, string sessionId, string serverUrl, SynchronizationContext eventContext, string mediaBindAddress = null)
        {
            if (apiKey == null) throw new ArgumentNullException("apiKey");
            if (sessionId == null) throw new ArgumentNullException("sessionId");
            UmbraSdk.Initialize();
            ApiKey = apiKey;
            Id = sessionId;
            EventContext = eventContext;
            IntPtr settings = Native.otc_session_settings_new();
            if (settings == IntPtr.Zero) throw new OpenTokException(ErrorCode.InternalError, "otc_session_settings_new failed");
            try
            {
                if (serverUrl != null && Native.otc_session_settings_set_server_url(settings, Utf8.Encode(serverUrl)) != Native.OTC_SUCCESS)
                    throw new ArgumentException("the server URL must start with http:// or https://", "serverUrl");
                if (mediaBindAddress != null && Native.otc_session_settings_set_bind_ip(settings, Utf8.Encode(mediaBindAddress)) != Native.OTC_SUCCESS)
                    throw new ArgumentException("not an IP address", "mediaBindAddress");
                ServerUrl = serverUrl;
                userData = Registry.Add(this);
                var table = Callbacks.SessionTable(userData);
                handle = Native.otc_session_new_with_settings(Utf8.Encode(apiKey), Utf8.Encode(sessionId), ref table, settings);
                if (handle == IntPtr.Zero)
                {
                    Registry.Remove(userData);
                    throw new OpenTokException(ErrorCode.NullOrInvalidParameter, "otc_session_new_with_settings refused the API key or session id");
                }
                Native.otc_session_set_active_speaker_callback(handle, Callbacks.ActiveSpeakerCallback(), userData);
            }
            finally
            {
                Native.otc_session_settings_delete(settings);
            }
        }

        // ---- events (see the class remarks for the thread they are raised on) ----

        /// <summary>Connected: you can publish and subscribe.</summary>
        public event EventHandler Connected;
        /// <summary>Disconnected (after <see cref="Disconnect"/>, or the server or network ended the connection).</summary>
        public event EventHandler Disconnected;
        /// <summary>
        /// A session error: <see cref="ErrorCode.EncryptionSecretMissing"/> after connecting to an
        /// end-to-end encrypted session without a secret (the session stays connected),
        /// <see cref="ErrorCode.AuthorizationFailure"/> for a refused token, ...
        /// </summary>
        public event EventHandler<ErrorEventArgs> Error;
        /// <summary>Another participant's stream appeared: subscribe to it with <see cref="Subscriber"/> (your own streams are reported by <see cref="Publisher.StreamCreated"/>, not here).</summary>
        public event EventHandler<StreamEventArgs> StreamReceived;
        /// <summary>A stream ended (the same <see cref="Stream"/> object as in <see cref="StreamReceived"/>).</summary>
        public event EventHandler<StreamEventArgs> StreamDropped;
        /// <summary>Another participant connected.</summary>
        public event EventHandler<ConnectionEventArgs> ConnectionCreated;
        /// <summary>A participant left.</summary>
        public event EventHandler<ConnectionEventArgs> ConnectionDropped;
        /// <summary>A signal arrived.</summary>
        public event EventHandler<SignalEventArgs> Signal;
        /// <summary>A stream's publisher started or stopped sending audio (e.g. it was forced to mute); <see cref="Stream.HasAudio"/> is already updated.</summary>
        public event EventHandler<StreamPropertyChangedEventArgs> StreamHasAudioChanged;
        /// <summary>A stream's publisher started or stopped sending video; <see cref="Stream.HasVideo"/> is already updated.</summary>
        public event EventHandler<StreamPropertyChangedEventArgs> StreamHasVideoChanged;
        /// <summary>A stream's publisher reported a new video size; <see cref="Stream.VideoWidth"/> and <see cref="Stream.VideoHeight"/> are already updated.</summary>
        public event EventHandler<StreamPropertyChangedEventArgs> StreamVideoDimensionsChanged;

        // ---- properties ----

        public string Id { get; private set; }
        public string ApiKey { get; private set; }
        /// <summary>The server URL given to the constructor (null: the default).</summary>
        public string ServerUrl { get; private set; }
        /// <summary>Where events are raised (null: on the SDK's dispatch thread).</summary>
        public SynchronizationContext EventContext { get; private set; }
        /// <summary>True from the SDK's connected callback until its disconnected callback (set on the SDK thread, before the events are raised).</summary>
        public bool IsConnected
        {
            get { return connected; }
        }

        // ---- methods ----

        /// <summary>
        /// Sets or changes the end-to-end encryption secret, before connecting or at any time
        /// after (subscribers then decrypt with the new one). All participants use the same
        /// secret: 8 to 256 Unicode characters (code points, not UTF-16 units).
        /// </summary>
        /// <exception cref="OpenTokException"><see cref="ErrorCode.InvalidEncryptionSecret"/> for a secret outside the rule (nothing changes).</exception>
        public void SetEncryptionSecret(string secret)
        {
            if (secret == null) throw new ArgumentNullException("secret");
            byte[] bytes;
            try
            {
                bytes = Utf8.Encode(secret);
            }
            catch (ArgumentException)
            {
                throw new OpenTokException(ErrorCode.InvalidEncryptionSecret, "the secret is not valid Unicode");
            }
            OpenTokException.Check(Native.otc_session_set_encryption_secret(Handle(), bytes), "SetEncryptionSecret");
        }

        /// <summary>
        /// Connects with a client token. Returns at once; <see cref="Connected"/> follows (or
        /// <see cref="Error"/> and <see cref="Disconnected"/>).
        /// </summary>
        /// <exception cref="OpenTokException"><see cref="ErrorCode.IllegalState"/> if already connected or connecting.</exception>
        public void Connect(string token)
        {
            if (token == null) throw new ArgumentNullException("token");
            OpenTokException.Check(Native.otc_session_connect(Handle(), Utf8.Encode(token)), "Connect");
        }

        /// <summary>
        /// Leaves the session and waits until the SDK's session thread has stopped;
        /// <see cref="Disconnected"/> follows. Publishers and subscribers of this session stop
        /// (dispose them yourself). Does nothing when not connected.
        /// </summary>
        public void Disconnect()
        {
            OpenTokException.Check(Native.otc_session_disconnect(Handle()), "Disconnect");
        }

        /// <summary>
        /// Publishes in the connected session; <see cref="Publisher.StreamCreated"/> follows. Errors
        /// the SDK also reports to the publisher (<see cref="ErrorCode.EncryptionSecretMissing"/>
        /// in an end-to-end encrypted session without a secret) are raised as
        /// <see cref="Publisher.Error"/> as well.
        /// </summary>
        /// <exception cref="OpenTokException">EncryptionSecretMissing, NotConnected, IllegalState (already published), InternalError (the capturer's Start failed).</exception>
        public void Publish(Publisher publisher)
        {
            if (publisher == null) throw new ArgumentNullException("publisher");
            publisher.Session = this;
            OpenTokException.Check(Native.otc_session_publish(Handle(), publisher.Handle()), "Publish");
        }

        /// <summary>Stops publishing. No event of the publisher is raised by the SDK after this returns (posted ones may still run).</summary>
        public void Unpublish(Publisher publisher)
        {
            if (publisher == null) throw new ArgumentNullException("publisher");
            OpenTokException.Check(Native.otc_session_unpublish(Handle(), publisher.Handle()), "Unpublish");
        }

        /// <summary>
        /// Subscribes in the connected session; <see cref="Subscriber.Connected"/> and frames follow.
        /// <see cref="ErrorCode.EncryptionSecretMissing"/> is also raised as <see cref="Subscriber.Error"/>.
        /// </summary>
        /// <exception cref="OpenTokException">EncryptionSecretMissing, NotConnected, IllegalState (already subscribed).</exception>
        public void Subscribe(Subscriber subscriber)
        {
            if (subscriber == null) throw new ArgumentNullException("subscriber");
            subscriber.Session = this;
            OpenTokException.Check(Native.otc_session_subscribe(Handle(), subscriber.Handle()), "Subscribe");
        }

        /// <summary>Stops receiving. No event of the subscriber is raised by the SDK after this returns (posted ones may still run).</summary>
        public void Unsubscribe(Subscriber subscriber)
        {
            if (subscriber == null) throw new ArgumentNullException("subscriber");
            OpenTokException.Check(Native.otc_session_unsubscribe(Handle(), subscriber.Handle()), "Unsubscribe");
        }

        /// <summary>Sends a signal to everyone in the session (<paramref name="type"/> may be empty).</summary>
        public void SendSignal(string type, string data)
        {
            SendSignal(type, data, null);
        }

        /// <summary>Sends a signal to one connection (to everyone when <paramref name="to"/> is null).</summary>
        public void SendSignal(string type, string data, Connection to)
        {
            byte[] t = Utf8.Encode(type ?? string.Empty), d = Utf8.Encode(data ?? string.Empty);
            IntPtr session = Handle();
            if (to == null)
            {
                OpenTokException.Check(Native.otc_session_send_signal_to_connection(session, t, d, IntPtr.Zero), "SendSignal");
                return;
            }
            bool added = false;
            try
            {
                to.Handle.DangerousAddRef(ref added);
                OpenTokException.Check(Native.otc_session_send_signal_to_connection(session, t, d, to.Handle.DangerousGetHandle()), "SendSignal");
            }
            finally
            {
                if (added) to.Handle.DangerousRelease();
            }
        }

        /// <summary>
        /// Disconnects (if connected), waits for the SDK's last callbacks, and frees the native
        /// session. Publishers and subscribers stay yours to dispose (before or after). Called
        /// from one of this session's own handlers on the SDK thread, it finishes on a thread-pool
        /// thread instead (the SDK thread cannot wait for itself).
        /// </summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            IntPtr h = handle;
            if (Native.otc_session_delete(h) == (int)ErrorCode.IllegalState)
            {
                // From this session's dispatch thread: let another thread wait for it.
                ThreadPool.QueueUserWorkItem(_ =>
                {
                    try
                    {
                        Native.otc_session_delete(h);
                        Freed();
                    }
                    catch (Exception e)
                    {
                        UmbraSdk.ReportCallbackException(this, "Session.Dispose", e);
                    }
                });
                return;
            }
            Freed();
        }

        private void Freed()
        {
            handle = IntPtr.Zero;
            Registry.Remove(userData);
            connected = false;
            lock (sync)
            {
                streams.Clear();
                connections.Clear();
                ownStreams.Clear();
            }
        }

        internal IntPtr Handle()
        {
            if (Volatile.Read(ref disposed) != 0) throw new ObjectDisposedException("Session");
            return handle;
        }

        public override string ToString()
        {
            return "Session " + Id;
        }

        // ---- raising events ----

        /// <summary>Runs a handler invocation through the event context, or here (the SDK thread), guarded.</summary>
        internal void Raise(object source, string name, Action invoke)
        {
            var context = EventContext;
            if (context == null)
            {
                Invoke(source, name, invoke);
            }
            else
            {
                // Post never blocks the SDK thread (Send could deadlock with a UI thread that is
                // waiting in Disconnect or Dispose). Exceptions of handlers run there are the
                // app's, as for any code on that thread.
                context.Post(_ => invoke(), null);
            }
        }

        internal static void Invoke(object source, string name, Action invoke)
        {
            try
            {
                invoke();
            }
            catch (Exception e)
            {
                UmbraSdk.ReportCallbackException(source, name, e);
            }
        }

        // ---- from the native callbacks (SDK dispatch thread) ----

        internal void OnConnected()
        {
            connected = true;
            Raise(this, "Session.Connected", () => { var h = Connected; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnDisconnected()
        {
            connected = false;
            lock (sync)
            {
                streams.Clear();
                connections.Clear();
                ownStreams.Clear();
            }
            Raise(this, "Session.Disconnected", () => { var h = Disconnected; if (h != null) h(this, EventArgs.Empty); });
        }

        internal void OnError(string message, int code)
        {
            var args = new ErrorEventArgs((ErrorCode)code, message);
            Raise(this, "Session.Error", () => { var h = Error; if (h != null) h(this, args); });
        }

        internal void OnConnectionCreated(IntPtr ptr)
        {
            var c = new Connection(ptr);
            lock (sync) connections[c.Id] = c;
            var args = new ConnectionEventArgs(c);
            Raise(this, "Session.ConnectionCreated", () => { var h = ConnectionCreated; if (h != null) h(this, args); });
        }

        internal void OnConnectionDropped(IntPtr ptr)
        {
            var c = KnownConnection(ptr, true);
            var args = new ConnectionEventArgs(c);
            Raise(this, "Session.ConnectionDropped", () => { var h = ConnectionDropped; if (h != null) h(this, args); });
        }

        private Connection KnownConnection(IntPtr ptr, bool remove)
        {
            string id = Utf8.Decode(Native.otc_connection_get_id(ptr)) ?? string.Empty;
            lock (sync)
            {
                Connection c;
                if (connections.TryGetValue(id, out c))
                {
                    if (remove) connections.Remove(id);
                    return c;
                }
            }
            return new Connection(ptr);
        }

        internal void OnStreamReceived(IntPtr ptr)
        {
            var s = new Stream(ptr, this);
            lock (sync)
            {
                // libumbra reports this client's own streams too (its on_stream_received says
                // "another participant's stream", and the vendor SDKs raise StreamReceived only
                // for others). The C API does not say which connection is ours, but every other
                // connection is announced by ConnectionCreated before its streams, and ours never
                // is: a stream of an unannounced connection is our own (Publisher.StreamCreated
                // reports it). Skipped here, and its drop and property changes too.
                if (s.Connection != null && !connections.ContainsKey(s.Connection.Id))
                {
                    ownStreams.Add(s.Id);
                    return;
                }
                streams[s.Id] = s;
            }
            var args = new StreamEventArgs(s);
            Raise(this, "Session.StreamReceived", () => { var h = StreamReceived; if (h != null) h(this, args); });
        }

        internal void OnStreamDropped(IntPtr ptr)
        {
            string id = Utf8.Decode(Native.otc_stream_get_id(ptr)) ?? string.Empty;
            Stream s;
            lock (sync)
            {
                if (ownStreams.Remove(id)) return;
                if (streams.TryGetValue(id, out s)) streams.Remove(id);
            }
            if (s == null) s = new Stream(ptr, this);
            var args = new StreamEventArgs(s);
            Raise(this, "Session.StreamDropped", () => { var h = StreamDropped; if (h != null) h(this, args); });
        }

        /// <summary>The Stream object StreamReceived gave for this stream; null for our own streams.</summary>
        private Stream KnownStream(IntPtr ptr)
        {
            string id = Utf8.Decode(Native.otc_stream_get_id(ptr)) ?? string.Empty;
            Stream s;
            lock (sync)
            {
                if (ownStreams.Contains(id)) return null;
                if (streams.TryGetValue(id, out s)) return s;
            }
            return new Stream(ptr, this);
        }

        internal void OnStreamHasAudioChanged(IntPtr ptr, bool hasAudio)
        {
            var s = KnownStream(ptr);
            if (s == null) return;
            s.Refresh(ptr);
            var args = new StreamPropertyChangedEventArgs(s, "HasAudio", hasAudio, s.HasVideo, s.VideoWidth, s.VideoHeight);
            Raise(this, "Session.StreamHasAudioChanged", () => { var h = StreamHasAudioChanged; if (h != null) h(this, args); });
        }

        internal void OnStreamHasVideoChanged(IntPtr ptr, bool hasVideo)
        {
            var s = KnownStream(ptr);
            if (s == null) return;
            s.Refresh(ptr);
            var args = new StreamPropertyChangedEventArgs(s, "HasVideo", s.HasAudio, hasVideo, s.VideoWidth, s.VideoHeight);
            Raise(this, "Session.StreamHasVideoChanged", () => { var h = StreamHasVideoChanged; if (h != null) h(this, args); });
        }

        internal void OnStreamVideoDimensionsChanged(IntPtr ptr, int width, int height)
        {
            var s = KnownStream(ptr);
            if (s == null) return;
            s.Refresh(ptr);
            var args = new StreamPropertyChangedEventArgs(s, "VideoDimensions", s.HasAudio, s.HasVideo, width, height);
            Raise(this, "Session.StreamVideoDimensionsChanged", () => { var h = StreamVideoDimensionsChanged; if (h != null) h(this, args); });
        }

        internal void OnSignal(IntPtr type, IntPtr data, IntPtr connection)
        {
            var args = new SignalEventArgs(Utf8.Decode(type) ?? string.Empty, Utf8.Decode(data) ?? string.Empty,
                connection == IntPtr.Zero ? null : KnownConnection(connection, false));
            Raise(this, "Session.Signal", () => { var h = Signal; if (h != null) h(this, args); });
        }

        // ---- event arguments (nested, as in the vendor's Windows SDK) ----

        public sealed class ErrorEventArgs : EventArgs
        {
            internal ErrorEventArgs(ErrorCode code, string message)
            {
                ErrorCode = code;
                Message = message ?? string.Empty;
            }

            public ErrorCode ErrorCode { get; private set; }
            /// <summary>The SDK's description of this occurrence.</summary>
            public string Message { get; private set; }

            public override string ToString()
            {
                return ErrorCode + " (" + (int)ErrorCode + "): " + Message;
            }
        }

        public sealed class StreamEventArgs : EventArgs
        {
            internal StreamEventArgs(Stream stream)
            {
                Stream = stream;
            }

            public Stream Stream { get; private set; }
        }

        public sealed class ConnectionEventArgs : EventArgs
        {
            internal ConnectionEventArgs(Connection connection)
            {
                Connection = connection;
            }

            public Connection Connection { get; private set; }
        }

        /// <summary>A stream property changed; the values are those of this change (the Stream shows the latest).</summary>
        public sealed class StreamPropertyChangedEventArgs : EventArgs
        {
            internal StreamPropertyChangedEventArgs(Stream stream, string property, bool hasAudio, bool hasVideo, int width, int height)
            {
                Stream = stream;
                Property = property;
                HasAudio = hasAudio;
                HasVideo = hasVideo;
                VideoWidth = width;
                VideoHeight = height;
            }

            public Stream Stream { get; private set; }
            /// <summary>"HasAudio", "HasVideo" or "VideoDimensions".</summary>
            public string Property { get; private set; }
            public bool HasAudio { get; private set; }
            public bool HasVideo { get; private set; }
            public int VideoWidth { get; private set; }
            public int VideoHeight { get; private set; }
        }

        public sealed class SignalEventArgs : EventArgs
        {
            internal SignalEventArgs(string type, string data, Connection connection)
            {
                Type = type;
                Data = data;
                Connection = connection;
            }

            public string Type { get; private set; }
            public string Data { get; private set; }
            /// <summary>The sender's connection; null when the server sent the signal.</summary>
            public Connection Connection { get; private set; }
        }
    }
}
