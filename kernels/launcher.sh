#!/bin/sh
# bpfnb kernel launcher for @USER@, run as root through sudo (see README.md,
# "How the kernel gets its privileges"). Installed by `bpfnb kernelspec install`.
# It takes exactly one argument, a connection file that Jupyter already wrote
# and that @USER@ owns, so the sudo rule grants nothing beyond "start the bpfnb
# kernel of this venv" (and whatever that venv contains: @USER@ can edit it).
set -eu
if [ "$#" -ne 1 ]; then
    echo "usage: $0 CONNECTION_FILE.json" >&2
    exit 64
fi
case "$1" in
    /*.json) ;;
    *) echo "$0: the connection file must be an absolute path ending in .json" >&2; exit 64 ;;
esac
if [ -L "$1" ] || [ ! -f "$1" ] || [ "$(stat -c %u "$1")" != "@UID@" ]; then
    echo "$0: $1 is not a regular file owned by @USER@" >&2
    exit 77
fi
# -B: no root-owned __pycache__ in the user's tree.
exec @PYTHON@ -B -m ipykernel_launcher --ext bpfnb -f "$1"
