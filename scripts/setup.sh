#!/usr/bin/env bash
# Installs what flowwatch needs on Debian 12, skipping whatever is already
# there: the system packages, and the ONNX Runtime CPU library taken from
# the npm registry's onnxruntime-node package. Safe to run again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

# Debian packages: cgo libraries (OpenCV, libav*), ffmpeg/ffprobe (sample
# preparation and the second RTSP peer in tests), opencv-doc (the vtest
# clip), chromium and a CJK font (console browser tests and their
# screenshots), python3-torch (model training).
packages=(
  pkg-config gcc g++ make
  libopencv-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  ffmpeg opencv-doc chromium fonts-wqy-microhei python3-torch python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# ONNX Runtime 1.24.1 (the version onnxruntime_go v1.27.0 speaks), CPU build.
ort_version=1.24.1
ort_sha256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
ort_dir="$root/third_party/onnxruntime"
ort_lib="$ort_dir/libonnxruntime.so.$ort_version"
if [ -f "$ort_lib" ] && echo "$ort_sha256  $ort_lib" | sha256sum -c --status; then
  echo "setup: ONNX Runtime $ort_version present"
else
  echo "setup: fetching ONNX Runtime $ort_version from the npm package onnxruntime-node"
  command -v npm >/dev/null || { echo "setup: npm is needed to fetch ONNX Runtime" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ort_version" >/dev/null)
  tar -xzf "$tmp/onnxruntime-node-$ort_version.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  echo "$ort_sha256  $tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" | sha256sum -c --status || {
    echo "setup: libonnxruntime.so.1 from onnxruntime-node@$ort_version does not match its known SHA-256" >&2; exit 1; }
  mkdir -p "$ort_dir"
  install -m 0644 "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort_lib"
  ln -sf "libonnxruntime.so.$ort_version" "$ort_dir/libonnxruntime.so.1"
  ln -sf "libonnxruntime.so.$ort_version" "$ort_dir/libonnxruntime.so"
fi
