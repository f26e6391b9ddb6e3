using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: AssemblyTitle("Umbra")]
[assembly: AssemblyDescription("Umbra .NET SDK: the otc_* C API of libumbra for C#, in the shape of the vendor's Windows SDK")]
[assembly: AssemblyVersion("0.1.0.0")]
// The tests check the P/Invoke struct layouts against the C compiler's (Native.CheckedStructs).
[assembly: InternalsVisibleTo("Umbra.Tests")]
