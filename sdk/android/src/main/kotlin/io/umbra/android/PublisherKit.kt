package io.umbra.android

import io.umbra.ffi.AudioSourceKind
import io.umbra.ffi.ErrorInfo
import io.umbra.ffi.PublishOptions
import io.umbra.ffi.PublisherSettings
import io.umbra.ffi.UmbraException
import io.umbra.ffi.VideoSourceKind
import io.umbra.ffi.Publisher as NativePublisher
import io.umbra.ffi.PublisherListener as NativeListener
import io.umbra.ffi.Stream as NativeStream

/**
 * What a session publishes, in the shape of the vendor's `PublisherKit`: video from the app's
 * [BaseVideoCapturer] (or, without one, the built-in test pattern), audio from the built-in tone
 * or from PCM the app writes ([writeAudio]). Every frame is end-to-end encrypted in an E2EE
 * session (the session's secret).
 */
open class PublisherKit protected constructor(builder: Builder) {
    /** Video codecs a publisher can encode with; subscribers decode whichever a stream carries. */
    enum class VideoCodec(internal val native: io.umbra.ffi.VideoCodec) {
        /** libvpx; every WebRTC endpoint decodes it. */
        VP8(io.umbra.ffi.VideoCodec.VP8),
        /** libvpx, profile 0; Chromium and Firefox decode it. */
        VP9(io.umbra.ffi.VideoCodec.VP9),
        /** OpenH264, constrained baseline; Chromium decodes it. */
        H264(io.umbra.ffi.VideoCodec.H264),
    }

    open class Builder {
        internal var name: String = ""
        internal var capturer: BaseVideoCapturer? = null
        internal var videoTrack = true
        internal var audioTrack = true
        internal var externalAudio = false
        internal var toneHz = 440.0
        internal var pattern = Triple(320, 240, 30)
        internal var bitrateKbps = 800
        internal var codec = VideoCodec.VP8
        internal var simulcast = true
        internal var audioLevel = true

        open fun name(name: String): Builder = apply { this.name = name }

        /** The app's video source; without one the built-in test pattern is sent. */
        open fun capturer(capturer: BaseVideoCapturer): Builder = apply { this.capturer = capturer }

        open fun videoTrack(enabled: Boolean): Builder = apply { videoTrack = enabled }
        open fun audioTrack(enabled: Boolean): Builder = apply { audioTrack = enabled }

        /** Audio comes from [PublisherKit.writeAudio] instead of the built-in tone. */
        open fun externalAudio(enabled: Boolean): Builder = apply { externalAudio = enabled }

        /** The built-in tone's frequency (default 440 Hz). */
        open fun toneFrequency(hz: Double): Builder = apply { toneHz = hz }

        /** Size and rate of the built-in test pattern (default 320x240 at 30 fps). */
        open fun testPattern(width: Int, height: Int, fps: Int): Builder = apply { pattern = Triple(width, height, fps) }

        open fun videoBitrateKbps(kbps: Int): Builder = apply { bitrateKbps = kbps }

        /** The codec the video is encoded with (OpenTok's preferred video codec; default VP8). */
        open fun preferredVideoCodec(codec: VideoCodec): Builder = apply { this.codec = codec }

        /**
         * Up to three simulcast layers (full, half, quarter size) in routed sessions, so each
         * subscriber can be sent the size it asks for (default true; VP8 pictures of 270 lines or more).
         */
        open fun simulcast(enabled: Boolean): Builder = apply { simulcast = enabled }

        /**
         * Send the level of each audio frame for active-speaker detection (default true). Levels
         * travel in clear, outside end-to-end encryption: the router sees how loudly you speak.
         * False keeps that private, and this publisher is never named active speaker.
         */
        open fun audioLevel(enabled: Boolean): Builder = apply { audioLevel = enabled }

        open fun build(): PublisherKit = PublisherKit(this)
    }

    interface PublisherListener {
        fun onStreamCreated(publisher: PublisherKit, stream: Stream)
        fun onStreamDestroyed(publisher: PublisherKit, stream: Stream)
        /**
         * E.g. [OpentokError.ErrorCode.EncryptionSecretMissing] when publishing in an end-to-end
         * encrypted session without a secret, [OpentokError.ErrorCode.EncryptionInternalError].
         */
        fun onError(publisher: PublisherKit, error: OpentokError)
    }

    interface MuteListener {
        /** A moderator muted this publisher's audio; `setPublishAudio(true)` unmutes. */
        fun onMuteForced(publisher: PublisherKit)
    }

    @Volatile private var publisherListener: PublisherListener? = null
    @Volatile private var muteListener: MuteListener? = null
    @Volatile internal var session: Session? = null
    @Volatile private var stream: Stream? = null
    val name: String = builder.name
    val capturer: BaseVideoCapturer? = builder.capturer
    internal val publishOptions = PublishOptions(builder.simulcast, builder.audioLevel)
    private val native: NativePublisher

