package io.umbra.android

import io.umbra.ffi.ErrorInfo
import io.umbra.ffi.SessionOptions
import io.umbra.ffi.UmbraException
import java.util.concurrent.ConcurrentHashMap
import io.umbra.ffi.Connection as NativeConnection
import io.umbra.ffi.Session as NativeSession
import io.umbra.ffi.SessionListener as NativeListener
import io.umbra.ffi.Stream as NativeStream

/**
 * A connection to one Umbra session, in the shape of the vendor's Android `Session`.
 *
 * Listener methods run on the session's dispatch thread (one per session, named
 * `umbra-dispatch`), one at a time, in the order things happened; they may call any method of
 * the SDK. An Android app posts to its main thread from there. Call [release] when done with the
 * session (it disconnects and stops the session's threads); after it returns no listener of the
 * session runs.
 */
class Session private constructor(builder: Builder) : AutoCloseable {
    /** A session for `sessionId` of project `apiKey`. No Android `Context` is needed. */
    class Builder(internal val apiKey: String, internal val sessionId: String) {
        internal var serverUrl: String = System.getenv("UMBRA_URL")?.takeIf { it.isNotEmpty() } ?: "http://127.0.0.1:8080"
        internal var bindIp: String? = null
        internal var listener: SessionListener? = null

        /** `http://host:port` of `umbra serve` (default `$UMBRA_URL`, else `http://127.0.0.1:8080`). */
        fun serverUrl(url: String) = apply { serverUrl = url }

        /** The local address media sockets bind to (default 127.0.0.1). */
        fun bindIp(ip: String) = apply { bindIp = ip }

        fun sessionListener(l: SessionListener) = apply { listener = l }

        /** @throws IllegalArgumentException for an empty key or id, a bad URL or bind address. */
        fun build(): Session = Session(this)
    }

    interface SessionListener {
        fun onConnected(session: Session)
        fun onDisconnected(session: Session)
        /** Other participants' streams; this client's own are reported to its publishers. */
        fun onStreamReceived(session: Session, stream: Stream)
        fun onStreamDropped(session: Session, stream: Stream)
        /**
         * E.g. [OpentokError.ErrorCode.EncryptionSecretMissing] after connecting to an end-to-end
         * encrypted session without a secret (the session stays connected), or
         * [OpentokError.ErrorCode.InvalidEncryptionSecret] from [setEncryptionSecret].
         */
        fun onError(session: Session, error: OpentokError)
    }

    interface ConnectionListener {
        fun onConnectionCreated(session: Session, connection: Connection)
        fun onConnectionDestroyed(session: Session, connection: Connection)
    }

    interface SignalListener {
        /** `connection` is null when the server sent the signal. */
        fun onSignalReceived(session: Session, type: String, data: String, connection: Connection?)
    }

    /**
     * Umbra's (the vendor's Android SDK has none): the loudest stream of a routed session
     * changed, ranked by the audio levels publishers send (in clear: see
     * [PublisherKit.Builder.audioLevel]). Both ids are null when nobody speaks any more; this
     * client's own stream may be named.
     */
    fun interface ActiveSpeakerListener {
        fun onActiveSpeakerChanged(session: Session, streamId: String?, connectionId: String?)
    }

    interface StreamPropertiesListener {
        fun onStreamHasAudioChanged(session: Session, stream: Stream, audioEnabled: Boolean)
        fun onStreamHasVideoChanged(session: Session, stream: Stream, videoEnabled: Boolean)
        fun onStreamVideoDimensionsChanged(session: Session, stream: Stream, width: Int, height: Int)
    }

    @Volatile private var sessionListener: SessionListener? = builder.listener
    @Volatile private var connectionListener: ConnectionListener? = null
    @Volatile private var signalListener: SignalListener? = null
    @Volatile private var streamPropertiesListener: StreamPropertiesListener? = null
    @Volatile private var activeSpeakerListener: ActiveSpeakerListener? = null
    private val streams = ConcurrentHashMap<String, Stream>()
    private val native: NativeSession
    // Kept here rather than asked of the native object: listeners still run while release()
    // waits for the dispatch thread, after the native handle is already gone.
    @Volatile private var ownConnectionId: String? = null

    init {
        native = try {
            NativeSession(SessionOptions(builder.apiKey, builder.sessionId, builder.serverUrl, builder.bindIp), Bridge())
        } catch (e: UmbraException) {
            throw IllegalArgumentException(e.message, e)
        }
    }

    val sessionId: String = builder.sessionId

    /** This client's connection while connected. */
    val connection: Connection? get() = ownConnectionId?.let { Connection(it, "") }

    fun setSessionListener(l: SessionListener?) { sessionListener = l }
    fun setConnectionListener(l: ConnectionListener?) { connectionListener = l }
    fun setSignalListener(l: SignalListener?) { signalListener = l }
    fun setStreamPropertiesListener(l: StreamPropertiesListener?) { streamPropertiesListener = l }
    fun setActiveSpeakerListener(l: ActiveSpeakerListener?) { activeSpeakerListener = l }

