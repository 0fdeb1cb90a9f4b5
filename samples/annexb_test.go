package samples

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Parameter sets of a 320x240 constrained-baseline stream written by
// libx264.
var (
	testSPS = mustHex("6742c00dd90141fb011000000300100000030320f142a480")
	testPPS = mustHex("68cb83cb20")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Slice NAL units: the second byte's top bit set means first_mb_in_slice 0,
// the start of a picture.
var (
	idrFirst   = []byte{0x65, 0x88, 0x01}
	idrSecond  = []byte{0x65, 0x40, 0x02}
	pFirst     = []byte{0x41, 0x9a, 0x03}
	pSecond    = []byte{0x41, 0x40, 0x04}
	aud        = []byte{0x09, 0xf0}
	sei        = []byte{0x06, 0x05, 0x01}
	filler     = []byte{0x0c, 0xff, 0xff}
	startCode4 = []byte{0, 0, 0, 1}
	startCode3 = []byte{0, 0, 1}
)

func annexB(nalus ...[]byte) []byte {
	var buf bytes.Buffer
	for i, n := range nalus {
		if i%2 == 0 {
			buf.Write(startCode4)
		} else {
			buf.Write(startCode3)
		}
		buf.Write(n)
	}
	return buf.Bytes()
}

func TestSplitAccessUnits(t *testing.T) {
	stream := annexB(
		pFirst, // before any IDR: dropped
		aud, testSPS, testPPS, sei, idrFirst, idrSecond,
		aud, pFirst, pSecond,
		filler,
		pFirst,
		idrFirst, // IDR without parameter sets: they get put in front
		sei, pFirst,
	)
	// Zero padding after the last NAL unit belongs to no NAL unit.
	stream = append(stream, 0, 0)
	c, err := splitAccessUnits(stream)
	if err != nil {
		t.Fatal(err)
	}
	want := []accessUnit{
		{key: true, nalus: [][]byte{testSPS, testPPS, sei, idrFirst, idrSecond}},
		{nalus: [][]byte{pFirst, pSecond}},
		{nalus: [][]byte{pFirst}},
		{key: true, nalus: [][]byte{testSPS, testPPS, idrFirst}},
		{nalus: [][]byte{sei, pFirst}},
	}
	if len(c.aus) != len(want) {
		t.Fatalf("got %d access units, want %d: %v", len(c.aus), len(want), c.aus)
	}
	for i := range want {
		got := c.aus[i]
		if got.key != want[i].key {
			t.Errorf("access unit %d: key %v, want %v", i, got.key, want[i].key)
		}
		if len(got.nalus) != len(want[i].nalus) {
			t.Errorf("access unit %d: %d NAL units, want %d", i, len(got.nalus), len(want[i].nalus))
			continue
		}
		for j := range got.nalus {
			if !bytes.Equal(got.nalus[j], want[i].nalus[j]) {
				t.Errorf("access unit %d NAL unit %d: %x, want %x", i, j, got.nalus[j], want[i].nalus[j])
			}
		}
	}
	if c.width != 320 || c.height != 240 {
		t.Errorf("size %dx%d, want 320x240", c.width, c.height)
	}
	if !bytes.Equal(c.sps, testSPS) || !bytes.Equal(c.pps, testPPS) {
		t.Errorf("parameter sets %x %x, want %x %x", c.sps, c.pps, testSPS, testPPS)
	}
}

func TestSplitAccessUnitsRefusesStreamWithoutIDR(t *testing.T) {
	for name, stream := range map[string][]byte{
		"empty":               nil,
		"garbage":             []byte("not a video"),
		"P only":              annexB(testSPS, testPPS, pFirst, pFirst),
		"IDR without SPS":     annexB(testPPS, idrFirst, pFirst),
		"parameter sets only": annexB(testSPS, testPPS),
	} {
		if _, err := splitAccessUnits(stream); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzSplitAccessUnits feeds arbitrary bytes to the splitter: it must not
// panic, and what it returns must start at a key access unit carrying
// parameter sets, with one picture's slices in every access unit.
func FuzzSplitAccessUnits(f *testing.F) {
	f.Add(annexB(testSPS, testPPS, idrFirst, pFirst))
	f.Add(annexB(aud, testSPS, testPPS, sei, idrFirst, idrSecond, aud, pFirst, pSecond, filler, idrFirst))
	f.Add([]byte{0, 0, 1, 0x67, 0, 0, 1, 0x68, 0, 0, 1, 0x65, 0x80})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c, err := splitAccessUnits(stream)
		if err != nil {
			return
		}
		if !c.aus[0].key {
			t.Fatal("first access unit is not key")
		}
		for i, au := range c.aus {
			var sps, pps, vcl bool
			for _, n := range au.nalus {
				if len(n) == 0 {
					t.Fatalf("access unit %d has an empty NAL unit", i)
				}
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					sps = true
				case h264.NALUTypePPS:
					pps = true
				case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA, h264.NALUTypeDataPartitionB,
					h264.NALUTypeDataPartitionC, h264.NALUTypeIDR: // every VCL type, data partitions included
					vcl = true
				case h264.NALUTypeAccessUnitDelimiter:
					t.Fatalf("access unit %d keeps a delimiter", i)
				}
			}
			if !vcl {
				t.Fatalf("access unit %d has no slice", i)
			}
			if au.key && (!sps || !pps) {
				t.Fatalf("key access unit %d lacks SPS or PPS", i)
			}
		}
	})
}
