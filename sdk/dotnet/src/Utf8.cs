using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Umbra
{
    /// <summary>UTF-8 strings to and from the C API (which takes and returns UTF-8).</summary>
    internal static class Utf8
    {
        private static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>A NUL-terminated UTF-8 copy of <paramref name="s"/>, or null for null.</summary>
        /// <exception cref="ArgumentException">The string holds an unpaired surrogate (not encodable).</exception>
        internal static byte[] Encode(string s)
        {
            if (s == null) return null;
            byte[] bytes;
            try
            {
                bytes = Strict.GetBytes(s);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException("the string is not valid Unicode (unpaired surrogate)", e);
            }
            var z = new byte[bytes.Length + 1];
            Buffer.BlockCopy(bytes, 0, z, 0, bytes.Length);
            return z;
        }

        /// <summary>Reads a NUL-terminated UTF-8 string the SDK owns; null for a NULL pointer.</summary>
        internal static string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            if (n == 0) return string.Empty;
            var bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }
    }
}
