#!/usr/bin/env bash
# Build the offline base image with no registry: a minimal Debian made by debootstrap, imported into
# the local Docker engine. It carries python3 + venv and Debian's libpython3.11, which the python
# backend stub needs (without it the server hangs with the model in LOADING).
#   usage: build-base.sh TAG [SUITE] [MIRROR]      (as root; needs debootstrap and a running dockerd)
set -euo pipefail
tag=${1:?usage: build-base.sh TAG [SUITE] [MIRROR]}
suite=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || { echo "debootstrap is not installed: apt-get install -y debootstrap" >&2; exit 2; }
root=$(mktemp -d /tmp/triton-matrix-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,libpython3.11,ca-certificates \
  "$suite" "$root" "$mirror" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'LABEL org.triton-matrix.base=debootstrap' - "$tag" >&2
echo "$tag"
