package ingest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// maxPictureSide bounds the width and height accepted from an SPS; larger
// values come from corrupt parameter sets, not from cameras.
const maxPictureSide = 16384

// nalKind is what a NAL unit means to ingest, independent of the codec.
type nalKind int

const (
	nalOther nalKind = iota
	nalVPS
	nalSPS
	nalPPS
	nalAUD
	nalSlice
	nalKeySlice
)

// nalKindOf classifies a NAL unit that already passed checkNALU.
func nalKindOf(codec Codec, nalu []byte) nalKind {
	switch codec {
	case CodecH264:
		switch h264.NALUType(nalu[0] & 0x1F) {
		case h264.NALUTypeSPS:
			return nalSPS
		case h264.NALUTypePPS:
			return nalPPS
		case h264.NALUTypeAccessUnitDelimiter:
			return nalAUD
		case h264.NALUTypeIDR:
			return nalKeySlice
		case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA,
			h264.NALUTypeDataPartitionB, h264.NALUTypeDataPartitionC:
			return nalSlice
		}
	case CodecH265:
		typ := h265.NALUType((nalu[0] >> 1) & 0x3F)
		switch {
		case typ == h265.NALUType_VPS_NUT:
			return nalVPS
		case typ == h265.NALUType_SPS_NUT:
			return nalSPS
		case typ == h265.NALUType_PPS_NUT:
			return nalPPS
		case typ == h265.NALUType_AUD_NUT:
			return nalAUD
		case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_RSV_IRAP_VCL23:
			return nalKeySlice
		case typ <= h265.NALUType_RSV_VCL_R15:
			return nalSlice
		}
	}
	return nalOther
}

// checkNALU reports why a NAL unit cannot belong to an access unit of
// codec: empty, a truncated header, the forbidden bit set, or a type that
// only exists inside RTP packets (aggregation, fragmentation) or is
// unspecified.
func checkNALU(codec Codec, nalu []byte) error {
	if len(nalu) == 0 {
		return errors.New("empty NAL unit")
	}
	if nalu[0]&0x80 != 0 {
		return fmt.Errorf("NAL unit header 0x%02x has the forbidden bit set", nalu[0])
	}
	switch codec {
	case CodecH264:
		typ := nalu[0] & 0x1F
		if typ == 0 || typ >= 24 {
			return fmt.Errorf("H.264 NAL unit type %d is not allowed in an access unit", typ)
		}
	case CodecH265:
		if len(nalu) < 2 {
			return errors.New("H.265 NAL unit shorter than its 2-byte header")
		}
		typ := (nalu[0] >> 1) & 0x3F
		if typ >= 48 {
			return fmt.Errorf("H.265 NAL unit type %d is not allowed in an access unit", typ)
		}
		if nalu[1]&0x07 == 0 {
			return errors.New("H.265 NAL unit header has temporal id 0")
		}
	default:
		return fmt.Errorf("codec %q is not H264 or H265", codec)
	}
	return nil
}

// cleanAU returns the NAL units of au that pass checkNALU, in order, and
// how many it removed. The input slice is not modified.
func cleanAU(codec Codec, au [][]byte) (kept [][]byte, bad int) {
	for _, n := range au {
		if checkNALU(codec, n) != nil {
			bad++
		}
	}
	if bad == 0 {
		return au, 0
	}
	kept = make([][]byte, 0, len(au)-bad)
	for _, n := range au {
		if checkNALU(codec, n) == nil {
			kept = append(kept, n)
		}
	}
	return kept, bad
}

// auInfo says whether an access unit of valid NAL units holds a picture
// and whether that picture is a random access point.
func auInfo(codec Codec, au [][]byte) (hasPicture, key bool) {
	for _, n := range au {
		switch nalKindOf(codec, n) {
		case nalKeySlice:
			return true, true
		case nalSlice:
			hasPicture = true
		}
	}
	return hasPicture, false
}