    /**
     * Sets or changes the end-to-end encryption secret (8 to 256 characters), before connecting
     * or at any time after. A secret that breaks the rule changes nothing and is reported to
     * `SessionListener.onError` as [OpentokError.ErrorCode.InvalidEncryptionSecret], on the
     * calling thread, before this returns.
     */
    fun setEncryptionSecret(secret: String) {
        try {
            native.setEncryptionSecret(secret)
        } catch (e: UmbraException) {
            sessionListener?.onError(this, OpentokError.of(OpentokError.Domain.SessionErrorDomain, e))
        }
    }

    /** Connects; `onConnected` or `onError` follows. Errors of the call itself go to `onError` too. */
    fun connect(token: String) {
        try {
            native.connect(token)
        } catch (e: UmbraException) {
            sessionListener?.onError(this, OpentokError.of(OpentokError.Domain.SessionErrorDomain, e))
        }
    }

    /** Leaves the session; `onDisconnected` follows. The session may connect again. */
    fun disconnect() = native.disconnect()

    /**
     * Publishes. Failures (e.g. [OpentokError.ErrorCode.EncryptionSecretMissing]) go to the
     * publisher's `onError` on the dispatch thread.
     */
    fun publish(publisher: PublisherKit) {
        try {
            native.publishWith(publisher.nativePublisher(), publisher.publishOptions)
            publisher.session = this
        } catch (_: UmbraException) {
            // Reported to the publisher's listener by the binding (same error, dispatch thread).
        }
    }

    fun unpublish(publisher: PublisherKit) {
        try {
            native.unpublish(publisher.nativePublisher())
        } catch (e: UmbraException) {
            publisher.reportError(OpentokError.of(OpentokError.Domain.PublisherErrorDomain, e))
        }
    }

    /** Subscribes. Failures go to the subscriber's `onError` on the dispatch thread. */
    fun subscribe(subscriber: SubscriberKit) {
        try {
            native.subscribe(subscriber.nativeSubscriber())
        } catch (_: UmbraException) {
            // Reported to the subscriber's listener by the binding.
        }
    }

    fun unsubscribe(subscriber: SubscriberKit) {
        try {
            native.unsubscribe(subscriber.nativeSubscriber())
        } catch (e: UmbraException) {
            subscriber.reportError(OpentokError.of(OpentokError.Domain.SubscriberErrorDomain, e))
        }
    }

    fun sendSignal(type: String, data: String) = signal(type, data, null)

    fun sendSignal(type: String, data: String, connection: Connection) = signal(type, data, connection.connectionId)

    private fun signal(type: String, data: String, to: String?) {
        try {
            native.sendSignal(type, data, to)
        } catch (e: UmbraException) {
            sessionListener?.onError(this, OpentokError.of(OpentokError.Domain.SessionErrorDomain, e))
        }
    }

    /** Disconnects and frees the native session; waits for its threads. Not from a listener. */
    fun release() = native.close()

    override fun close() = release()

    private fun stream(s: NativeStream): Stream =
        streams.compute(s.streamId) { _, known -> known?.also { it.native = s } ?: Stream(s) }!!

    private fun isOwn(s: NativeStream) = s.connection.connectionId == ownConnectionId

    /** The binding's listener: keeps the Stream objects the app was given and forwards. */
    private inner class Bridge : NativeListener {
        private val session get() = this@Session

        override fun onConnected(connectionId: String) {
            ownConnectionId = connectionId
            sessionListener?.onConnected(session)
        }

        override fun onDisconnected() {
            ownConnectionId = null
            streams.clear()
            sessionListener?.onDisconnected(session)
        }

        override fun onError(error: ErrorInfo) {
            sessionListener?.onError(session, OpentokError.of(OpentokError.Domain.SessionErrorDomain, error))
        }

        override fun onConnectionCreated(connection: NativeConnection) {
            connectionListener?.onConnectionCreated(session, Connection(connection))
        }

        override fun onConnectionDropped(connection: NativeConnection) {
            connectionListener?.onConnectionDestroyed(session, Connection(connection))
        }

        override fun onStreamReceived(stream: NativeStream) {
            val s = stream(stream)
            if (!isOwn(stream)) sessionListener?.onStreamReceived(session, s)
        }

        override fun onStreamDropped(stream: NativeStream) {
            val s = streams.remove(stream.streamId)?.also { it.native = stream } ?: Stream(stream)
            if (!isOwn(stream)) sessionListener?.onStreamDropped(session, s)
        }

        override fun onStreamHasAudioChanged(stream: NativeStream, hasAudio: Boolean) {
            streamPropertiesListener?.onStreamHasAudioChanged(session, stream(stream), hasAudio)
        }

        override fun onStreamHasVideoChanged(stream: NativeStream, hasVideo: Boolean) {
            streamPropertiesListener?.onStreamHasVideoChanged(session, stream(stream), hasVideo)
        }

        override fun onStreamVideoDimensionsChanged(stream: NativeStream, width: UInt, height: UInt) {
            streamPropertiesListener?.onStreamVideoDimensionsChanged(session, stream(stream), width.toInt(), height.toInt())
        }

        override fun onSignalReceived(signalType: String, data: String, from: NativeConnection?) {
            signalListener?.onSignalReceived(session, signalType, data, from?.let { Connection(it) })
        }

        override fun onActiveSpeakerChanged(streamId: String?, connectionId: String?) {
            activeSpeakerListener?.onActiveSpeakerChanged(session, streamId, connectionId)
        }
    }
}
