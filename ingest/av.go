package ingest

/*
#cgo pkg-config: libavcodec libavformat libavutil libswscale
#include <stdlib.h>
#include <libavutil/error.h>
#include "av.h"
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unsafe"
)

// avLogLine receives libav's warnings and errors, from any thread, and logs
// them with slog, URL passwords hidden: errors at Warn (what matters comes back as an error from
// the call as well), warnings at Debug.
//
//export avLogLine
func avLogLine(level C.int, line *C.char) {
	text := RedactURL(strings.TrimSpace(C.GoString(line)))
	if text == "" {
		return
	}
	lvl := slog.LevelDebug
	if level <= C.AV_LOG_ERROR {
		lvl = slog.LevelWarn
	}
	slog.Log(context.Background(), lvl, "libav", "line", text)
}

// avNoPTS is libav's "no timestamp" value (AV_NOPTS_VALUE).
const avNoPTS = -1 << 63

// avError is an error code returned by libav.
type avError int

// Error is libav's own description of the code.
func (e avError) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	if C.av_strerror(C.int(e), &buf[0], C.size_t(len(buf))) < 0 {
		return fmt.Sprintf("libav error %d", int(e))
	}
	return C.GoString(&buf[0])
}

// avCodecID maps a Codec to libavcodec's codec id.
func avCodecID(codec Codec) (C.int, bool) {
	switch codec {
	case CodecH264:
		return C.AV_CODEC_ID_H264, true
	case CodecH265:
		return C.AV_CODEC_ID_HEVC, true
	}
	return 0, false
}

// avPicture describes a picture just taken out of an avDecoder.
type avPicture struct {
	width, height int
	key, corrupt  bool
	pts           int64 // avNoPTS when unknown
}

// avStatus says what avDecoder.receive found.
type avStatus int

// The outcomes of avDecoder.receive.
const (
	avGotPicture avStatus = iota // a picture is ready to convert
	avNeedInput                  // the decoder wants the next packet
	avDrained                    // the decoder has handed out everything after a drain
)

// avDecoder owns one C decoder. It is not safe for concurrent use.
type avDecoder struct {
	c *C.avdec
}

// avOpenDecoder opens a libavcodec decoder for codec whose packets carry
// timestamps in nanoseconds.
func avOpenDecoder(codec Codec, threads int) (*avDecoder, error) {
	id, ok := avCodecID(codec)
	if !ok {
		return nil, fmt.Errorf("open decoder: codec %q is not supported", codec)
	}
	var c *C.avdec
	if ret := C.avdec_open_id(&c, id, C.int(threads)); ret < 0 {
		return nil, fmt.Errorf("open %s decoder with %d threads: %w", codec, threads, avError(ret))
	}
	return &avDecoder{c: c}, nil
}

// avOpenDemuxDecoder opens a decoder for the video stream of m; its
// timestamps are in the stream's time base.
func avOpenDemuxDecoder(m *avDemuxer, threads int) (*avDecoder, error) {
	var c *C.avdec
	if ret := C.avdec_open_demux(&c, m.c, C.int(threads)); ret < 0 {
		return nil, avError(ret)
	}
	return &avDecoder{c: c}, nil
}

// name is the decoder's short name.
func (d *avDecoder) name() string {
	return C.GoString(C.avdec_codec_name(d.c))
}

// sendNALUs joins nalus with Annex-B start codes straight into the packet
// buffer and sends it with pts (nanoseconds).
func (d *avDecoder) sendNALUs(nalus [][]byte, pts int64) error {
	size := 0
	for _, n := range nalus {
		size += 4 + len(n)
	}
	p := C.avdec_packet(d.c, C.int(size))
	if p == nil {
		return avError(C.AVDEC_ENOMEM)
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(p)), size)
	pos := 0
	for _, n := range nalus {
		pos += copy(buf[pos:], []byte{0, 0, 0, 1})
		pos += copy(buf[pos:], n)
	}
	if ret := C.avdec_send(d.c, C.int64_t(pts)); ret < 0 {
		return avError(ret)
	}
	return nil
}

// sendDemuxed sends the packet m read last.
func (d *avDecoder) sendDemuxed(m *avDemuxer) error {
	if ret := C.avdec_send_demuxed(d.c, m.c); ret < 0 {
		return avError(ret)
	}
	return nil
}

// drain tells the decoder that no more packets come.
func (d *avDecoder) drain() error {
	if ret := C.avdec_drain(d.c); ret < 0 && ret != C.AVDEC_EOF {
		return avError(ret)
	}
	return nil
}

// receive takes the next picture out of the decoder.
func (d *avDecoder) receive() (avPicture, avStatus, error) {
	var pic C.avdec_picture
	switch ret := C.avdec_receive(d.c, &pic); {
	case ret == C.AVDEC_EAGAIN:
		return avPicture{}, avNeedInput, nil
	case ret == C.AVDEC_EOF:
		return avPicture{}, avDrained, nil
	case ret < 0:
		return avPicture{}, avNeedInput, avError(ret)
	}
	return avPicture{
		width:   int(pic.width),
		height:  int(pic.height),
		key:     pic.key != 0,
		corrupt: pic.corrupt != 0,
		pts:     int64(pic.pts),
	}, avGotPicture, nil
}

// convert writes the picture last received into f, scaled to f's size, as
// packed BGR24. libswscale writes into f.Pix directly.
func (d *avDecoder) convert(f *Frame) error {
	if len(f.Pix) < f.Stride*f.Height || f.Stride < 3*f.Width || f.Width <= 0 || f.Height <= 0 {
		return fmt.Errorf("convert picture into %dx%d frame with stride %d and %d bytes: buffer too small",
			f.Width, f.Height, f.Stride, len(f.Pix))
	}
	ret := C.avdec_convert(d.c, (*C.uint8_t)(unsafe.Pointer(&f.Pix[0])), C.int(f.Stride), C.int(f.Width), C.int(f.Height))
	if ret < 0 {
		return fmt.Errorf("convert picture to %dx%d BGR24: %w", f.Width, f.Height, avError(ret))
	}
	return nil
}

// reset drops everything buffered in the decoder and makes it accept
// packets again after a drain.
func (d *avDecoder) reset() {
	C.avdec_reset(d.c)
}

// close frees the decoder; later calls do nothing.
func (d *avDecoder) close() {
	C.avdec_close(d.c)
	d.c = nil
}

// avStreamInfo describes the video stream an avDemuxer reads.
type avStreamInfo struct {
	width, height int
	codec         Codec // empty for codecs other than H.264 and H.265
	codecName     string
	formatName    string
	fpsNum        int
	fpsDen        int
	tbNum, tbDen  int64
	start         int64 // avNoPTS when unknown
	frames        int64
	duration      time.Duration
	extradata     []byte // copied into Go memory
}

// toDuration converts ts in the stream time base, counted from the stream
// start, to a duration.
func (i *avStreamInfo) toDuration(ts int64) time.Duration {
	if i.start != avNoPTS {
		ts -= i.start
	}
	if i.tbDen == 0 {
		return 0
	}
	// ts*num*1e9/den without overflow for any realistic timestamp.
	sec := ts * i.tbNum / i.tbDen
	rem := ts*i.tbNum - sec*i.tbDen
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/i.tbDen)
}

// frameDuration is the nominal time between frames, 0 when the rate is
// unknown.
func (i *avStreamInfo) frameDuration() time.Duration {
	if i.fpsNum <= 0 || i.fpsDen <= 0 {
		return 0
	}
	return time.Duration(int64(time.Second) * int64(i.fpsDen) / int64(i.fpsNum))
}

// avPacket is a view of the packet an avDemuxer read last; data points into
// C memory and stays valid until the next read or close.
type avPacket struct {
	data          []byte
	key           bool
	pts, dts, dur int64
	pos           int64
}

// avDemuxer owns one C demuxer. It is not safe for concurrent use, except
// that a context ending aborts a blocking call.
type avDemuxer struct {
	c    *C.avdemux
	info avStreamInfo
}

// avOpenDemuxer opens url (a path or anything libavformat reads) with
// libavformat options; ctx ending aborts the opening.
func avOpenDemuxer(ctx context.Context, url string, options map[string]string) (*avDemuxer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := &avDemuxer{c: C.avdemux_alloc()}
	if m.c == nil {
		return nil, avError(C.AVDEC_ENOMEM)
	}
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))
	n := len(options)
	var keys, vals **C.char
	if n > 0 {
		keys = (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
		vals = (**C.char)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(keys))
		defer C.free(unsafe.Pointer(vals))
		ks := unsafe.Slice(keys, n)
		vs := unsafe.Slice(vals, n)
		i := 0
		for k, v := range options {
			ks[i] = C.CString(k)
			vs[i] = C.CString(v)
			i++
		}
		defer func() {
			for i := range n {
				C.free(unsafe.Pointer(ks[i]))
				C.free(unsafe.Pointer(vs[i]))
			}
		}()
	}
	var ret C.int
	m.abortOn(ctx, func() { ret = C.avdemux_open(m.c, curl, keys, vals, C.int(n)) })
	if ret < 0 {
		C.avdemux_close(m.c)
		if ret == C.AVDEC_EXIT && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, avError(ret)
	}
	var ci C.avdemux_info
	C.avdemux_get_info(m.c, &ci)
	m.info = avStreamInfo{
		width:      int(ci.width),
		height:     int(ci.height),
		codecName:  C.GoString(ci.codec_name),
		formatName: C.GoString(ci.format_name),
		fpsNum:     int(ci.fps_num),
		fpsDen:     int(ci.fps_den),
		tbNum:      int64(ci.tb_num),
		tbDen:      int64(ci.tb_den),
		start:      int64(ci.start),
		frames:     int64(ci.frames),
		duration:   time.Duration(ci.duration_us) * time.Microsecond,
	}
	switch ci.codec_id {
	case C.AV_CODEC_ID_H264:
		m.info.codec = CodecH264
	case C.AV_CODEC_ID_HEVC:
		m.info.codec = CodecH265
	}
	if ci.extradata_size > 0 {
		m.info.extradata = C.GoBytes(unsafe.Pointer(ci.extradata), ci.extradata_size)
	}
	return m, nil
}

// abortOn runs call, turning the demuxer's abort flag on if ctx ends
// meanwhile.
func (m *avDemuxer) abortOn(ctx context.Context, call func()) {
	if ctx.Done() == nil {
		call()
		return
	}
	C.avdemux_set_abort(m.c, 0)
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.avdemux_set_abort(m.c, 1)
		close(aborted)
	})
	call()
	if !stop() {
		// ctx ended: wait for the flag to be set, then clear it so that
		// the next call starts clean.
		<-aborted
		C.avdemux_set_abort(m.c, 0)
	}
}

// read reads the next packet of the video stream; io.EOF at the end.
func (m *avDemuxer) read(ctx context.Context) (avPacket, error) {
	if err := ctx.Err(); err != nil {
		return avPacket{}, err
	}
	var p C.avdemux_packet
	var ret C.int
	m.abortOn(ctx, func() { ret = C.avdemux_read(m.c, &p) })
	switch {
	case ret == C.AVDEC_EOF:
		return avPacket{}, io.EOF
	case ret == C.AVDEC_EXIT && ctx.Err() != nil:
		return avPacket{}, ctx.Err()
	case ret < 0:
		return avPacket{}, avError(ret)
	}
	var data []byte
	if p.size > 0 {
		data = unsafe.Slice((*byte)(unsafe.Pointer(p.data)), int(p.size))
	}
	return avPacket{
		data: data,
		key:  p.key != 0,
		pts:  int64(p.pts),
		dts:  int64(p.dts),
		dur:  int64(p.duration),
		pos:  int64(p.pos),
	}, nil
}

// close frees the demuxer; later calls do nothing.
func (m *avDemuxer) close() {
	C.avdemux_close(m.c)
	m.c = nil
}
