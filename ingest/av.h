// The C side of ingest's libav layer: a decoder (libavcodec + libswscale)
// and a demuxer (libavformat). av.go is the only Go file that calls these.

#ifndef FLOWWATCH_INGEST_AV_H
#define FLOWWATCH_INGEST_AV_H

#include <stdint.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

// Error codes the Go side compares against (AVERROR(EAGAIN) and friends are
// macros cgo cannot evaluate).
enum {
	AVDEC_EAGAIN = AVERROR(EAGAIN),
	AVDEC_EOF = AVERROR_EOF,
	AVDEC_EXIT = AVERROR_EXIT,
	AVDEC_ENOMEM = AVERROR(ENOMEM),
	AVDEC_EINVAL = AVERROR(EINVAL),
	AVDEC_DECODER_NOT_FOUND = AVERROR_DECODER_NOT_FOUND,
};

// avlog_install routes libav's log (process-wide, as libav's log is) to
// avLogLine in Go, once; opening a decoder or demuxer calls it.
void avlog_install(void);

// avdec decodes one video stream and converts its pictures to packed BGR24.
typedef struct avdec avdec;

// avdec_picture describes the picture avdec_receive just took out of the
// decoder.
typedef struct {
	int width, height;
	int key;         // the picture is a key frame
	int corrupt;     // libavcodec flagged the picture corrupt or concealed errors
	int64_t pts;     // AV_NOPTS_VALUE when unknown
} avdec_picture;

// avdec_open_id opens a decoder for codec id (AV_CODEC_ID_*) with the given
// number of threads; the packets it gets have timestamps in nanoseconds.
int avdec_open_id(avdec **out, int codec_id, int threads);
// avdec_packet returns a buffer of size bytes (with libavcodec's zero
// padding after it) for the next packet, or NULL when out of memory.
uint8_t *avdec_packet(avdec *d, int size);
// avdec_send sends the packet filled through avdec_packet, with pts.
int avdec_send(avdec *d, int64_t pts);
// avdec_drain tells the decoder that no more packets come, so it hands out
// the pictures it still holds.
int avdec_drain(avdec *d);
// avdec_receive takes the next decoded picture: 0, AVDEC_EAGAIN (send more),
// AVDEC_EOF (drained) or another error.
int avdec_receive(avdec *d, avdec_picture *pic);
// avdec_convert scales and converts the picture last received into dst,
// packed BGR24 of width x height with stride bytes per row.
int avdec_convert(avdec *d, uint8_t *dst, int stride, int width, int height);
// avdec_reset drops everything buffered in the decoder and leaves the
// draining state, so that packets can be sent again.
void avdec_reset(avdec *d);
// avdec_codec_name is the short name of the decoder ("h264", "hevc", ...).
const char *avdec_codec_name(const avdec *d);
// avdec_close frees the decoder; d may be NULL.
void avdec_close(avdec *d);

// avdemux reads the first video stream of anything libavformat opens.
typedef struct avdemux avdemux;

// avdemux_info describes the video stream avdemux reads.
typedef struct {
	int width, height;
	int codec_id;
	const char *codec_name;
	int fps_num, fps_den;   // 0/0 when unknown
	int tb_num, tb_den;     // time base of packet timestamps
	int64_t start;          // first timestamp in time base, AV_NOPTS_VALUE when unknown
	int64_t frames;         // 0 when unknown
	int64_t duration_us;    // 0 when unknown
	const uint8_t *extradata;
	int extradata_size;
	const char *format_name;
} avdemux_info;

// avdemux_packet is a view of the packet avdemux_read just read; it stays
// valid until the next avdemux_read or avdemux_close.
typedef struct {
	const uint8_t *data;
	int size;
	int key;
	int64_t pts, dts, duration; // in the stream time base; AV_NOPTS_VALUE when unknown
	int64_t pos;                // byte position in the input, -1 when unknown
} avdemux_packet;

// avdemux_alloc allocates a demuxer to open; NULL when out of memory.
avdemux *avdemux_alloc(void);
// avdemux_open opens url with nopts libavformat options (keys[i]=vals[i]) and
// finds its first video stream. Blocking steps return AVDEC_EXIT once
// avdemux_set_abort turned abort on.
int avdemux_open(avdemux *m, const char *url, char **keys, char **vals, int nopts);
// avdemux_get_info fills info about the video stream.
void avdemux_get_info(const avdemux *m, avdemux_info *info);
// avdemux_read reads the next packet of the video stream: 0, AVDEC_EOF or an
// error.
int avdemux_read(avdemux *m, avdemux_packet *pkt);
// avdemux_set_abort makes blocking reads return AVDEC_EXIT while on is 1;
// it may be called from any thread.
void avdemux_set_abort(avdemux *m, int on);
// avdemux_close frees the demuxer, opened or not; m may be NULL.
void avdemux_close(avdemux *m);

// avdec_open_demux opens a decoder for the video stream of m.
int avdec_open_demux(avdec **out, const avdemux *m, int threads);
// avdec_send_demuxed sends the packet m read last to d without copying it.
int avdec_send_demuxed(avdec *d, avdemux *m);

#endif
