#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a Python script with the first python3 that has h5py and numpy (the python3 first on PATH
# may lack them, e.g. under pyenv; Debian's /usr/bin/python3 has python3-h5py from scripts/setup).
#   with_h5py.sh SCRIPT ARGS...
for p in "${CAIRN_PYTHON:-}" python3 /usr/bin/python3; do
  if [[ -n "$p" ]] && "$p" -c 'import h5py, numpy' >/dev/null 2>&1; then exec "$p" "$@"; fi
done
echo "FAIL: no python3 with h5py and numpy (scripts/setup installs python3-h5py, python3-numpy)"
exit 1