    init {
        val (w, h, fps) = builder.pattern
        val video = when {
            !builder.videoTrack -> VideoSourceKind.None
            builder.capturer != null -> VideoSourceKind.Capturer
            else -> VideoSourceKind.TestPattern(w.toUIntChecked("width"), h.toUIntChecked("height"), fps.toUIntChecked("fps"))
        }
        val audio = when {
            !builder.audioTrack -> AudioSourceKind.None
            builder.externalAudio -> AudioSourceKind.External
            else -> AudioSourceKind.Tone(builder.toneHz)
        }
        val capturerBridge = builder.capturer?.takeIf { builder.videoTrack }?.also { it.init() }?.bridge
        native = try {
            NativePublisher(
                PublisherSettings(builder.name, video, audio, builder.bitrateKbps.toUIntChecked("bitrate"), builder.codec.native),
                capturerBridge,
                Bridge(),
            )
        } catch (e: UmbraException) {
            throw IllegalArgumentException(e.message, e)
        }
    }

    internal fun nativePublisher() = native

    fun setPublisherListener(l: PublisherListener?) { publisherListener = l }
    fun setMuteListener(l: MuteListener?) { muteListener = l }

    /** Its stream once the server accepted it. */
    fun getStream(): Stream? = stream

    fun getSession(): Session? = session

    fun setPublishAudio(enabled: Boolean) = flag { native.setPublishAudio(enabled) }
    fun setPublishVideo(enabled: Boolean) = flag { native.setPublishVideo(enabled) }
    fun getPublishAudio(): Boolean = native.publishAudio()
    fun getPublishVideo(): Boolean = native.publishVideo()

    /**
     * Audio for a publisher built with `externalAudio(true)`: 48 kHz mono samples, any count.
     * The encoder takes 20 ms at a time; at most one second waits (the oldest samples are dropped).
     * @throws IllegalStateException when this publisher's audio is not external.
     */
    fun writeAudio(samples: ShortArray) {
        val bytes = ByteArray(samples.size * 2)
        for (i in samples.indices) {
            val s = samples[i].toInt()
            bytes[2 * i] = s.toByte()
            bytes[2 * i + 1] = (s shr 8).toByte()
        }
        try {
            native.writeAudio(bytes)
        } catch (e: UmbraException) {
            throw IllegalStateException(e.message, e)
        }
    }

    /** Frees the native publisher; unpublish first. */
    fun destroy() {
        capturer?.destroy()
        native.close()
    }

    private fun flag(f: () -> Unit) {
        try {
            f()
        } catch (e: UmbraException) {
            reportError(OpentokError.of(OpentokError.Domain.PublisherErrorDomain, e))
        }
    }

    internal fun reportError(e: OpentokError) { publisherListener?.onError(this, e) }

    private inner class Bridge : NativeListener {
        private val publisher get() = this@PublisherKit

        override fun onStreamCreated(stream: NativeStream) {
            val s = Stream(stream)
            publisher.stream = s
            publisherListener?.onStreamCreated(publisher, s)
        }

        override fun onStreamDestroyed(stream: NativeStream) {
            val s = publisher.stream?.takeIf { it.streamId == stream.streamId } ?: Stream(stream)
            publisher.stream = null
            publisherListener?.onStreamDestroyed(publisher, s)
        }

        override fun onError(error: ErrorInfo) {
            publisherListener?.onError(publisher, OpentokError.of(OpentokError.Domain.PublisherErrorDomain, error))
        }

        override fun onMuteForced() { muteListener?.onMuteForced(publisher) }
    }
}

/** The vendor's `Publisher`: a [PublisherKit] (on Android it also owns the camera and a view). */
class Publisher private constructor(builder: Builder) : PublisherKit(builder) {
    /** Every setter returns this type, so Java's `new Publisher.Builder().name(..).build()` is a `Publisher`. */
    class Builder : PublisherKit.Builder() {
        override fun name(name: String): Builder = apply { super.name(name) }
        override fun capturer(capturer: BaseVideoCapturer): Builder = apply { super.capturer(capturer) }
        override fun videoTrack(enabled: Boolean): Builder = apply { super.videoTrack(enabled) }
        override fun audioTrack(enabled: Boolean): Builder = apply { super.audioTrack(enabled) }
        override fun externalAudio(enabled: Boolean): Builder = apply { super.externalAudio(enabled) }
        override fun toneFrequency(hz: Double): Builder = apply { super.toneFrequency(hz) }
        override fun testPattern(width: Int, height: Int, fps: Int): Builder = apply { super.testPattern(width, height, fps) }
        override fun videoBitrateKbps(kbps: Int): Builder = apply { super.videoBitrateKbps(kbps) }
        override fun preferredVideoCodec(codec: PublisherKit.VideoCodec): Builder = apply { super.preferredVideoCodec(codec) }
        override fun simulcast(enabled: Boolean): Builder = apply { super.simulcast(enabled) }
        override fun audioLevel(enabled: Boolean): Builder = apply { super.audioLevel(enabled) }
        override fun build(): Publisher = Publisher(this)
    }
}

internal fun Int.toUIntChecked(what: String): UInt {
    require(this >= 0) { "$what must not be negative ($this)" }
    return toUInt()
}
