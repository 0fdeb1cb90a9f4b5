package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// FileInfo describes the video stream of a file (or anything else
// libavformat opens).
type FileInfo struct {
	// Path is what was opened, with any URL password replaced by ***.
	Path string
	// Format is libavformat's name of the container ("avi", "mov,mp4,...").
	Format string
	// Codec is libavcodec's name of the video codec ("h264", "msmpeg4v3").
	Codec string
	// Width and Height are the coded picture size.
	Width, Height int
	// FPS is the frame rate the container states; 0 when unknown.
	FPS float64
	// Frames is the number of frames the container states; 0 when unknown.
	Frames int64
	// Duration is the length of the video stream; 0 when unknown.
	Duration time.Duration
}

// FileConfig configures a FileSource. The zero value decodes with one
// thread at the coded size.
type FileConfig struct {
	// MaxWidth and MaxHeight bound the frame size as in DecoderConfig.
	MaxWidth, MaxHeight int
	// Threads is the number of decoding threads; 0 means 1.
	Threads int
	// Pool supplies the frames; nil gives the source a pool of its own.
	Pool *FramePool
	// Options are libavformat options for opening the input, such as
	// "rtsp_transport": "tcp" for an rtsp:// URL.
	Options map[string]string
}

// fileInfo describes the stream si of path.
func fileInfo(path string, si *avStreamInfo) FileInfo {
	info := FileInfo{
		Path:     path,
		Format:   si.formatName,
		Codec:    si.codecName,
		Width:    si.width,
		Height:   si.height,
		Frames:   si.frames,
		Duration: si.duration,
	}
	if si.fpsNum > 0 && si.fpsDen > 0 {
		info.FPS = float64(si.fpsNum) / float64(si.fpsDen)
	}
	return info
}

// FileSource decodes the first video stream of anything libavformat reads
// (a file path, or a URL such as rtsp://) with whatever decoder libavcodec
// has for it, and hands out its pictures in presentation order as BGR24
// frames. Frame.Index counts decoded frames from 0; Frame.PTS counts from
// the start of the stream. A FileSource is used by one goroutine at a
// time.
type FileSource struct {
	path    string // for messages, password hidden
	cfg     FileConfig
	demux   *avDemuxer
	dec     *avDecoder
	pool    *FramePool
	info    FileInfo
	index   int64
	lastPTS time.Duration
	drained bool // the input ended and the decoder was told so
	done    bool // the decoder handed out its last picture
}

// OpenFile opens path and its video decoder. ctx bounds the opening (it
// matters for network URLs).
func OpenFile(ctx context.Context, path string, cfg FileConfig) (*FileSource, error) {
	switch {
	case cfg.Threads < 0:
		return nil, fmt.Errorf("open %s: thread count %d is negative", RedactURL(path), cfg.Threads)
	case cfg.MaxWidth < 0 || cfg.MaxHeight < 0:
		return nil, fmt.Errorf("open %s: max size %dx%d is negative", RedactURL(path), cfg.MaxWidth, cfg.MaxHeight)
	}
	if cfg.Threads == 0 {
		cfg.Threads = 1
	}
	name := RedactURL(path)
	m, err := avOpenDemuxer(ctx, path, cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	dec, err := avOpenDemuxDecoder(m, cfg.Threads)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("open %s: %s decoder: %w", name, m.info.codecName, err)
	}
	s := &FileSource{path: name, cfg: cfg, demux: m, dec: dec, pool: cfg.Pool, info: fileInfo(name, &m.info)}
	if s.pool == nil {
		s.pool = NewFramePool()
	}
	return s, nil
}

// Info describes the video stream.
func (s *FileSource) Info() FileInfo { return s.info }