// pictureSize parses an SPS NAL unit of codec and returns the picture size
// it declares.
func pictureSize(codec Codec, sps []byte) (width, height int, err error) {
	switch codec {
	case CodecH264:
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H.264 SPS (%d bytes): %w", len(sps), err)
		}
		width, height = s.Width(), s.Height()
	case CodecH265:
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H.265 SPS (%d bytes): %w", len(sps), err)
		}
		width, height = s.Width(), s.Height()
	default:
		return 0, 0, fmt.Errorf("parse SPS: codec %q is not H264 or H265", codec)
	}
	if width <= 0 || height <= 0 || width > maxPictureSide || height > maxPictureSide {
		return 0, 0, fmt.Errorf("SPS declares a %dx%d picture", width, height)
	}
	return width, height, nil
}

// paramSets are the parameter sets in force for one stream and the picture
// size the SPS declares. The zero value knows nothing; set codec before
// use. It is not safe for concurrent use.
type paramSets struct {
	codec         Codec
	vps, sps, pps []byte
	width, height int
}

// observe records the parameter sets among the NAL units of au (valid NAL
// units only) and returns au without any SPS that does not parse: such an
// SPS is neither adopted nor passed on, since a decoder given it would
// lose the picture size in force; err says what was wrong with it. changed
// is true when a parameter set or the picture size differs from before.
// au itself is not modified.
func (p *paramSets) observe(au [][]byte) (kept [][]byte, changed bool, err error) {
	var rejected []bool // nil until an SPS is rejected
	for i, n := range au {
		switch nalKindOf(p.codec, n) {
		case nalVPS:
			if !bytes.Equal(p.vps, n) {
				p.vps = bytes.Clone(n)
				changed = true
			}
		case nalSPS:
			if bytes.Equal(p.sps, n) {
				continue
			}
			w, h, perr := pictureSize(p.codec, n)
			if perr != nil {
				err = errors.Join(err, perr)
				if rejected == nil {
					rejected = make([]bool, len(au))
				}
				rejected[i] = true
				continue
			}
			p.sps = bytes.Clone(n)
			p.width, p.height = w, h
			changed = true
		case nalPPS:
			if !bytes.Equal(p.pps, n) {
				p.pps = bytes.Clone(n)
				changed = true
			}
		}
	}
	if rejected == nil {
		return au, changed, err
	}
	kept = make([][]byte, 0, len(au))
	for i, n := range au {
		if !rejected[i] {
			kept = append(kept, n)
		}
	}
	return kept, changed, err
}

// list returns copies of the known parameter sets in decode order: VPS
// (H.265 only), SPS, PPS.
func (p *paramSets) list() [][]byte {
	var out [][]byte
	for _, ps := range [][]byte{p.vps, p.sps, p.pps} {
		if ps != nil {
			out = append(out, bytes.Clone(ps))
		}
	}
	return out
}

// complete returns au with the known parameter sets it lacks inserted
// before its first NAL unit, or after a leading access unit delimiter, which
// must stay first. It returns au itself when nothing is missing; au is
// never modified.
func (p *paramSets) complete(au [][]byte) [][]byte {
	var hasVPS, hasSPS, hasPPS bool
	for _, n := range au {
		switch nalKindOf(p.codec, n) {
		case nalVPS:
			hasVPS = true
		case nalSPS:
			hasSPS = true
		case nalPPS:
			hasPPS = true
		}
	}
	var missing [][]byte
	if p.codec == CodecH265 && !hasVPS && p.vps != nil {
		missing = append(missing, p.vps)
	}
	if !hasSPS && p.sps != nil {
		missing = append(missing, p.sps)
	}
	if !hasPPS && p.pps != nil {
		missing = append(missing, p.pps)
	}
	if len(missing) == 0 {
		return au
	}
	at := 0
	if len(au) > 0 && nalKindOf(p.codec, au[0]) == nalAUD {
		at = 1
	}
	out := make([][]byte, 0, len(au)+len(missing))
	out = append(out, au[:at]...)
	out = append(out, missing...)
	out = append(out, au[at:]...)
	return out
}
