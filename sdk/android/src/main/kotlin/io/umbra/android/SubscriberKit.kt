package io.umbra.android

import io.umbra.ffi.ErrorInfo
import io.umbra.ffi.UmbraException
import io.umbra.ffi.VideoLayer as NativeVideoLayer
import io.umbra.ffi.VideoSize
import kotlin.math.ceil
import io.umbra.ffi.AudioRenderer as NativeAudioRenderer
import io.umbra.ffi.Subscriber as NativeSubscriber
import io.umbra.ffi.SubscriberListener as NativeListener

/**
 * A subscription to one stream, in the shape of the vendor's `SubscriberKit`. Decoded pictures go
 * to the [BaseVideoRenderer] given to the builder, decoded audio to an [AudioDataListener]. In
 * an end-to-end encrypted session a frame that does not decrypt never reaches the decoder.
 */
open class SubscriberKit protected constructor(builder: Builder) {
    open class Builder(internal val stream: Stream) {
        internal var renderer: BaseVideoRenderer? = null
        internal var audio: AudioDataListener? = null

        open fun renderer(renderer: BaseVideoRenderer): Builder = apply { this.renderer = renderer }

        /** Receives the decoded audio (20 ms of 48 kHz mono per call). */
        open fun audioDataListener(l: AudioDataListener): Builder = apply { audio = l }

        open fun build(): SubscriberKit = SubscriberKit(this)
    }

    interface SubscriberListener {
        fun onConnected(subscriber: SubscriberKit)
        fun onDisconnected(subscriber: SubscriberKit)
        /**
         * E.g. [OpentokError.ErrorCode.EncryptionSecretMismatch] once when the stream does not
         * decrypt with this client's secret, [OpentokError.ErrorCode.EncryptionSecretMissing],
         * [OpentokError.ErrorCode.DecryptionInternalError],
         * [OpentokError.ErrorCode.StreamNotEncrypted] (its publisher's app does not encrypt: no
         * secret helps).
         */
        fun onError(subscriber: SubscriberKit, error: OpentokError)
    }

    /** The secret mismatch as it starts (after `onError`) and ends. */
    interface EncryptionListener {
        fun onEncryptionSecretMismatch(subscriber: SubscriberKit)
        fun onEncryptionSecretMatch(subscriber: SubscriberKit)
    }

    fun interface AudioDataListener {
        fun onAudioData(subscriber: SubscriberKit, samples: ShortArray)
    }

    /**
     * What the router forwards of the stream's video in a routed session: the simulcast layer
     * [rid] ("q", "h", "f" from the smallest; null for a stream without simulcast), the highest
     * [temporalLayer] (null: all), or [paused] when no video comes at all.
     */
    data class VideoLayer(val rid: String?, val temporalLayer: Int?, val paused: Boolean)

    /** Umbra's: the vendor's Android SDK reports no layer changes. */
    fun interface VideoLayerListener {
        /** After [setPreferredResolution] and the like, or when the bandwidth changes. */
        fun onVideoLayerChanged(subscriber: SubscriberKit, layer: VideoLayer)
    }

    companion object {
        /** For [setPreferredResolution]: no limit (the default). */
        @JvmField val NO_PREFERRED_RESOLUTION: VideoUtils.Size? = null

        /** For [setPreferredFrameRate]: no limit (the default), as in the vendor's SDK. */
        const val NO_PREFERRED_FRAMERATE: Float = Float.MAX_VALUE
    }

    val stream: Stream = builder.stream
    val renderer: BaseVideoRenderer? = builder.renderer
    @Volatile private var subscriberListener: SubscriberListener? = null
    @Volatile private var encryptionListener: EncryptionListener? = null
    @Volatile private var videoLayerListener: VideoLayerListener? = null
    private val native: NativeSubscriber

    init {
        val audio = builder.audio?.let { l ->
            object : NativeAudioRenderer {
                override fun onAudioData(pcm: ByteArray) {
                    val samples = ShortArray(pcm.size / 2) { i ->
                        ((pcm[2 * i].toInt() and 0xff) or (pcm[2 * i + 1].toInt() shl 8)).toShort()
                    }
                    l.onAudioData(this@SubscriberKit, samples)
                }
            }
        }
        native = try {
            NativeSubscriber(stream.native, Bridge(), renderer?.bridge, audio)
        } catch (e: UmbraException) {
            throw IllegalArgumentException(e.message, e)
        }
    }

