package ingest

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// FuzzDecodeH264 feeds arbitrary bytes, split as an Annex-B stream, to a
// decoder that has just decoded a real key access unit (so damaged slices
// meet real parameter sets). Whatever the bytes, decoding must not crash,
// frames must be whole, and the decoder must go on decoding.
func FuzzDecodeH264(f *testing.F) {
	var prime [][]byte
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		if _, err := os.Stat(decVtest); err == nil {
			clip := decEncode(f, f.TempDir(), "seed.h264", 3, "-s", "96x64", "-c:v", "libx264",
				"-preset", "ultrafast", "-bf", "0", "-f", "h264")
			data, err := os.ReadFile(clip)
			if err != nil {
				f.Fatal(err)
			}
			var nalus h264.AnnexB
			if err := nalus.Unmarshal(data); err != nil {
				f.Fatal(err)
			}
			var aus [][][]byte
			for _, n := range nalus {
				if t := h264.NALUType(n[0] & 0x1f); t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR || len(aus) == 0 {
					aus = append(aus, nil)
				}
				aus[len(aus)-1] = append(aus[len(aus)-1], n)
			}
			// aus[0] holds SEI, SPS and PPS, then come the pictures.
			prime = append(aus[0], aus[1]...)
			idr, _ := h264.AnnexB(prime).Marshal()
			f.Add(idr)
			p, _ := h264.AnnexB(aus[2]).Marshal()
			f.Add(p)
			f.Add(p[:len(p)/2])
			f.Add(idr[:len(idr)*2/3])
		}
	}
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xff, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80})
	f.Add([]byte{0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0xff, 0xff})
	f.Add([]byte{0, 0, 1, 0x41, 0x9a, 0x00, 0x00, 0x03, 0x01})
	f.Add([]byte("\x00\x00\x01\x06garbage that is not a NAL unit"))
	f.Add([]byte{0xff, 0xfe, 0xfd})

	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := NewDecoder(CodecH264, DecoderConfig{MaxWidth: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		check := func(fr *Frame) {
			if fr.Width <= 0 || fr.Width > 64 || fr.Height <= 0 || len(fr.Pix) != 3*fr.Width*fr.Height {
				t.Fatalf("frame %dx%d with %d bytes", fr.Width, fr.Height, len(fr.Pix))
			}
			fr.Release()
		}
		if prime != nil {
			if err := d.Decode(&AccessUnit{Codec: CodecH264, NALUs: prime, Key: true}, check); err != nil {
				t.Fatalf("real key access unit: %v", err)
			}
		}
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(data); err != nil {
			nalus = [][]byte{data}
		}
		// Once as it comes, once as a key access unit.
		_ = d.Decode(&AccessUnit{Codec: CodecH264, PTS: 40 * time.Millisecond, NALUs: nalus}, check)
		_ = d.Decode(&AccessUnit{Codec: CodecH264, PTS: 80 * time.Millisecond, NALUs: nalus, Key: true}, check)
		_ = d.Flush(check)
		st := d.Stats()
		if st.Emitted > st.Decoded || st.AccessUnits < 2 {
			t.Fatalf("stats %+v", st)
		}
		if prime != nil {
			// The decoder still decodes a real key access unit.
			before := d.Stats().Emitted
			au := &AccessUnit{Codec: CodecH264, PTS: 120 * time.Millisecond, NALUs: prime, Key: true}
			if err := d.Decode(au, check); err != nil {
				t.Fatalf("key access unit after the fuzzed input: %v", err)
			}
			if err := d.Flush(check); err != nil {
				t.Fatalf("flush after the fuzzed input: %v", err)
			}
			if d.Stats().Emitted != before+1 {
				t.Fatalf("key access unit after the fuzzed input gave %d frames", d.Stats().Emitted-before)
			}
		}
	})
}
