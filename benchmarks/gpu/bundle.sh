#!/usr/bin/env bash
# The GPU-host bundle for the benchmarks (run here, from the project root, with JDK 25):
#
#   benchmarks/gpu/bundle.sh            -> .gpu/ (then, on the GPU host: benchmarks/gpu/run-gpu.sh PART)
#
# It is the shared bundle (../shared/gpu-host/bundle -Dnolibtorch: every module's jar, dependencies and tests, libtorch
# left out) with one change: its Java runtime also has java.desktop, which the figures need (XChart draws through AWT,
# headless), and two DejaVu fonts with a fontconfig.properties that maps Java's logical fonts to them, since a GPU host
# may have no fonts at all. The runtime image is left uncompressed by jlink and packed with xz -9 instead, which keeps the tarball
# smaller than the shared one's (~24 MB) so that the bundle plus the working tree stay under the 64 MiB a call carries;
# the compute_80.ptx resources (the last fallback after the cubins and NVRTC) and the JMH-only jars are dropped for the
# same reason.
# The launcher unpacks this runtime into its own folder, so a host that still has the shared runtime unpacked uses
# the new one.
set -euo pipefail
ROOT=$(pwd)
[ -f "$ROOT/benchmarks/gpu/run-gpu.sh" ] || { echo "bundle.sh: run me from the project root" >&2; exit 2; }
JDK=${JDK25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
BUNDLE=${BUNDLE:-../shared/gpu-host/bundle}
"$BUNDLE" -Dnolibtorch "$@"
OUTD="$ROOT/.gpu"
MODULES=java.base,java.logging,java.management,java.naming,java.xml,java.sql,jdk.unsupported,jdk.incubator.vector,jdk.management,jdk.jfr,jdk.management.jfr,java.net.http,java.desktop
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 \
    --output "$TMP/jre" 2>/dev/null
# fonts for the figures' text: a GPU host may have none (AWT then fails with "Fontconfig head is null")
FONTS=${DEJAVU_FONTS:-/usr/share/fonts/truetype/dejavu}
[ -f "$FONTS/DejaVuSans.ttf" ] && [ -f "$FONTS/DejaVuSans-Bold.ttf" ] || {
  echo "bundle.sh: no DejaVu fonts in $FONTS (apt-get install fonts-dejavu-core, or set DEJAVU_FONTS)" >&2; exit 2; }
mkdir -p "$TMP/jre/lib/fonts"
cp "$FONTS/DejaVuSans.ttf" "$FONTS/DejaVuSans-Bold.ttf" "$TMP/jre/lib/fonts/"
cp "$ROOT/benchmarks/gpu/fontconfig.properties" "$TMP/jre/lib/fontconfig.properties"
XZ_OPT=-9 tar -C "$TMP" -cJf "$OUTD/jre.tar.xz" jre
sed -i 's|^JRE=/tmp/gpu-host-jre$|JRE=/tmp/gpu-host-jre-desktop|' "$OUTD/run"
grep -q '^JRE=/tmp/gpu-host-jre-desktop$' "$OUTD/run" || { echo "bundle.sh: the shared launcher changed; set its JRE folder by hand" >&2; exit 1; }
rm -f "$OUTD"/lib/{byte-buddy,jmh-core,commons-math3,jopt-simple}-*.jar
python3 - "$OUTD" <<'PY'
import glob, os, sys, zipfile
for jar in glob.glob(sys.argv[1] + "/lib/sdpa4j-*.jar"):
    with zipfile.ZipFile(jar) as z:
        if not any(n.endswith(".ptx") for n in z.namelist()):
            continue
        with zipfile.ZipFile(jar + ".tmp", "w", zipfile.ZIP_DEFLATED) as out:
            for info in z.infolist():
                if not info.filename.endswith(".ptx"):
                    out.writestr(info, z.read(info.filename))
    os.replace(jar + ".tmp", jar)
PY
echo "bundle.sh: .gpu is $(du -sm "$OUTD" | cut -f1) MiB (runtime with java.desktop)" >&2
