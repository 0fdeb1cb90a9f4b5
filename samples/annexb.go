package samples

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// accessUnit is one coded picture of a prepared stream: its NAL units
// without start codes, in decode order.
type accessUnit struct {
	nalus [][]byte
	// key is true when the picture is an IDR picture; key access units
	// always carry the SPS and PPS in force.
	key bool
}

// clip is a prepared stream split into access units, ready to be looped.
type clip struct {
	aus []accessUnit
	// sps and pps are the first parameter sets of the stream, announced in
	// the session description.
	sps, pps []byte
	width    int
	height   int
}

// errNoIDR is returned by splitAccessUnits for a stream without any IDR
// picture preceded by parameter sets: nothing of it can be decoded on its
// own.
var errNoIDR = errors.New("no IDR picture with SPS and PPS")

// nalUnits returns the NAL units of an Annex-B byte stream, without start
// codes and without the zero bytes that pad a NAL unit before the next
// start code. Bytes before the first start code are ignored.
func nalUnits(stream []byte) [][]byte {
	startCode := []byte{0, 0, 1}
	var nalus [][]byte
	i := bytes.Index(stream, startCode)
	for i >= 0 {
		begin := i + len(startCode)
		next := bytes.Index(stream[begin:], startCode)
		end := len(stream)
		if next >= 0 {
			end = begin + next
		}
		nalu := bytes.TrimRight(stream[begin:end], "\x00")
		if len(nalu) > 0 {
			nalus = append(nalus, nalu)
		}
		if next < 0 {
			break
		}
		i = end
	}
	return nalus
}

// isVCL reports whether a NAL unit type carries slice data of the primary
// coded picture.
func isVCL(t h264.NALUType) bool {
	return t >= h264.NALUTypeNonIDR && t <= h264.NALUTypeIDR
}

// startsPictureGroup reports whether a NAL unit type, met after a slice,
// opens the next access unit (ITU-T H.264 7.4.1.2.3): access unit
// delimiters, SEI, parameter sets and the reserved types 14 to 18.
func startsPictureGroup(t h264.NALUType) bool {
	switch {
	case t == h264.NALUTypeAccessUnitDelimiter, t == h264.NALUTypeSEI,
		t == h264.NALUTypeSPS, t == h264.NALUTypePPS:
		return true
	case t >= h264.NALUTypePrefix && t <= h264.NALUTypeReserved18:
		return true
	}
	return false
}

// firstSliceOfPicture reports whether a slice NAL unit starts a picture:
// its first_mb_in_slice, the first Exp-Golomb field of the slice header, is
// 0, which is coded as a single 1 bit.
func firstSliceOfPicture(nalu []byte) bool {
	return len(nalu) > 1 && nalu[1]&0x80 != 0
}

// splitAccessUnits splits an H.264 Annex-B elementary stream into access
// units. Access unit delimiters and filler data are dropped; access units
// before the first IDR picture are dropped, since they cannot be decoded on
// their own; every IDR access unit that lacks the SPS or PPS gets the last
// ones seen put in front, so that a reader may start at any of them.
func splitAccessUnits(stream []byte) (*clip, error) {
	c := &clip{}
	var (
		pending [][]byte
		seenVCL bool
		lastSPS []byte
		lastPPS []byte
	)
	flush := func() {
		if !seenVCL {
			pending = nil
			return
		}
		au := accessUnit{nalus: pending}
		hasSPS, hasPPS := false, false
		for _, n := range pending {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeIDR:
				au.key = true
			case h264.NALUTypeSPS:
				hasSPS = true
			case h264.NALUTypePPS:
				hasPPS = true
			}
		}
		pending, seenVCL = nil, false
		if au.key {
			if lastSPS == nil || lastPPS == nil {
				return
			}
			var front [][]byte
			if !hasSPS {
				front = append(front, lastSPS)
			}
			if !hasPPS {
				front = append(front, lastPPS)
			}
			au.nalus = append(front, au.nalus...)
			if c.sps == nil {
				c.sps, c.pps = lastSPS, lastPPS
			}
		}
		if len(c.aus) == 0 && !au.key {
			return
		}
		c.aus = append(c.aus, au)
	}
	for _, n := range nalUnits(stream) {
		t := h264.NALUType(n[0] & 0x1f)
		if seenVCL && (startsPictureGroup(t) || (isVCL(t) && firstSliceOfPicture(n))) {
			flush()
		}
		switch {
		case t == h264.NALUTypeAccessUnitDelimiter, t == h264.NALUTypeFillerData:
			continue
		case t == h264.NALUTypeSPS:
			lastSPS = n
		case t == h264.NALUTypePPS:
			lastPPS = n
		case isVCL(t):
			seenVCL = true
		}
		pending = append(pending, n)
	}
	flush()
	if len(c.aus) == 0 {
		return nil, errNoIDR
	}
	var sps h264.SPS
	if err := sps.Unmarshal(c.sps); err != nil {
		return nil, fmt.Errorf("parse SPS: %w", err)
	}
	c.width, c.height = sps.Width(), sps.Height()
	return c, nil
}
