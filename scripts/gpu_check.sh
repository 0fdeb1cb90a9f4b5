#!/usr/bin/env bash
# GPU check of flowwatch's ONNX Runtime runner: density_tiny on the CUDA
# execution provider, compared with the CPU and timed.
#
#   scripts/gpu_check.sh build   on the development machine (Go, OpenCV):
#                                writes bin/vision-gpu.test
#   scripts/gpu_check.sh         on the GPU machine, from the repository root:
#                                prints the GPU, looks for an ONNX Runtime
#                                CUDA provider and runs the check with it
#
# The GPU machine needs no Go toolchain and no OpenCV: bin/vision-gpu.test is
# package vision's test binary built with only the ONNX Runtime runner (the
# OpenCV, ingest and pre-processing files are left out of that one build with
# go's -overlay), so it links nothing beyond the C library and loads ONNX
# Runtime at run time. Bring bin/vision-gpu.test and, for the case below
# where only provider libraries are found, third_party/onnxruntime.
#
# ONNX Runtime's CUDA provider is a pair of libraries,
# libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so,
# loaded from the folder of libonnxruntime itself and built for one ONNX
# Runtime version (1.24.1 here) and one CUDA major version. The CPU library
# that setup installs (npm onnxruntime-node) has no providers beside it. The
# run looks for providers in $FLOWWATCH_ORT_CUDA_DIR, then anywhere on the
# machine; found beside a libonnxruntime, that one is used, else the
# repository's 1.24.1 library is linked beside them in a temporary folder.
# With no provider found it says so and exits 0 without running the check.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build() {
	set -e
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	# Only the runner's files: doc.go, runner.go, ort.go and ort_test.go,
	# with the two declarations they use from estimator.go, and an OpenCV
	# backend that reports it is not in this binary.
	{
		echo 'package vision'
		echo
		echo 'import "context"'
		echo
		awk '/^\/\/ Tensor is /{on=1} on' vision/estimator.go
	} >"$tmp/estimator.go"
	grep -q '^type Runner interface' "$tmp/estimator.go" || {
		echo "gpu_check: vision/estimator.go no longer declares Tensor then Runner at its end" >&2
		return 1
	}
	cat >"$tmp/opencvdnn.go" <<'EOF'
package vision

import "errors"

type opencvRunner struct{ Runner }

func newOpenCVRunner(RunnerConfig) (*opencvRunner, error) {
	return nil, errors.New("the OpenCV backend is not in the GPU check binary")
}
EOF
	local entries=() f
	for f in vision/*; do
		[ -f "$f" ] || continue
		case "$(basename "$f")" in
		doc.go | runner.go | ort.go | ort_test.go) ;;
		estimator.go | opencvdnn.go) entries+=("\"$root/$f\": \"$tmp/$(basename "$f")\"") ;;
		*.go | *.c | *.cpp | *.h) entries+=("\"$root/$f\": \"\"") ;;
		esac
	done
	(
		IFS=,
		echo "{\"Replace\": {${entries[*]}}}"
	) >"$tmp/overlay.json"
	mkdir -p bin
	go test -c -overlay "$tmp/overlay.json" -o bin/vision-gpu.test ./vision
	echo "gpu_check: wrote bin/vision-gpu.test; it needs:"
	ldd bin/vision-gpu.test
}

# providers_dirs prints each folder holding libonnxruntime_providers_cuda.so.
providers_dirs() {
	{
		if [ -n "${FLOWWATCH_ORT_CUDA_DIR:-}" ] && [ -e "$FLOWWATCH_ORT_CUDA_DIR/libonnxruntime_providers_cuda.so" ]; then
			realpath "$FLOWWATCH_ORT_CUDA_DIR"
		fi
		find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
			-name 'libonnxruntime_providers_cuda.so' -print 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 realpath
	} | awk '!seen[$0]++'
}

check() {
	echo "== GPU"
	if ! command -v nvidia-smi >/dev/null; then
		echo "gpu_check: no nvidia-smi here: not a GPU machine; nothing to check"
		return 0
	fi
	nvidia-smi || { echo "gpu_check: nvidia-smi failed; nothing to check"; return 0; }

	echo "== CUDA libraries the dynamic loader knows"
	ldconfig -p | grep -E 'libcudart\.|libcublas\.|libcublasLt\.|libcudnn\.|libcufft\.|libcurand\.' || echo "(none in the loader's cache)"
	# CUDA libraries shipped as Python packages (nvidia-*), and the toolkit.
	local extra
	extra=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \
		-type d -path '*/site-packages/nvidia/*/lib' -print 2>/dev/null | sort -u | paste -sd:)
	[ -d /usr/local/cuda/lib64 ] && extra="${extra:+$extra:}/usr/local/cuda/lib64"
	if [ -n "$extra" ]; then
		echo "adding to LD_LIBRARY_PATH: $extra"
		export LD_LIBRARY_PATH="$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	fi

	echo "== ONNX Runtime CUDA provider"
	local dirs
	dirs=$(providers_dirs)
	if [ -z "$dirs" ]; then
		echo "gpu_check: SKIP: no libonnxruntime_providers_cuda.so on this machine; the CUDA provider cannot be checked."
		echo "gpu_check: the CPU library from npm onnxruntime-node 1.24.1 has no CUDA provider; put ONNX Runtime 1.24.1's"
		echo "gpu_check: libonnxruntime_providers_{shared,cuda}.so in a folder and point FLOWWATCH_ORT_CUDA_DIR at it."
		return 0
	fi
	echo "$dirs"
	if [ ! -x bin/vision-gpu.test ]; then
		echo "gpu_check: bin/vision-gpu.test is missing: run scripts/gpu_check.sh build on the development machine and bring bin/" >&2
		return 1
	fi

	local dir lib status=0 tmp
	tmp=$(mktemp -d)
	for dir in $dirs; do
		echo "== check with the providers in $dir"
		ls -l "$dir"/libonnxruntime* 2>/dev/null
		lib=$(ls "$dir"/libonnxruntime.so* 2>/dev/null | head -n 1)
		if [ -z "$lib" ]; then
			if [ ! -f third_party/onnxruntime/libonnxruntime.so.1.24.1 ]; then
				echo "gpu_check: no libonnxruntime beside the providers and none in third_party/onnxruntime; skipping $dir"
				continue
			fi
			local pair="$tmp/$(echo "$dir" | tr / _)"
			mkdir -p "$pair"
			ln -sf "$root/third_party/onnxruntime/libonnxruntime.so.1.24.1" "$pair/libonnxruntime.so.1.24.1"
			for f in "$dir"/libonnxruntime_providers_*.so; do ln -sf "$f" "$pair/"; done
			lib="$pair/libonnxruntime.so.1.24.1"
		fi
		echo "library: $lib"
		echo "missing libraries of the CUDA provider, if any:"
		ldd "$dir/libonnxruntime_providers_cuda.so" | grep 'not found' || echo "(none)"
		(cd vision && FLOWWATCH_GPU_CHECK=1 FLOWWATCH_ORT_LIB="$lib" \
			../bin/vision-gpu.test -test.run '^TestORTRunnerCUDA$' -test.v -test.count=1) || status=1
	done
	rm -rf "$tmp"
	return $status
}

case "${1:-check}" in
build) build ;;
check) check ;;
*)
	echo "usage: scripts/gpu_check.sh [build|check]" >&2
	exit 2
	;;
esac
