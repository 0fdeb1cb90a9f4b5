package ingest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Parameter sets from libx265 output, 160x120.
func testVPS265() []byte {
	return []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00,
		0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x92, 0x80, 0x90}
}

func testSPS265() []byte {
	return []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
		0x00, 0x03, 0x00, 0x1e, 0xa0, 0x14, 0x20, 0x79, 0x65, 0x92, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02,
		0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10}
}

func testPPS265() []byte { return []byte{0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40} }

// nalCase is one access unit and what ingest must make of it.
type nalCase struct {
	name  string
	codec Codec
	au    [][]byte
	// bad is how many NAL units checkNALU refuses.
	bad int
	// picture and key are what auInfo must say about the valid units.
	picture, key bool
	// width and height are the size observe must record (0: unchanged).
	width, height int
	// sizeErr is true when observe must refuse an SPS.
	sizeErr bool
}

func nalCases() []nalCase {
	return []nalCase{
		{name: "h264 idr with params", codec: CodecH264,
			au:      [][]byte{{0x09, 0xf0}, testSPS320(), testPPS320(), {0x65, 0x88, 0x84}},
			picture: true, key: true, width: 320, height: 240},
		{name: "h264 non-idr", codec: CodecH264, au: [][]byte{{0x41, 0x9a, 0x02}}, picture: true},
		{name: "h264 params alone", codec: CodecH264, au: [][]byte{testSPS160(), testPPS160()}, width: 160, height: 120},
		{name: "h264 empty nalu", codec: CodecH264, au: [][]byte{{}, {0x41, 0x9a}}, bad: 1, picture: true},
		{name: "h264 forbidden bit", codec: CodecH264, au: [][]byte{{0xe5, 0x88}}, bad: 1},
		{name: "h264 rtp-only type", codec: CodecH264, au: [][]byte{{0x1c, 0x85, 0x00}, {0x18, 0x00}}, bad: 2},
		{name: "h264 type 0", codec: CodecH264, au: [][]byte{{0x00, 0x01}}, bad: 1},
		{name: "h264 truncated sps", codec: CodecH264, au: [][]byte{{0x67, 0x64}, {0x65, 0x88}},
			picture: true, key: true, sizeErr: true},
		{name: "h264 sps with absurd size", codec: CodecH264,
			au: [][]byte{{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, sizeErr: true},
		{name: "h265 idr with params", codec: CodecH265,
			au:      [][]byte{testVPS265(), testSPS265(), testPPS265(), {0x28, 0x01, 0xaf, 0x1d}},
			picture: true, key: true, width: 160, height: 120},
		{name: "h265 cra", codec: CodecH265, au: [][]byte{{0x2a, 0x01, 0xaf}}, picture: true, key: true},
		{name: "h265 trail", codec: CodecH265, au: [][]byte{{0x02, 0x01, 0xd0}}, picture: true},
		{name: "h265 one-byte nalu", codec: CodecH265, au: [][]byte{{0x02}}, bad: 1},
		{name: "h265 temporal id 0", codec: CodecH265, au: [][]byte{{0x02, 0x00, 0xd0}}, bad: 1},
		{name: "h265 fragmentation unit type", codec: CodecH265, au: [][]byte{{0x62, 0x01, 0x93}}, bad: 1},
		{name: "h265 truncated sps", codec: CodecH265, au: [][]byte{{0x42, 0x01, 0x01}}, sizeErr: true},
	}
}

func TestNALCases(t *testing.T) {
	for _, tc := range nalCases() {
		t.Run(tc.name, func(t *testing.T) {
			kept, bad := cleanAU(tc.codec, tc.au)
			if bad != tc.bad || len(kept) != len(tc.au)-tc.bad {
				t.Fatalf("cleanAU removed %d of %d, want %d", bad, len(tc.au), tc.bad)
			}
			picture, key := auInfo(tc.codec, kept)
			if picture != tc.picture || key != tc.key {
				t.Errorf("auInfo = picture %v key %v, want %v %v", picture, key, tc.picture, tc.key)
			}
			p := paramSets{codec: tc.codec}
			_, _, err := p.observe(kept)
			if (err != nil) != tc.sizeErr {
				t.Errorf("observe error %v, want error: %v", err, tc.sizeErr)
			}
			if p.width != tc.width || p.height != tc.height {
				t.Errorf("size %dx%d, want %dx%d", p.width, p.height, tc.width, tc.height)
			}
		})
	}
}

func TestNALCompleteInsertsMissingParamSets(t *testing.T) {
	p := paramSets{codec: CodecH265}
	if _, _, err := p.observe([][]byte{testVPS265(), testSPS265(), testPPS265()}); err != nil {
		t.Fatal(err)
	}
	aud := []byte{0x46, 0x01, 0x10}
	idr := []byte{0x28, 0x01, 0xaf}
	got := p.complete([][]byte{aud, testSPS265(), idr})
	want := [][]byte{aud, testVPS265(), testPPS265(), testSPS265(), idr}
	if !equalNALUs(got, want) {
		t.Errorf("complete = %x, want %x", got, want)
	}
	full := [][]byte{testVPS265(), testSPS265(), testPPS265(), idr}
	if got := p.complete(full); &got[0] != &full[0] {
		t.Error("complete copied an access unit that lacked nothing")
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"rtsp://admin:s3cret@10.0.0.5:554/stream1", "rtsp://admin:***@10.0.0.5:554/stream1"},
		{"rtsp://admin@10.0.0.5/stream1", "rtsp://admin@10.0.0.5/stream1"},
		{"rtsp://10.0.0.5/s", "rtsp://10.0.0.5/s"},
		{"rtsp://u:p%40ss@host", "rtsp://u:***@host"},
		{"rtsp://u:p@ss@host/x?y=1", "rtsp://u:***@host/x?y=1"},
		{`dial "rtsp://a:b1@h/x" and rtsp://c:d2@h2 failed`, `dial "rtsp://a:***@h/x" and rtsp://c:***@h2 failed`},
		{"not a url: user:pw@host", "not a url: user:pw@host"},
		{"rtsp://admin:pa#ss@10.0.0.1/s", "rtsp://admin:***@10.0.0.1/s"},
		{"rtsp://admin:pa/ss@10.0.0.1/s", "rtsp://admin:***@10.0.0.1/s"},
		{"rtsp://admin:pa?ss@10.0.0.1/s", "rtsp://admin:***@10.0.0.1/s"},
		{`parse "rtsp://admin:pa#ss@h/s": invalid port`, `parse "rtsp://admin:***@h/s": invalid port`},
		{"rtsp://u:p@h/a rtsp://v:q@h/b", "rtsp://u:***@h/a rtsp://v:***@h/b"},
	}
	for _, c := range cases {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := redactText("auth failed for hunter22 at rtsp://x:hunter22@h", "hunter22"); strings.Contains(got, "hunter22") {
		t.Errorf("redactText left the password in %q", got)
	}
}

// FuzzNAL feeds arbitrary Annex-B data through the NAL unit checks,
// parameter-set tracking, keyframe completion and a Stream, for both
// codecs: nothing may panic, invalid units never get through, and a
// completed keyframe keeps every unit it had, in order, plus the known
// parameter sets.
func FuzzNAL(f *testing.F) {
	for _, tc := range nalCases() {
		var buf []byte
		for _, n := range tc.au {
			buf = append(buf, 0, 0, 0, 1)
			buf = append(buf, n...)
		}
		f.Add(buf, tc.codec == CodecH265)
	}
	f.Fuzz(func(t *testing.T, data []byte, hevc bool) {
		codec := CodecH264
		if hevc {
			codec = CodecH265
		}
		var au h264.AnnexB
		if err := au.Unmarshal(data); err != nil {
			au = [][]byte{data}
		}
		kept, bad := cleanAU(codec, au)
		if len(kept)+bad != len(au) {
			t.Fatalf("cleanAU kept %d and refused %d of %d", len(kept), bad, len(au))
		}
		for _, n := range kept {
			if err := checkNALU(codec, n); err != nil {
				t.Fatalf("cleanAU kept an invalid unit: %v", err)
			}
		}
		_, key := auInfo(codec, kept)

		p := paramSets{codec: codec}
		observed, _, _ := p.observe(kept)
		if p.sps != nil {
			w, h, err := pictureSize(codec, p.sps)
			if err != nil || w != p.width || h != p.height {
				t.Fatalf("adopted SPS does not give the recorded size: %v", err)
			}
		}
		completed := p.complete(observed)
		j := 0
		for _, n := range completed {
			if j < len(observed) && bytes.Equal(n, observed[j]) {
				j++
			}
		}
		if j != len(observed) {
			t.Fatal("complete lost or reordered NAL units")
		}
		if p.sps != nil && !hasNALKind(codec, completed, nalSPS) {
			t.Fatal("completed access unit lacks the SPS")
		}
		if len(observed) > 0 && nalKindOf(codec, observed[0]) == nalAUD && nalKindOf(codec, completed[0]) != nalAUD {
			t.Fatal("access unit delimiter no longer first")
		}

		st := NewStream(StreamConfig{Name: "fuzz"})
		sub, _ := st.Subscribe(SubscribeOptions{Name: "fuzz", QueueLen: 2})
		st.Begin(codec, au)
		st.Publish(&AccessUnit{Codec: codec, NALUs: au, Key: key})
		for sub.Len() > 0 {
			got, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range got.NALUs {
				if err := checkNALU(codec, n); err != nil {
					t.Fatalf("stream delivered an invalid unit: %v", err)
				}
			}
		}
		st.Close()
	})
}
