#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Open MPI's "remote shell" for the two-host test (netns_test.sh): instead of ssh, runs the daemon
# launch command inside the network namespace that plays the host named by its address.
#
#   netns_rsh.sh HOST COMMAND...     (env: CAIRN_MH_HOSTS="addr=netns addr=netns ...")
#
# Open MPI's rsh launcher passes a command line meant for a remote login shell (PATH=...; export
# PATH; ... orted ...), so it is given to sh -c, as sshd would. The environment is inherited, as if
# the "hosts" shared a login profile: OMPI_ALLOW_RUN_AS_ROOT and the fault-injection variables.
# Each host also gets its own UTS namespace and host name, so Open MPI sees two distinct node names.
set -euo pipefail
host="${1:?usage: netns_rsh.sh HOST COMMAND...}"
shift
ns=
for pair in ${CAIRN_MH_HOSTS:?CAIRN_MH_HOSTS must map addresses to namespaces}; do
  if [[ "${pair%%=*}" == "$host" ]]; then ns="${pair#*=}"; fi
done
if [[ -z "$ns" ]]; then
  echo "netns_rsh.sh: no namespace for host '$host' in CAIRN_MH_HOSTS='$CAIRN_MH_HOSTS'" >&2
  exit 255 # what ssh returns when it cannot reach the host
fi
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$ns" "$*"