// Next decodes the next frame. It returns io.EOF after the last one. A
// decode error names the packet it came from; calling Next again goes on
// with the next packet, as ffmpeg does. If ctx ends during a read, Next
// returns ctx's error.
func (s *FileSource) Next(ctx context.Context) (*Frame, error) {
	if s.dec == nil {
		return nil, fmt.Errorf("read %s: source is closed", s.path)
	}
	for !s.done {
		pic, st, err := s.dec.receive()
		if err != nil {
			return nil, fmt.Errorf("decode %s (%s): %w", s.path, s.info.Codec, err)
		}
		switch st {
		case avGotPicture:
			return s.frame(pic)
		case avDrained:
			s.done = true
			continue
		}
		if s.drained {
			s.done = true
			continue
		}
		pkt, err := s.demux.read(ctx)
		if errors.Is(err, io.EOF) {
			if err := s.dec.drain(); err != nil {
				return nil, fmt.Errorf("drain %s decoder of %s: %w", s.info.Codec, s.path, err)
			}
			s.drained = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.path, err)
		}
		if err := s.dec.sendDemuxed(s.demux); err != nil {
			return nil, fmt.Errorf("decode %s (%s) packet at byte %d: %w", s.path, s.info.Codec, pkt.pos, err)
		}
	}
	return nil, io.EOF
}

// frame converts the picture just decoded.
func (s *FileSource) frame(pic avPicture) (*Frame, error) {
	pts := s.lastPTS + s.demux.info.frameDuration()
	if pic.pts != avNoPTS {
		pts = s.demux.info.toDuration(pic.pts)
	} else if s.index == 0 {
		pts = 0
	}
	s.lastPTS = pts
	w, h := decOutputSize(pic.width, pic.height, s.cfg.MaxWidth, s.cfg.MaxHeight)
	f := s.pool.Get(w, h)
	if err := s.dec.convert(f); err != nil {
		f.Release()
		return nil, fmt.Errorf("%s frame %d: %w", s.path, s.index, err)
	}
	f.PTS, f.Index, f.Key = pts, s.index, pic.key
	s.index++
	return f, nil
}

// Close frees the decoder and closes the input. Frames already handed out
// stay valid. Later calls do nothing.
func (s *FileSource) Close() error {
	if s.dec != nil {
		s.dec.close()
		s.dec = nil
		s.demux.close()
	}
	return nil
}

// AccessUnitFile reads the H.264 or H.265 video stream of a file (any
// container libavformat reads, or a raw Annex-B stream) as access units,
// so that a Decoder can be fed from a file as from a camera. Length-prefixed
// packets (MP4, Matroska) are split into NAL units with the sizes their
// codec configuration gives; the parameter sets in force are put in front
// of every key access unit that lacks them. An access unit's PTS is its
// packet's; a raw Annex-B stream has none, so there it is the decode time,
// which is the PTS only for streams without B-frames (as cameras send). It
// implements AccessUnitReader; it is used by one goroutine at a time.
type AccessUnitFile struct {
	path       string // for messages, password hidden
	demux      *avDemuxer
	info       FileInfo
	codec      Codec
	lengthSize int      // bytes of each NAL unit length prefix; 0 for Annex-B
	params     [][]byte // the parameter sets seen last
	count      int64
	lastPTS    time.Duration
}

