#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layering rules of docs/design.md that a compiler does not enforce, checked on the sources:
#   - inspect goes through storage: no HDF5 call, type or header in src/inspect, and no header of
#     checkpoint or manager (the layers it must not depend on);
#   - storage takes its options from its own structs: no comm/session, Session, SessionOptions or
#     IoMode in src/storage, no StateScope, no header of a layer above it;
#   - the container's names live in src/storage/schema.hpp: no other source spells them.
# Usage: check_layering.sh <repository root>   exits 1 listing every violation
#        check_layering.sh --self-test          plants one violation per rule in a scratch tree
#                                               and checks that each is caught, and that a clean
#                                               tree passes
set -uo pipefail

# Each rule: directory (relative to the root), extended regex, what it forbids.
rules=(
  "src/inspect|(^|[^A-Za-z0-9_])H5[A-Z][A-Za-z0-9_]*|an HDF5 call or constant (read through src/storage)"
  "src/inspect|(^|[^A-Za-z0-9_])(hid_t|herr_t|htri_t|hsize_t|haddr_t)([^A-Za-z0-9_]|$)|h5::|an HDF5 type or storage's HDF5 wrappers"
  "src/inspect|#include[[:space:]]*[<\"](hdf5\\.h|H5[A-Za-z]*\\.h|storage/h5_)|an HDF5 header"
  "src/inspect|#include[[:space:]]*\"(cairn/)?(checkpoint|manager)/|a checkpoint or manager header"
  "src/storage|#include[[:space:]]*\"(cairn/)?comm/session|comm/session"
  "src/storage|(^|[^A-Za-z0-9_])(IoMode|SessionOptions|Session)([^A-Za-z0-9_]|$)|the session or its options (storage has its own option structs)"
  "src/storage|StateScope|the state layer's StateScope (the manifest has SavedScope)"
  "src/storage|#include[[:space:]]*\"(cairn/)?(state|checkpoint|manager|inspect)/|a header of a layer above storage"
  "src include tools|\"(/cairn[/\"]|/tensors/|cairn_commit\"|cairn_format\"|cairn-state\\.json\")|a container name outside src/storage/schema.hpp"
)
# The one place each name is spelled, and the public state file name (static_asserted equal).
allowed=("src/storage/schema.hpp" "include/cairn/checkpoint/checkpoint.hpp")

# Prints every violation under $1; returns the number found (capped at 255).
check_tree() {
  local root=$1 found=0 rule dirs regex what dir hits
  for rule in "${rules[@]}"; do
    dirs=${rule%%|*}
    what=${rule##*|}
    regex=${rule#*|}
    regex=${regex%|*}
    for dir in $dirs; do
      [[ -d $root/$dir ]] || continue
      hits=$(cd "$root" && grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' \
        "$regex" "$dir" | grep -vE "^($(IFS='|'; echo "${allowed[*]}")):")
      if [[ -n $hits ]]; then
        while IFS= read -r line; do
          echo "layering: $what: $line"
          found=$((found + 1))
        done <<<"$hits"
      fi
    done
  done
  return $((found > 255 ? 255 : found))
}

self_test() {
  local scratch failures=0 i rule dir what
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  # One violating line per rule, in rule order.
  local planted=(
    "src/inspect/a.cpp|  h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));"
    "src/inspect/b.cpp|  hid_t id = -1;"
    "src/inspect/c.cpp|#include \"storage/h5_handle.hpp\""
    "src/inspect/d.cpp|#include \"checkpoint/state_file.hpp\""
    "src/storage/e.hpp|#include \"cairn/comm/session.hpp\""
    "src/storage/f.cpp|  if (mode == IoMode::kCollective) return;"
    "src/storage/g.hpp|  StateScope scope = StateScope::kPerRank;"
    "src/storage/h.cpp|#include \"cairn/state/state.hpp\""
    "src/checkpoint/i.cpp|  writer.create_byte_dataset(\"/cairn/packed\", bytes);"
  )
  mkdir -p "$scratch/clean/src/inspect" "$scratch/clean/src/storage"
  printf '%s\n' '#include "storage/container_probe.hpp"' 'enum class Format { kSafetensors, kH5 };' \
    'cairn::detail::PlainH5Writer writer(file);' >"$scratch/clean/src/inspect/ok.cpp"
  printf '%s\n' '#include "cairn/comm/comm.hpp"' 'struct WriterOptions { bool collective = false; };' \
    >"$scratch/clean/src/storage/ok.hpp"
  if ! check_tree "$scratch/clean" >/dev/null; then
    echo "self-test: a clean tree was flagged"
    failures=$((failures + 1))
  fi
  for i in "${!planted[@]}"; do
    rule=${rules[$i]}
    what=${rule##*|}
    dir="$scratch/tree$i"
    mkdir -p "$dir/$(dirname "${planted[$i]%%|*}")"
    echo "${planted[$i]#*|}" >"$dir/${planted[$i]%%|*}"
    local out
    out=$(check_tree "$dir")
    if [[ $? -eq 0 || $out != *"$what"* ]]; then
      echo "self-test: rule '$what' did not catch: ${planted[$i]#*|}"
      failures=$((failures + 1))
    fi
  done
  if [[ ${#planted[@]} -ne ${#rules[@]} ]]; then
    echo "self-test: ${#rules[@]} rules but ${#planted[@]} planted violations"
    failures=$((failures + 1))
  fi
  echo "self-test: ${#rules[@]} rules, $failures failures"
  return $((failures > 0))
}

if [[ ${1:-} == --self-test ]]; then
  self_test
  exit $?
fi
root=${1:?usage: check_layering.sh <repository root> | --self-test}
check_tree "$root"
count=$?
if [[ $count -ne 0 ]]; then
  echo "layering: $count violation(s); see docs/design.md, Layers as built"
  exit 1
fi
echo "layering: ${#rules[@]} rules, no violation"
