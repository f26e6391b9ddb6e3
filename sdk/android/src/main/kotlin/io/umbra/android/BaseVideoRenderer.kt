package io.umbra.android

import java.nio.ByteBuffer
import io.umbra.ffi.VideoFrame as NativeFrame
import io.umbra.ffi.VideoRenderer as NativeRenderer

/**
 * Receives a subscriber's decoded pictures, in the shape of the vendor's `BaseVideoRenderer` (a
 * GL view on Android; a file, a checker or a window elsewhere). [onFrame] runs on the session's
 * dispatch thread; the frame is the renderer's to keep.
 */
abstract class BaseVideoRenderer {
    /** A decoded I420 picture, tightly packed (strides equal the plane widths). */
    class Frame internal constructor(
        val width: Int,
        val height: Int,
        /** The whole picture: Y, then U, then V. */
        val buffer: ByteArray,
    ) {
        val yStride: Int get() = width
        val uvStride: Int get() = (width + 1) / 2
        private val chromaSize get() = uvStride * ((height + 1) / 2)

        val yplane: ByteBuffer get() = ByteBuffer.wrap(buffer, 0, width * height).slice()
        val uplane: ByteBuffer get() = ByteBuffer.wrap(buffer, width * height, chromaSize).slice()
        val vplane: ByteBuffer get() = ByteBuffer.wrap(buffer, width * height + chromaSize, chromaSize).slice()

        /** Pictures arrive the right way round. */
        fun isMirroredX(): Boolean = false

        /** The SDK's `Frame.recycle()`: nothing to give back here (the array is the app's). */
        fun recycle() {}
    }

    abstract fun onFrame(frame: Frame)
    open fun setStyle(key: String, value: String) {}
    open fun onVideoPropertiesChanged(videoEnabled: Boolean) {}
    open fun onPause() {}
    open fun onResume() {}

    internal val bridge: NativeRenderer = object : NativeRenderer {
        override fun onFrame(frame: NativeFrame) {
            onFrame(Frame(frame.width.toInt(), frame.height.toInt(), frame.data))
        }
    }
}