// OpenAccessUnitFile opens path, whose first video stream must be H.264 or
// H.265. ctx bounds the opening.
func OpenAccessUnitFile(ctx context.Context, path string) (*AccessUnitFile, error) {
	name := RedactURL(path)
	m, err := avOpenDemuxer(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	r := &AccessUnitFile{path: name, demux: m, info: fileInfo(name, &m.info), codec: m.info.codec}
	if r.codec == "" {
		m.close()
		return nil, fmt.Errorf("open %s: video codec %s is neither H.264 nor H.265", name, m.info.codecName)
	}
	if err := r.parseExtradata(m.info.extradata); err != nil {
		m.close()
		return nil, fmt.Errorf("open %s: %s codec configuration: %w", name, r.codec, err)
	}
	r.keepParamSets()
	return r, nil
}

// Info describes the video stream.
func (r *AccessUnitFile) Info() FileInfo { return r.info }

// Codec is the codec of the access units.
func (r *AccessUnitFile) Codec() Codec { return r.codec }

// Next returns the next access unit in decode order, io.EOF after the last.
// Each access unit owns its NAL unit memory.
func (r *AccessUnitFile) Next(ctx context.Context) (*AccessUnit, error) {
	if r.demux == nil {
		return nil, fmt.Errorf("read %s: reader is closed", r.path)
	}
	for {
		pkt, err := r.demux.read(ctx)
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", r.path, err)
		}
		if len(pkt.data) == 0 {
			continue
		}
		data := make([]byte, len(pkt.data))
		copy(data, pkt.data)
		nalus, err := r.split(data)
		if err != nil {
			return nil, fmt.Errorf("read %s: %s packet at byte %d: %w", r.path, r.codec, pkt.pos, err)
		}
		au := &AccessUnit{Codec: r.codec, PTS: r.pts(pkt), Received: time.Now()}
		au.Key = decIsKey(r.codec, nalus)
		au.NALUs = r.withParams(nalus, au.Key)
		r.count++
		return au, nil
	}
}

// Close closes the input. Later calls do nothing.
func (r *AccessUnitFile) Close() error {
	if r.demux != nil {
		r.demux.close()
		r.demux = nil
	}
	return nil
}

// pts is the presentation time of pkt: its PTS, else its DTS, else one
// frame after the previous access unit.
func (r *AccessUnitFile) pts(pkt avPacket) time.Duration {
	var pts time.Duration
	switch {
	case pkt.pts != avNoPTS:
		pts = r.demux.info.toDuration(pkt.pts)
	case pkt.dts != avNoPTS:
		pts = r.demux.info.toDuration(pkt.dts)
	case r.count > 0:
		pts = r.lastPTS + r.demux.info.frameDuration()
	}
	r.lastPTS = pts
	return pts
}

// split cuts a packet into NAL units.
func (r *AccessUnitFile) split(data []byte) ([][]byte, error) {
	if r.lengthSize == 0 {
		var au h264.AnnexB
		if err := au.Unmarshal(data); err != nil {
			return nil, err
		}
		return au, nil
	}
	return decSplitLengthPrefixed(data, r.lengthSize)
}

// withParams remembers the parameter sets among nalus and, for a key
// access unit without any, puts the remembered ones in front.
func (r *AccessUnitFile) withParams(nalus [][]byte, key bool) [][]byte {
	var params [][]byte
	for _, n := range nalus {
		if decIsParamSet(r.codec, n) {
			params = append(params, n)
		}
	}
	if len(params) > 0 {
		r.params = params
		return nalus
	}
	if !key || len(r.params) == 0 {
		return nalus
	}
	out := make([][]byte, 0, len(r.params)+len(nalus))
	out = append(out, r.params...)
	return append(out, nalus...)
}

// parseExtradata reads the codec configuration: an avcC or hvcC record
// (length-prefixed packets follow) or Annex-B parameter sets.
func (r *AccessUnitFile) parseExtradata(ed []byte) error {
	switch {
	case len(ed) == 0:
		return nil
	case ed[0] != 1:
		var au h264.AnnexB
		if err := au.Unmarshal(ed); err != nil {
			return fmt.Errorf("Annex-B parameter sets: %w", err)
		}
		r.params = au
		return nil
	case r.codec == CodecH264:
		size, params, err := decParseAVCC(ed)
		r.lengthSize, r.params = size, params
		return err
	default:
		size, params, err := decParseHVCC(ed)
		r.lengthSize, r.params = size, params
		return err
	}
}

// keepParamSets drops what is not a parameter set (an hvcC record may
// carry SEI too) from r.params.
func (r *AccessUnitFile) keepParamSets() {
	kept := r.params[:0]
	for _, n := range r.params {
		if decIsParamSet(r.codec, n) {
			kept = append(kept, n)
		}
	}
	r.params = kept
}

