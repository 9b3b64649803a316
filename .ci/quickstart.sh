#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# From a fresh clone to a running cortexd: installs the build dependencies
# (.ci/setup.sh), builds a release build in build/, then runs cortexd on the
# directory this script was started from. cortexd speaks MCP on stdin/stdout;
# on a terminal it says what it is on stderr and waits for messages.
#
#   bash .ci/quickstart.sh
#
# Everything before cortexd starts writes to stderr, so the script can also
# be given to an agent as its MCP server command.
set -euo pipefail

workspace=$(pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

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
