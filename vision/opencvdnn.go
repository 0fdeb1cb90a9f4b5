package vision

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "opencvdnn.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// opencvRunner runs a model with OpenCV's DNN module (the same OpenCV that
// gocv binds), through the small C++ shim in opencvdnn.cpp that catches
// OpenCV's exceptions. The network is read once; OpenCV keeps its input and
// output blobs between forwards and reallocates them only when the input
// shape changes.
//
// On the CPU it uses OpenCV's own backend (DNN_BACKEND_OPENCV,
// DNN_TARGET_CPU). ProviderCUDA selects DNN_BACKEND_CUDA with
// DNN_TARGET_CUDA, or DNN_TARGET_CUDA_FP16 with FP16; that needs an OpenCV
// built with CUDA and cuDNN (Debian's is not), and asking for it elsewhere is
// an error. OpenCV runs layers on its process-wide thread pool
// (cv::setNumThreads), so RunnerConfig.Threads does not apply.
type opencvRunner struct {
	path string

	mu     sync.Mutex
	net    *C.fw_dnn
	inDims [C.fw_dnn_max_rank]C.int
	// outData, outDims and outRank receive the last output from the shim
	// (fields rather than locals, so that passing them to C allocates
	// nothing); outShape is its shape for Go.
	outData  *C.float
	outDims  [C.fw_dnn_max_rank]C.int
	outRank  C.int
	outShape [C.fw_dnn_max_rank]int64
	// outBuf holds a copy of the last output in Go memory, so that an
	// output kept past its validity can never reach freed OpenCV memory;
	// it is reallocated only when an output outgrows it.
	outBuf []float32
	// view is what Run returns: outShape and outBuf.
	view Tensor
}

// newOpenCVRunner reads the model for cfg (already normalized).
func newOpenCVRunner(cfg RunnerConfig) (*opencvRunner, error) {
	if err := checkRunnerModel(cfg.Backend, cfg.ModelPath); err != nil {
		return nil, err
	}
	backend, target := gocv.NetBackendOpenCV, gocv.NetTargetCPU
	if cfg.Provider == ProviderCUDA {
		if !opencvCUDAAvailable() {
			return nil, fmt.Errorf("opencv runner for %q: provider %q is not available: OpenCV %s here has no CUDA backend or sees no CUDA device",
				cfg.ModelPath, cfg.Provider, gocv.OpenCVVersion())
		}
		backend, target = gocv.NetBackendCUDA, gocv.NetTargetCUDA
		if cfg.FP16 {
			target = gocv.NetTargetCUDAFP16
		}
	}
	cPath := C.CString(cfg.ModelPath)
	defer C.free(unsafe.Pointer(cPath))
	cIn := C.CString(cfg.InputName)
	defer C.free(unsafe.Pointer(cIn))
	cOut := C.CString(cfg.OutputName)
	defer C.free(unsafe.Pointer(cOut))
	r := &opencvRunner{path: cfg.ModelPath}
	if msg := C.fw_dnn_open(cPath, C.int(backend), C.int(target), cIn, cOut, &r.net); msg != nil {
		return nil, fmt.Errorf("opencv runner: load model %q: %s", cfg.ModelPath, takeCError(msg))
	}
	return r, nil
}

// takeCError returns the shim's error message and frees it.
func takeCError(msg *C.char) string {
	defer C.free(unsafe.Pointer(msg))
	return C.GoString(msg)
}

// Run feeds in to the network and returns its output, which stays valid
// until the next Run. A Run once started finishes: ctx is checked before it.
func (r *opencvRunner) Run(ctx context.Context, in *Tensor) (*Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkRunnerInput(in); err != nil {
		return nil, fmt.Errorf("opencv runner for %q: %w", r.path, err)
	}
	if len(in.Shape) > len(r.inDims) {
		return nil, fmt.Errorf("opencv runner for %q: input shape %v has more than %d dimensions", r.path, in.Shape, len(r.inDims))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net == nil {
		return nil, fmt.Errorf("opencv runner for %q: run after Close", r.path)
	}
	for i, d := range in.Shape {
		if d > 1<<31-1 {
			return nil, fmt.Errorf("opencv runner for %q: input shape %v has a dimension above OpenCV's limit", r.path, in.Shape)
		}
		r.inDims[i] = C.int(d)
	}
	msg := C.fw_dnn_forward(r.net, (*C.float)(unsafe.Pointer(&in.Data[0])), &r.inDims[0], C.int(len(in.Shape)),
		&r.outData, &r.outDims[0], &r.outRank)
	if msg != nil {
		return nil, fmt.Errorf("opencv runner: run model %q on input %v: %s", r.path, in.Shape, takeCError(msg))
	}
	rank := int(r.outRank)
	n := 1
	for i := 0; i < rank; i++ {
		r.outShape[i] = int64(r.outDims[i])
		n *= int(r.outDims[i])
	}
	if cap(r.outBuf) < n {
		r.outBuf = make([]float32, n)
	}
	r.outBuf = r.outBuf[:n]
	copy(r.outBuf, unsafe.Slice((*float32)(unsafe.Pointer(r.outData)), n))
	r.view.Shape = r.outShape[:rank:rank]
	r.view.Data = r.outBuf
	return &r.view, nil
}

// Close frees the network. Closing twice is harmless.
func (r *opencvRunner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net != nil {
		C.fw_dnn_close(r.net)
		r.net = nil
	}
	r.view = Tensor{}
	return nil
}

// opencvCUDAAvailable reports whether this process's OpenCV can run networks
// on a CUDA device.
func opencvCUDAAvailable() bool { return C.fw_dnn_cuda_available() != 0 }
