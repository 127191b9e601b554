#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `cpack -G DEB` makes a .deb of the build; it holds the library, headers, CMake and pkg-config
# files, declares its dependencies (each installed on this machine, as `dpkg -i` would require),
# and the find_package consumer builds against its contents and runs.
#
# The package is unpacked with `dpkg -x` into a scratch root rather than installed with `dpkg -i`:
# a test must not change the system it runs on (nor race other jobs for dpkg's lock).
#
#   deb_test.sh BUILD_DIR CONSUMER_SOURCE_DIR VERSION   (env: MPIEXEC, CAIRN_TEST_DIR)
set -euo pipefail
build_dir=$1
source_dir=$2
version=$3
scratch=${CAIRN_TEST_DIR:?}
unset CAIRN_LOG CAIRN_TRACE CAIRN_FAULT_INJECT
fail() { echo "deb_test: FAILED: $*" >&2; exit 1; }
rm -rf "$scratch"
mkdir -p "$scratch/root" "$scratch/data"
(cd "$build_dir" && cpack -G DEB -B "$scratch/pkg" >"$scratch/cpack.log" 2>&1) || { cat "$scratch/cpack.log"; fail "cpack"; }
deb=$(ls "$scratch"/pkg/*.deb)
dpkg-deb --info "$deb"
contents=$(dpkg-deb --contents "$deb")
for f in usr/include/cairn/cairn.hpp usr/include/cairn/version.hpp usr/lib/cmake/cairn/cairnConfig.cmake \
         usr/lib/cmake/cairn/cairnTargets.cmake usr/lib/pkgconfig/cairn.pc "usr/lib/libcairn.so.$version"; do
  grep -q "\./$f\$\|\./$f " <<<"$contents" || fail "the package lacks /$f"
done
[[ $(dpkg-deb --field "$deb" Version) == "$version" ]] || fail "package version is not $version"
depends=$(dpkg-deb --field "$deb" Depends)
echo "Depends: $depends"
for dep in libopenmpi-dev libboost-serialization-dev libhdf5-openmpi; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep"
done
# Every dependency (first alternative, without its version) is installed here.
IFS=',' read -ra deps <<<"$depends"
for dep in "${deps[@]}"; do
  name=$(sed -E 's/^ *([^ |(]+).*/\1/' <<<"$dep")
  dpkg-query -W -f='${Status}\n' "$name" 2>/dev/null | grep -q "install ok installed" ||
    fail "dependency $name is not installed"
done
dpkg -x "$deb" "$scratch/root"
[[ $(PKG_CONFIG_PATH=$scratch/root/usr/lib/pkgconfig pkg-config --modversion cairn) == "$version" ]] ||
  fail "pkg-config --modversion from the unpacked package"
cmake -S "$source_dir" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/root/usr" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"${MPIEXEC:?}" -n 2 --oversubscribe "$scratch/consumer/consumer" "$scratch/data"
test -f "$scratch/data/ckpt-1.h5" || fail "no checkpoint written"
rm -rf "$scratch/root" "$scratch/pkg"
