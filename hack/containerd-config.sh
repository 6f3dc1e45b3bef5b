#!/bin/sh
# Prints the config of a private containerd for the shim e2e tests (host and v2 guest):
# its own root, state and sockets, no CRI plugin.
#   hack/containerd-config.sh DIR SOCKET > DIR/config.toml
set -eu
cat <<TOML
version = 2
root = "$1/root"
state = "$1/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$2"
[ttrpc]
  address = "$2.ttrpc"
[debug]
  level = "info"
TOML
