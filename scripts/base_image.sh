#!/usr/bin/env bash
# Makes the container base image the Dockerfile's test builds on, from Debian's packages only:
# debootstrap (minbase, bookworm) with Python 3.11 and its venv module, imported into buildah's
# storage as localhost/hostpulse-base:bookworm. Nothing is pulled from a container registry.
# Idempotent: exits at once when the image exists. Usage: bash scripts/base_image.sh [MIRROR]
set -euo pipefail
IMAGE=localhost/hostpulse-base:bookworm
MIRROR=${1:-http://deb.debian.org/debian}
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists"
  exit 0
fi
work=$(mktemp -d /var/tmp/hostpulse-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# what an image needs no copy of: package lists, caches, docs
rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/archives/*.deb \
  "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/*
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
ctr=$(buildah from scratch)
buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
buildah config --cmd /bin/sh --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
buildah commit --rm "$ctr" "$IMAGE" >/dev/null
echo "$IMAGE created"
