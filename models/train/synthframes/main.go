// Command synthframes renders training frames with flowwatch's synthetic
// crowd generator (samples/synth) and writes them for models/train/train.py:
// OUT.rgb (raw RGB24 frames, one after another, each WIDTHxHEIGHT) and
// OUT.csv (index,head_x,head_y,height_px: one row per person in the truth).
//
// Only every -every'th frame of each video is kept. Seeds used here must not
// be the shipped samples' (dense 2, sparse 1): those are kept for evaluation.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image"
	"log"
	"os"
	"time"

	"flowwatch/samples/synth"
)

func main() {
	preset := flag.String("preset", "dense", "synth preset: dense or sparse")
	seed := flag.Uint64("seed", 100, "generator seed")
	minV := flag.Int("min", 0, "MinVisible override (0: preset)")
	maxV := flag.Int("max", 0, "MaxVisible override (0: preset)")
	secs := flag.Float64("seconds", 8, "video length")
	every := flag.Int("every", 4, "keep every Nth frame")
	out := flag.String("out", "", "output prefix")
	flag.Parse()
	if *out == "" {
		log.Fatal("-out is required")
	}
	cfg, err := synth.PresetConfig(*preset)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Seed = *seed
	if *maxV > 0 {
		cfg.MinVisible, cfg.MaxVisible = *minV, *maxV
	}
	cfg.Duration = time.Duration(*secs * float64(time.Second))
	rf, err := os.Create(*out + ".rgb")
	if err != nil {
		log.Fatal(err)
	}
	cf, err := os.Create(*out + ".csv")
	if err != nil {
		log.Fatal(err)
	}
	rw := bufio.NewWriterSize(rf, 1<<20)
	cw := bufio.NewWriter(cf)
	fmt.Fprintf(cw, "# %dx%d preset=%s seed=%d\n", cfg.Width, cfg.Height, *preset, *seed)
	kept := 0
	buf := make([]byte, cfg.Width*cfg.Height*3)
	err = synth.Render(cfg, func(i int, img *image.RGBA, heads []synth.Head) error {
		if i%*every != 0 {
			return nil
		}
		b := img.Bounds()
		k := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := img.Pix[(y-b.Min.Y)*img.Stride:]
			for x := 0; x < b.Dx(); x++ {
				buf[k], buf[k+1], buf[k+2] = row[4*x], row[4*x+1], row[4*x+2]
				k += 3
			}
		}
		if _, err := rw.Write(buf); err != nil {
			return err
		}
		for _, h := range heads {
			fmt.Fprintf(cw, "%d,%.2f,%.2f,%.2f\n", kept, h.X, h.Y, h.HeightPx)
		}
		kept++
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := rw.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := cw.Flush(); err != nil {
		log.Fatal(err)
	}
	rf.Close()
	cf.Close()
	fmt.Printf("%s: %d frames %dx%d\n", *out, kept, cfg.Width, cfg.Height)
}
