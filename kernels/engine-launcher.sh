#!/bin/sh
# bpfnb cluster engine launcher for @USER@, run as root through sudo (see README.md,
# "Clusters"). Installed by `bpfnb cluster setup --user @USER@`. It takes no
# argument: ipyparallel's launchers say where the cluster's connection files are
# in IPP_PROFILE_DIR, IPP_CLUSTER_ID or IPP_CONNECTION_INFO, the only variables
# the sudoers rule keeps. So the rule grants nothing beyond "start an ipyparallel
# engine of this venv for a profile @USER@ owns" (and whatever that venv and that
# profile's configuration contain: @USER@ can edit them).
set -eu
if [ "$#" -ne 0 ]; then
    echo "usage: $0 (no arguments; ipyparallel passes the cluster in IPP_* variables)" >&2
    exit 64
fi
if [ -n "${IPP_PROFILE_DIR:-}" ]; then
    case "$IPP_PROFILE_DIR" in
        /*) ;;
        *) IPP_PROFILE_DIR="$(getent passwd @USER@ | cut -d: -f6)/$IPP_PROFILE_DIR" ;;
    esac
    if [ -L "$IPP_PROFILE_DIR" ] || [ ! -d "$IPP_PROFILE_DIR" ] || [ "$(stat -c %u "$IPP_PROFILE_DIR")" != "@UID@" ]; then
        echo "$0: $IPP_PROFILE_DIR is not a directory owned by @USER@" >&2
        exit 77
    fi
    export IPP_PROFILE_DIR
fi
# -B: no root-owned __pycache__ in the user's tree.
exec @PYTHON@ -B -m ipyparallel.engine
