package io.umbra.android

/** The vendor's `VideoUtils`: here only its `Size`, what [SubscriberKit.setPreferredResolution] takes. */
object VideoUtils {
    /** A picture size in pixels. */
    data class Size(val width: Int, val height: Int)
}
