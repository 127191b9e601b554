#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Repository-wide conventions a compiler does not check:
#   - every C++ source and header is formatted by the repository's .clang-format;
#   - every source, header, script and CMake file carries an SPDX-License-Identifier line near its
#     top (test data, fuzz corpora and generated files excepted).
# Usage: check_style.sh <repository root> [clang-format binary]   exits 1 listing every violation
set -uo pipefail
root=${1:?usage: check_style.sh <repository root> [clang-format]}
clang_format=${2:-clang-format}
cd "$root" || exit 2

# Tracked files when this is a git checkout; otherwise (a source tarball) every file.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files)
else
  mapfile -t files < <(find . -type f -not -path './build*' -not -path './.git/*' | sed 's|^\./||')
fi

bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  case "$f" in
    tests/golden/*.h5 | tests/golden/*.json | fuzz/*/corpus/* | fuzz/*/seeds/* | fuzz/*/regressions/*) continue ;;
  esac
  case "$f" in
    *.cpp | *.hpp | *.h | *.cc)
      if ! "$clang_format" --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "style: $f is not formatted by .clang-format (run: clang-format -i $f)"
        bad=$((bad + 1))
      fi
      need_spdx=1 ;;
    *.sh | *.py | *.cmake | *.sbatch | *.in | CMakeLists.txt | */CMakeLists.txt) need_spdx=1 ;;
    *) need_spdx=0
       # extension-less scripts (scripts/*, .ci/run)
       if [[ "$(basename "$f")" != *.* ]] && head -c 2 "$f" | grep -q '#!'; then need_spdx=1; fi ;;
  esac
  if [ "$need_spdx" = 1 ] && ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    echo "style: $f has no 'SPDX-License-Identifier: Apache-2.0' line in its first 3 lines"
    bad=$((bad + 1))
  fi
done
echo "style: ${#files[@]} files checked, $bad problems"
[ "$bad" -eq 0 ]
