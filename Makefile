# flowwatch: `make run` starts the demo, `make test` runs every test. Both
# install what is missing first (Debian packages need root or sudo).

GO      ?= go
ROOT    := $(abspath .)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
MEDIA   := $(ROOT)/samples/media
ORT_LIB := $(ROOT)/third_party/onnxruntime/libonnxruntime.so.1.24.1
LDFLAGS := -X main.version=$(VERSION) \
           -X flowwatch/samples.defaultMediaDir=$(MEDIA) \
           -X flowwatch/vision.defaultModelsDir=$(ROOT)/models \
           -X flowwatch/vision.defaultORTLibrary=$(ORT_LIB)
# Tests find the sample media and the ONNX Runtime library through these.
export FLOWWATCH_SAMPLES ?= $(MEDIA)
export FLOWWATCH_ORT_LIB ?= $(ORT_LIB)
export FLOWWATCH_MODELS ?= $(ROOT)/models
# The browser tests save their screenshots here.
export FLOWWATCH_SCREENSHOTS ?= $(ROOT)/bin/screenshots

.PHONY: setup deps build samples run test bench fuzz model vet clean web

## setup: system packages, the ONNX Runtime library, the sample videos (idempotent)
setup: deps samples

deps:
	@bash scripts/setup.sh

## build: bin/flowwatch, which runs from any directory
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/flowwatch ./cmd/flowwatch

## web: rebuild the browser app's committed bundle (console/web/dist; needs Node)
web:
	cd console/web && npm ci && npm run build && node hash-sources.mjs

samples: deps build
	bin/flowwatch samples --dir $(MEDIA)

## run: the demo: the built-in simulator's sample cameras, console on 127.0.0.1:8080
run: setup
	bin/flowwatch serve

## test: every test, short variants of soak and fault runs
test: setup
	$(GO) vet ./...
	$(GO) test -short -count=1 -timeout 20m ./...

## bench: throughput and CPU figures against reference runs (ffmpeg)
bench: setup
	bash scripts/bench.sh

## model: train models/default again from scratch (CPU, fixed seeds; see models/train/README.md)
model: deps build
	/usr/bin/python3 models/train/train.py all

## fuzz: each fuzz target for a while (FUZZTIME, default 10m), then a table of executions and crashes
FUZZTIME ?= 10m
fuzz: setup
	bash scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
