using System;

namespace Umbra
{
    /// <summary>
    /// A synchronous failure of an SDK call (the C function returned an error code). Errors that
    /// happen later, on the SDK's threads, arrive as <c>Error</c> events instead.
    /// </summary>
    [Serializable]
    public class OpenTokException : Exception
    {
        /// <summary>What failed.</summary>
        public ErrorCode ErrorCode { get; private set; }

        public OpenTokException(ErrorCode code)
            : this(code, UmbraSdk.ErrorString(code))
        {
        }

        public OpenTokException(ErrorCode code, string message)
            : base(message + " (" + code + ", " + (int)code + ")")
        {
            ErrorCode = code;
        }

        internal static void Check(int status, string what)
        {
            if (status != Native.OTC_SUCCESS)
            {
                var code = (ErrorCode)status;
                throw new OpenTokException(code, what + ": " + UmbraSdk.ErrorString(code));
            }
        }
    }
}
