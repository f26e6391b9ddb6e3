namespace Umbra
{
    /// <summary>
    /// Error codes of the SDK: the values of the C SDK's codes (<c>otc_session_error_code</c>,
    /// <c>otc_publisher_error_code</c>, <c>otc_subscriber_error_code</c> and the <c>OTC_*</c>
    /// status constants in <c>umbra/otc.h</c>), which share one value per meaning. Compare by
    /// name; the numbers are Umbra's. A code a newer libumbra adds arrives as its number
    /// (<c>(ErrorCode)1234</c>); <see cref="UmbraSdk.ErrorString"/> describes any code.
    /// </summary>
    public enum ErrorCode
    {
        /// <summary>No error.</summary>
        Success = 0,

        /// <summary>The server refused the token (expired, forged, for another session, ...).</summary>
        AuthorizationFailure = 1004,
        /// <summary>The session does not exist on the server.</summary>
        InvalidSessionId = 1005,
        /// <summary>The server could not be reached, or the signaling connection failed.</summary>
        ConnectionFailed = 1006,
        /// <summary>The call needs a connected session (C: <c>OTC_SESSION_NOT_CONNECTED</c>, and
        /// <c>OTC_PUBLISHER_SESSION_DISCONNECTED</c> / <c>OTC_SUBSCRIBER_SESSION_DISCONNECTED</c>).</summary>
        NotConnected = 1010,
        /// <summary>A null or invalid argument (C: <c>OTC_INVALID_PARAMETER</c>).</summary>
        NullOrInvalidParameter = 1011,
        /// <summary>Not allowed now, e.g. connecting twice or publishing a published publisher
        /// (C: <c>OTC_ILLEGAL_STATE</c>).</summary>
        IllegalState = 1015,
        /// <summary>The server refused a request of this client.</summary>
        ConnectionRefused = 1023,

        /// <summary>The server refused the stream, or the publisher's settings cannot be published.</summary>
        UnableToPublish = 1500,

        /// <summary>
        /// <see cref="Session.SetEncryptionSecret"/> was given a secret that is not 8 to 256
        /// Unicode characters (thrown as an <see cref="OpenTokException"/>, never raised as an event).
        /// </summary>
        InvalidEncryptionSecret = 1570,
        /// <summary>
        /// Connecting, publishing or subscribing in an end-to-end encrypted session without a
        /// secret: <see cref="Session.Error"/> after connecting (the session stays connected),
        /// <see cref="Publisher.Error"/> / <see cref="Subscriber.Error"/> (and the exception of
        /// <see cref="Session.Publish"/> / <see cref="Session.Subscribe"/>) when publishing or subscribing.
        /// </summary>
        EncryptionSecretMissing = 1571,
        /// <summary>The session uses a cipher suite this SDK does not implement.</summary>
        UnsupportedCipherSuite = 1572,
        /// <summary>
        /// <see cref="Session.Error"/>: an end-to-end encrypted signal could not be decrypted
        /// (docs/e2ee-protocol.md §12); its content is not delivered.
        /// </summary>
        SignalDecryptionFailed = 1573,
        /// <summary>C SDK signal callbacks only: the signal does not authenticate with this secret.</summary>
        SignalEncryptionSecretMismatch = 1574,
        /// <summary>C SDK signal callbacks only: a replayed signal.</summary>
        SignalReplayed = 1575,
        /// <summary>C SDK signal callbacks only: a malformed encrypted signal.</summary>
        SignalDecryptionInternalError = 1576,
        /// <summary><see cref="Publisher.Error"/>: encrypting a frame failed.</summary>
        EncryptionInternalError = 1580,
        /// <summary>
        /// <see cref="Subscriber.Error"/>, once per mismatch: the stream does not decrypt with this
        /// client's secret (the publisher uses another). <see cref="Subscriber.EncryptionSecretMatch"/>
        /// follows when frames decrypt again.
        /// </summary>
        EncryptionSecretMismatch = 1590,
        /// <summary><see cref="Subscriber.Error"/>: a frame failed to decrypt for another reason.</summary>
        DecryptionInternalError = 1591,
        /// <summary>
        /// <see cref="Subscriber.Error"/>, once (then <see cref="Subscriber.StreamNotEncrypted"/>):
        /// the publisher declares end-to-end encryption but sends unencrypted media (its app does
        /// not encrypt). Nothing of it is rendered. Not a mismatch: no secret helps.
        /// <see cref="Subscriber.EncryptionSecretMatch"/> follows if its frames decrypt later.
        /// </summary>
        StreamNotEncrypted = 1592,

        /// <summary>The subscriber's media connection failed.</summary>
        SubscriberWebRtcError = 1600,
        /// <summary>The server refused the subscription.</summary>
        UnableToSubscribe = 1602,
        /// <summary>The stream is not (or no longer) in the session.</summary>
        ServerCannotFindStream = 1604,
        /// <summary>The publisher's media connection failed.</summary>
        PublisherWebRtcError = 1610,

        /// <summary>An unexpected failure inside the SDK (encoder and decoder included).</summary>
        InternalError = 2000,
        /// <summary>
        /// <see cref="Session.Error"/>: the server sent a message this SDK cannot use (one that
        /// does not parse, a type from a newer server, or one out of place). The message is
        /// ignored and the session stays connected.
        /// </summary>
        UnexpectedServerMessage = 2001,
    }
}
