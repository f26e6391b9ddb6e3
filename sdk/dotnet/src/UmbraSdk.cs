using System;
using System.Threading;

namespace Umbra
{
    /// <summary>An exception thrown by application code that the SDK called on one of its threads.</summary>
    public sealed class CallbackExceptionEventArgs : EventArgs
    {
        internal CallbackExceptionEventArgs(object source, string callback, Exception exception)
        {
            Source = source;
            Callback = callback;
            Exception = exception;
        }

        /// <summary>The Session, Publisher or Subscriber whose callback threw.</summary>
        public object Source { get; private set; }
        /// <summary>Which handler or interface method threw, e.g. "Session.StreamReceived" or "IVideoRenderer.RenderFrame".</summary>
        public string Callback { get; private set; }
        public Exception Exception { get; private set; }
    }

    /// <summary>Process-wide functions of the SDK.</summary>
    public static class UmbraSdk
    {
        private static readonly object InitLock = new object();
        private static bool initialized;

        /// <summary>
        /// Raised when an event handler or an interface method of the application (capturer,
        /// renderer) throws while the SDK calls it on one of its own threads. The exception never
        /// reaches native code; the SDK goes on. Without a handler it is written to
        /// <see cref="Console.Error"/>. Handlers run on the SDK thread; an exception they throw
        /// is dropped.
        /// </summary>
        public static event EventHandler<CallbackExceptionEventArgs> CallbackException;

        /// <summary>The native SDK's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Utf8.Decode(Native.otc_version()); }
        }

        /// <summary>A description of any error code (the C SDK's <c>otc_error_string</c>).</summary>
        public static string ErrorString(ErrorCode code)
        {
            return Utf8.Decode(Native.otc_error_string((int)code));
        }

        /// <summary>
        /// Calls <c>otc_init</c> once. Every constructor of the SDK calls it; there is no need to
        /// call it yourself, but calling it early surfaces a missing libumbra
        /// (<see cref="DllNotFoundException"/>) at a place of your choosing.
        /// </summary>
        public static void Initialize()
        {
            lock (InitLock)
            {
                if (initialized) return;
                OpenTokException.Check(Native.otc_init(IntPtr.Zero), "otc_init");
                initialized = true;
            }
        }

        /// <summary>
        /// Optional, at the very end, after disposing every Session, Publisher and Subscriber:
        /// calls <c>otc_destroy</c>. The SDK may be initialized again afterwards.
        /// </summary>
        public static void Shutdown()
        {
            lock (InitLock)
            {
                if (!initialized) return;
                OpenTokException.Check(Native.otc_destroy(), "otc_destroy");
                initialized = false;
            }
        }

        internal static void ReportCallbackException(object source, string callback, Exception e)
        {
            try
            {
                var handler = CallbackException;
                if (handler != null)
                {
                    handler(null, new CallbackExceptionEventArgs(source, callback, e));
                }
                else
                {
                    Console.Error.WriteLine("Umbra: " + callback + " threw on an SDK thread: " + e);
                }
            }
            catch
            {
                // Never let anything escape towards native code.
            }
        }
    }

    /// <summary>
    /// What the native callbacks' <c>user_data</c> points at: a number, looked up here. A stale
    /// or unknown number finds nothing (the callback is ignored), so a late callback can never
    /// touch a freed GC handle. The table holds strong references, which keeps an object alive
    /// while native code may call it back; Dispose removes it after the native object is gone.
    /// </summary>
    internal static class Registry
    {
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, object> Objects =
            new System.Collections.Concurrent.ConcurrentDictionary<long, object>();
        private static long next;

        internal static IntPtr Add(object o)
        {
            long id = Interlocked.Increment(ref next);
            Objects[id] = o;
            return new IntPtr(id);
        }

        internal static T Get<T>(IntPtr userData) where T : class
        {
            object o;
            return Objects.TryGetValue(userData.ToInt64(), out o) ? o as T : null;
        }

        internal static void Remove(IntPtr userData)
        {
            object o;
            Objects.TryRemove(userData.ToInt64(), out o);
        }

        internal static int Count
        {
            get { return Objects.Count; }
        }
    }
}
