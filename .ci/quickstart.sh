#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# From a fresh clone to a running cortexd: installs the build dependencies
# (.ci/setup.sh), builds a release build in build/, then runs cortexd on a
# workspace: DIR when given, else the directory this script was started
# from -- except the Cortex checkout itself (or a directory in it), which is
# never made a workspace (no .cortex/ in the clone): then cortexd runs on a
# new scratch directory under ${TMPDIR:-/tmp}. cortexd speaks MCP on stdin/stdout; on a
# terminal it says what it is on stderr and waits for messages.
#
#   bash .ci/quickstart.sh [DIR]
#
# Everything before cortexd starts writes to stderr, so the script can also
# be given to an agent as its MCP server command (started in the agent's
# project, that project is the workspace).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -gt 1 ]; then
    echo "usage: bash .ci/quickstart.sh [DIR]" >&2
    exit 2
fi
workspace=${1:-$(pwd)}
workspace=$(cd "$workspace" && pwd -P)
real_root=$(cd "$root" && pwd -P)
case "$workspace/" in
"$real_root"/*) in_checkout=1 ;;
*) in_checkout=0 ;;
esac
if [ "$in_checkout" = 1 ]; then
    workspace=$(mktemp -d "${TMPDIR:-/tmp}/cortex-quickstart.XXXXXX")
    echo "quickstart: not making the Cortex checkout a workspace; cortexd runs on" >&2
    echo "  the scratch workspace $workspace (give a DIR to choose one)" >&2
fi

# Keep stdout for the MCP stream alone: setup and build talk on stderr.
exec 3>&1 1>&2

bash "$root/.ci/setup.sh"

cd "$root"
if [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build --buildtype=release
else
    meson setup build --buildtype=release
fi
ninja -C build

echo "quickstart: built $root/build/sidecar/cortexd; in a repository, set up"
echo "  everything (background sync, agent config, hooks) with:"
echo "  $root/build/sidecar/cortex start --agent claude"
exec "$root/build/sidecar/cortexd" --workspace "$workspace" 1>&3 3>&-
