#!/bin/sh
# Builds the SDK (netstandard2.0 sources, compiled here with Debian's Mono) and runs its tests
# against a real `laurel serve` (LAUREL_BIN). Needs mono-mcs, mono-runtime,
# libmono-system-net-http4.0-cil and libnunit-cil-dev (.ci/run installs them).
set -eu
cd "$(dirname "$0")"
mkdir -p bin
nunit=/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll
mcs -nologo -warnaserror -target:library -r:System.Net.Http.dll -out:bin/Laurel.dll src/*.cs
mcs -nologo -target:exe -r:System.Net.Http.dll -r:bin/Laurel.dll -r:"$nunit" -out:bin/Laurel.Tests.exe tests/*.cs
cp "$nunit" bin/
mono bin/Laurel.Tests.exe "$@"
