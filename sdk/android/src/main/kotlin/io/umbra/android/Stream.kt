package io.umbra.android

/** A participant's connection. */
class Connection internal constructor(
    /** The connection's id. */
    val connectionId: String,
    /** The token's connection data (empty when it has none). */
    val data: String,
) {
    internal constructor(c: io.umbra.ffi.Connection) : this(c.connectionId, c.data)

    override fun equals(other: Any?) = other is Connection && other.connectionId == connectionId
    override fun hashCode() = connectionId.hashCode()
    override fun toString() = "Connection($connectionId)"
}

/**
 * A stream in the session. The object `onStreamReceived` gives stays the same and is updated when
 * its publisher turns audio or video on or off, or reports a new size.
 */
class Stream internal constructor(@Volatile internal var native: io.umbra.ffi.Stream) {
    enum class StreamVideoType { StreamVideoTypeCamera, StreamVideoTypeScreen, StreamVideoTypeCustom }

    val streamId: String get() = native.streamId
    val name: String get() = native.name
    val connection: Connection get() = Connection(native.connection)
    val videoWidth: Int get() = native.videoWidth.toInt()
    val videoHeight: Int get() = native.videoHeight.toInt()
    val streamVideoType: StreamVideoType
        get() = when (native.videoType) {
            "screen" -> StreamVideoType.StreamVideoTypeScreen
            "custom" -> StreamVideoType.StreamVideoTypeCustom
            else -> StreamVideoType.StreamVideoTypeCamera
        }

    fun hasAudio(): Boolean = native.hasAudio
    fun hasVideo(): Boolean = native.hasVideo

    /** Its publisher declares end-to-end encryption. */
    fun isEncrypted(): Boolean = native.e2ee

    override fun equals(other: Any?) = other is Stream && other.streamId == streamId
    override fun hashCode() = streamId.hashCode()
    override fun toString() = "Stream($streamId, \"$name\")"
}