// decParseAVCC reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1): the NAL length size and the SPS and PPS it carries.
func decParseAVCC(ed []byte) (int, [][]byte, error) {
	if len(ed) < 7 {
		return 0, nil, fmt.Errorf("avcC record of %d bytes is shorter than 7", len(ed))
	}
	lengthSize := int(ed[4]&3) + 1
	var params [][]byte
	pos := 5
	for _, countMask := range []byte{0x1f, 0xff} {
		if pos >= len(ed) {
			return 0, nil, fmt.Errorf("avcC record of %d bytes ends before its parameter set count", len(ed))
		}
		count := int(ed[pos] & countMask)
		pos++
		for range count {
			n, next, err := decReadSized(ed, pos)
			if err != nil {
				return 0, nil, fmt.Errorf("avcC record: %w", err)
			}
			params = append(params, n)
			pos = next
		}
	}
	return lengthSize, params, nil
}

// decParseHVCC reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1): the NAL length size and the VPS, SPS, PPS and SEI it carries.
func decParseHVCC(ed []byte) (int, [][]byte, error) {
	if len(ed) < 23 {
		return 0, nil, fmt.Errorf("hvcC record of %d bytes is shorter than 23", len(ed))
	}
	lengthSize := int(ed[21]&3) + 1
	arrays := int(ed[22])
	var params [][]byte
	pos := 23
	for a := range arrays {
		if pos+3 > len(ed) {
			return 0, nil, fmt.Errorf("hvcC record of %d bytes ends in array %d header", len(ed), a)
		}
		count := int(binary.BigEndian.Uint16(ed[pos+1:]))
		pos += 3
		for range count {
			n, next, err := decReadSized(ed, pos)
			if err != nil {
				return 0, nil, fmt.Errorf("hvcC record array %d: %w", a, err)
			}
			params = append(params, n)
			pos = next
		}
	}
	return lengthSize, params, nil
}

// decReadSized reads a NAL unit with a 16-bit length prefix at pos.
func decReadSized(b []byte, pos int) ([]byte, int, error) {
	if pos+2 > len(b) {
		return nil, 0, fmt.Errorf("length at byte %d runs past the %d-byte record", pos, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[pos:]))
	pos += 2
	if pos+n > len(b) {
		return nil, 0, fmt.Errorf("NAL unit of %d bytes at byte %d runs past the %d-byte record", n, pos, len(b))
	}
	return b[pos : pos+n], pos + n, nil
}

// decSplitLengthPrefixed splits a packet of NAL units each preceded by its
// size in lengthSize big-endian bytes.
func decSplitLengthPrefixed(data []byte, lengthSize int) ([][]byte, error) {
	var nalus [][]byte
	for pos := 0; pos < len(data); {
		if pos+lengthSize > len(data) {
			return nil, fmt.Errorf("%d-byte NAL length at byte %d runs past the %d-byte packet", lengthSize, pos, len(data))
		}
		n := 0
		for _, b := range data[pos : pos+lengthSize] {
			n = n<<8 | int(b)
		}
		pos += lengthSize
		if n > len(data)-pos {
			return nil, fmt.Errorf("NAL unit of %d bytes at byte %d runs past the %d-byte packet", n, pos, len(data))
		}
		if n > 0 {
			nalus = append(nalus, data[pos:pos+n])
		}
		pos += n
	}
	if len(nalus) == 0 {
		return nil, errDecNoNALUs
	}
	return nalus, nil
}

// decIsParamSet reports whether n is a parameter set: SPS or PPS for
// H.264, VPS, SPS or PPS for H.265.
func decIsParamSet(codec Codec, n []byte) bool {
	if len(n) == 0 {
		return false
	}
	if codec == CodecH264 {
		t := h264.NALUType(n[0] & 0x1f)
		return t == h264.NALUTypeSPS || t == h264.NALUTypePPS
	}
	t := h265.NALUType((n[0] >> 1) & 0x3f)
	return t == h265.NALUType_VPS_NUT || t == h265.NALUType_SPS_NUT || t == h265.NALUType_PPS_NUT
}
