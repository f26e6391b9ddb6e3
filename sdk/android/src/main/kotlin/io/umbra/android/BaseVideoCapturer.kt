package io.umbra.android

import io.umbra.ffi.FrameSink
import io.umbra.ffi.UmbraException
import java.nio.ByteBuffer
import io.umbra.ffi.CaptureSettings as NativeSettings
import io.umbra.ffi.VideoCapturer as NativeCapturer
import io.umbra.ffi.VideoFrame as NativeFrame

/**
 * A video source the app implements, in the shape of the vendor's `BaseVideoCapturer` (a
 * Camera2 capturer on Android; a file, a screen or a test pattern here). The SDK calls [init] when
 * the publisher is built, [getCaptureSettings] and [startCapture] inside `Session.publish`,
 * [stopCapture] on unpublish, on disconnect or when the stream ends, [destroy] from
 * `PublisherKit.destroy`. Between start and stop, hand pictures over with
 * [provideByteArrayFrame] or [provideBufferFramePlanar] from any thread; the encoder takes the
 * latest one at the capture rate.
 */
abstract class BaseVideoCapturer {
    class CaptureSettings {
        @JvmField var width: Int = 320
        @JvmField var height: Int = 240
        @JvmField var fps: Int = 30
        /** Only [I420]. */
        @JvmField var format: Int = I420
        @JvmField var expectedDelay: Int = 0
    }

    companion object {
        /** Planar YUV 4:2:0, the one format this SDK takes. */
        const val I420 = 0
    }

    @Volatile private var sink: FrameSink? = null

    abstract fun init()
    /** Returns 0 when capture started. */
    abstract fun startCapture(): Int
    abstract fun stopCapture(): Int
    abstract fun destroy()
    abstract fun isCaptureStarted(): Boolean
    abstract fun getCaptureSettings(): CaptureSettings
    open fun onPause() {}
    open fun onResume() {}

    /**
     * Hands over a tightly packed I420 picture of the capture settings' size (copied). Before
     * start or after stop the picture is dropped and this returns false.
     * @throws IllegalArgumentException for another format, a rotation, mirroring, or a picture
     * whose size or length does not match.
     */
    protected fun provideByteArrayFrame(data: ByteArray, format: Int, width: Int, height: Int, rotation: Int, mirrorX: Boolean): Boolean {
        require(format == I420) { "format $format: only BaseVideoCapturer.I420 is supported" }
        require(rotation == 0 && !mirrorX) { "rotation $rotation / mirrorX $mirrorX: rotate and mirror before providing" }
        require(width > 0 && height > 0) { "a picture of ${width}x$height" }
        val s = sink ?: return false
        try {
            s.provideFrame(NativeFrame(width.toUInt(), height.toUInt(), data))
        } catch (e: UmbraException) {
            throw IllegalArgumentException(e.message, e)
        }
        return true
    }

    /** As [provideByteArrayFrame], from three planes with their strides. */
    protected fun provideBufferFramePlanar(
        y: ByteBuffer, u: ByteBuffer, v: ByteBuffer,
        yStride: Int, uStride: Int, vStride: Int,
        width: Int, height: Int, rotation: Int, mirrorX: Boolean,
    ): Boolean {
        require(width > 0 && height > 0) { "a picture of ${width}x$height" }
        val cw = (width + 1) / 2
        val ch = (height + 1) / 2
        require(yStride >= width && uStride >= cw && vStride >= cw) { "strides $yStride/$uStride/$vStride are narrower than the picture" }
        val out = ByteArray(width * height + 2 * cw * ch)
        fun copy(src: ByteBuffer, stride: Int, w: Int, h: Int, at: Int) {
            require(src.limit() >= stride * (h - 1) + w) { "a plane of ${src.limit()} bytes is too short for ${w}x$h at stride $stride" }
            val b = src.duplicate()
            for (row in 0 until h) {
                b.position(row * stride)
                b.get(out, at + row * w, w)
            }
        }
        copy(y, yStride, width, height, 0)
        copy(u, uStride, cw, ch, width * height)
        copy(v, vStride, cw, ch, width * height + cw * ch)
        return provideByteArrayFrame(out, I420, width, height, rotation, mirrorX)
    }

    internal val bridge: NativeCapturer = object : NativeCapturer {
        override fun captureSettings(): NativeSettings {
            val s = getCaptureSettings()
            require(s.format == I420) { "capture format ${s.format}: only I420" }
            return NativeSettings(s.width.toUIntChecked("width"), s.height.toUIntChecked("height"), s.fps.toUIntChecked("fps"))
        }

        override fun startCapture(sink: FrameSink): Boolean {
            this@BaseVideoCapturer.sink = sink
            val ok = this@BaseVideoCapturer.startCapture() == 0
            if (!ok) this@BaseVideoCapturer.sink = null
            return ok
        }

        override fun stopCapture() {
            this@BaseVideoCapturer.sink = null
            this@BaseVideoCapturer.stopCapture()
        }
    }
}