    internal fun nativeSubscriber() = native

    fun setSubscriberListener(l: SubscriberListener?) { subscriberListener = l }
    fun setEncryptionListener(l: EncryptionListener?) { encryptionListener = l }
    fun setVideoLayerListener(l: VideoLayerListener?) { videoLayerListener = l }

    /**
     * The largest picture wanted of this stream's video; in a routed session the router forwards
     * the smallest simulcast layer at least this large both ways (or the largest). Before or
     * after subscribing; [NO_PREFERRED_RESOLUTION] (null) for no limit.
     * @throws IllegalArgumentException for a side of 0 or less, or above 16384.
     */
    fun setPreferredResolution(size: VideoUtils.Size?) = checked {
        native.setPreferredResolution(size?.let { VideoSize(it.width.toUIntChecked("width"), it.height.toUIntChecked("height")) })
    }

    fun getPreferredResolution(): VideoUtils.Size? =
        native.preferredResolution()?.let { VideoUtils.Size(it.width.toInt(), it.height.toInt()) }

    /**
     * The most frames per second wanted (fractions round up: 7.5 asks for 8);
     * [NO_PREFERRED_FRAMERATE] for no limit. As [setPreferredResolution].
     * @throws IllegalArgumentException unless above 0 and at most 240.
     */
    fun setPreferredFrameRate(fps: Float) = checked {
        require(!fps.isNaN() && fps > 0f) { "preferred frame rate $fps: it must be above 0 (no preference is NO_PREFERRED_FRAMERATE)" }
        native.setPreferredFrameRate(if (fps == NO_PREFERRED_FRAMERATE) null else ceil(fps).toInt().toUIntChecked("frame rate"))
    }

    fun getPreferredFrameRate(): Float = native.preferredFrameRate()?.toFloat() ?: NO_PREFERRED_FRAMERATE

    /** Whether to receive video at all (default true); audio continues either way. As [setPreferredResolution]. */
    fun setSubscribeToVideo(enabled: Boolean) = checked { native.setSubscribeToVideo(enabled) }

    fun getSubscribeToVideo(): Boolean = native.subscribeToVideo()

    private fun checked(f: () -> Unit) {
        try {
            f()
        } catch (e: UmbraException) {
            throw IllegalArgumentException(e.message, e)
        }
    }

    /** Delivery statistics (Umbra's; zeros when not subscribed). */
    fun getStats(): io.umbra.ffi.SubscriberStats = native.stats()

    /** Frees the native subscriber; unsubscribe first. */
    fun destroy() = native.close()

    internal fun reportError(e: OpentokError) { subscriberListener?.onError(this, e) }

    private inner class Bridge : NativeListener {
        private val subscriber get() = this@SubscriberKit

        override fun onConnected() { subscriberListener?.onConnected(subscriber) }
        override fun onDisconnected() { subscriberListener?.onDisconnected(subscriber) }

        override fun onError(error: ErrorInfo) {
            subscriberListener?.onError(subscriber, OpentokError.of(OpentokError.Domain.SubscriberErrorDomain, error))
        }

        override fun onEncryptionSecretMismatch() { encryptionListener?.onEncryptionSecretMismatch(subscriber) }
        override fun onEncryptionSecretMatch() { encryptionListener?.onEncryptionSecretMatch(subscriber) }

        override fun onVideoLayerChanged(layer: NativeVideoLayer) {
            videoLayerListener?.onVideoLayerChanged(subscriber, VideoLayer(layer.rid, layer.temporalLayer?.toInt(), layer.paused))
        }
    }
}

/** The vendor's `Subscriber`: a [SubscriberKit] (on Android it also owns a view). */
class Subscriber private constructor(builder: Builder) : SubscriberKit(builder) {
    /** Every setter returns this type, so Java's `new Subscriber.Builder(stream)...build()` is a `Subscriber`. */
    class Builder(stream: Stream) : SubscriberKit.Builder(stream) {
        override fun renderer(renderer: BaseVideoRenderer): Builder = apply { super.renderer(renderer) }
        override fun audioDataListener(l: AudioDataListener): Builder = apply { super.audioDataListener(l) }
        override fun build(): Subscriber = Subscriber(this)
    }
}
