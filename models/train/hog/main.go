// Command hog counts people in chosen frames of a video with OpenCV's
// built-in HOG + linear SVM people detector (gocv v0.31 on Debian's OpenCV
// 4.6), the baseline models/train/train.py compare reports next to the
// shipped model. It prints frame,count,ms per listed frame and the mean rate.
//
//	go run ./models/train/hog -frames 0,50,100 -upscale 1.5 VIDEO
package main

// #cgo pkg-config: opencv4
// #cgo CXXFLAGS: -std=c++11
// #include <stdlib.h>
// #include "hog.h"
import "C"

import (
	"flag"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"gocv.io/x/gocv"
)

func main() {
	frames := flag.String("frames", "", "comma-separated frame indices (from 0)")
	upscale := flag.Float64("upscale", 1, "resize factor before detection (the detector window is 64x128)")
	stride := flag.Int("stride", 8, "window stride in pixels")
	flag.Parse()
	want := map[int]bool{}
	last := 0
	for _, s := range strings.Split(*frames, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("-frames: %v", err)
		}
		want[i] = true
		last = max(last, i)
	}
	vc, err := gocv.VideoCaptureFile(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer vc.Close()
	hog := C.hog_new()
	defer C.hog_free(hog)
	img := gocv.NewMat()
	defer img.Close()
	var total time.Duration
	n := 0
	fmt.Println("frame,count,ms")
	for i := 0; i <= last; i++ {
		if !vc.Read(&img) || img.Empty() {
			break
		}
		if !want[i] {
			continue
		}
		start := time.Now()
		data, err := img.DataPtrUint8()
		if err != nil {
			log.Fatal(err)
		}
		cnt := C.hog_count(hog, (*C.uchar)(&data[0]), C.int(img.Cols()), C.int(img.Rows()), C.int(img.Step()), C.double(*upscale), C.int(*stride))
		d := time.Since(start)
		total += d
		n++
		fmt.Printf("%d,%d,%.0f\n", i, int(cnt), d.Seconds()*1000)
	}
	if n > 0 {
		fmt.Printf("# %d frames, %.2f frames/s (detection only, upscale %.2f, stride %d)\n", n, float64(n)/total.Seconds(), *upscale, *stride)
	}
}
