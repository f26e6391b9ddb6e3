#!/usr/bin/env bash
# .NET SDK (sdk/dotnet): builds Umbra.dll and its tests with Mono's C# compiler, and runs them with
# Mono against a real `umbra serve` on loopback and the real libumbra.so: C# publisher and
# subscriber with the same / a different / no / an invalid secret (frames checked by frame number
# and PSNR), events through a SynchronizationContext, and interop with the C SDK's examples.
# Installs mono-mcs and mono-runtime (and gcc, make, python3) with apt-get when missing. About a
# minute. See sdk/dotnet/README.md, "Tests"; the steps are in sdk/dotnet/run-tests.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../../sdk/dotnet/run-tests.sh" "$@"
