package io.umbra.android

import io.umbra.ffi.ErrorInfo
import io.umbra.ffi.UmbraException
import io.umbra.ffi.errorCodeValue
import io.umbra.ffi.ErrorCode as NativeCode

/**
 * An error reported to a listener, in the shape of the vendor's `OpentokError`: a domain (which
 * kind of object reported it), a code and a message.
 */
class OpentokError(
    val errorDomain: Domain,
    val errorCode: ErrorCode,
    override val message: String,
) : Exception(message) {
    enum class Domain { SessionErrorDomain, PublisherErrorDomain, SubscriberErrorDomain }

    /**
     * The codes, with the C SDK's numeric values (`errorCode.errorCode`). The end-to-end
     * encryption ones keep the product's names.
     */
    enum class ErrorCode(val errorCode: Int) {
        AuthorizationFailure(1004),
        InvalidSessionId(1005),
        ConnectionFailed(1006),
        NotConnected(1010),
        InvalidParameter(1011),
        IllegalState(1015),
        ConnectionRefused(1023),
        PublisherUnableToPublish(1500),
        InvalidEncryptionSecret(1570),
        EncryptionSecretMissing(1571),
        UnsupportedCipherSuite(1572),
        EncryptionInternalError(1580),
        EncryptionSecretMismatch(1590),
        DecryptionInternalError(1591),
        StreamNotEncrypted(1592),
        SubscriberWebRTCError(1600),
        SubscriberUnableToSubscribe(1602),
        SubscriberServerCannotFindStream(1604),
        PublisherWebRTCError(1610),
        InternalError(2000),
        UnexpectedServerMessage(2001),
        UnknownError(-1);

        companion object {
            @JvmStatic
            fun fromValue(value: Int): ErrorCode = values().firstOrNull { it.errorCode == value } ?: UnknownError
        }
    }

    override fun toString(): String = "OpentokError($errorDomain, $errorCode ${errorCode.errorCode}: $message)"

    internal companion object {
        // Through the binding's numeric value, so the two enums cannot drift apart by name.
        fun code(native: NativeCode): ErrorCode = ErrorCode.fromValue(errorCodeValue(native))

        fun of(domain: Domain, info: ErrorInfo) = OpentokError(domain, code(info.code), info.message)

        fun of(domain: Domain, e: UmbraException): OpentokError {
            val code = when (e) {
                is UmbraException.InvalidEncryptionSecret -> NativeCode.INVALID_ENCRYPTION_SECRET
                is UmbraException.EncryptionSecretMissing -> NativeCode.ENCRYPTION_SECRET_MISSING
                is UmbraException.NotConnected -> NativeCode.NOT_CONNECTED
                is UmbraException.IllegalState -> NativeCode.ILLEGAL_STATE
                is UmbraException.InvalidParameter -> NativeCode.INVALID_PARAMETER
                is UmbraException.StreamNotFound -> NativeCode.STREAM_NOT_FOUND
                is UmbraException.ConnectionFailed -> NativeCode.CONNECTION_FAILED
                is UmbraException.UnableToPublish -> NativeCode.UNABLE_TO_PUBLISH
                is UmbraException.Internal -> NativeCode.INTERNAL_ERROR
            }
            return OpentokError(domain, code(code), e.message ?: e.toString())
        }
    }
}
