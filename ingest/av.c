// The C side of ingest's libav layer; see av.h.

#include "av.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "_cgo_export.h"

// avlog_forward hands libav's warnings and errors to Go (avLogLine), one
// line per message; less severe messages are dropped here.
static void avlog_forward(void *avcl, int level, const char *fmt, va_list vl) {
	if (level > AV_LOG_WARNING) {
		return;
	}
	char line[1024];
	int print_prefix = 1;
	if (av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix) < 0) {
		return;
	}
	avLogLine(level, line);
}

static pthread_once_t avlog_once = PTHREAD_ONCE_INIT;

static void avlog_setup(void) {
	av_log_set_callback(avlog_forward);
}

void avlog_install(void) {
	pthread_once(&avlog_once, avlog_setup);
}

struct avdec {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVFrame *frame;
	struct SwsContext *sws;
	// What sws was made for; a picture that differs needs a new one.
	int sws_src_w, sws_src_h, sws_src_fmt, sws_full_range, sws_colorspace;
	int sws_dst_w, sws_dst_h;
};

// Messages libavcodec logs about a decoder's own input are returned as
// errors instead; this offset moves them below the default log level.
#define AVDEC_LOG_LEVEL_OFFSET (AV_LOG_VERBOSE - AV_LOG_ERROR)

// Pictures larger than 8K UHD are refused: such sizes come from damaged
// parameter sets, and would cost hundreds of megabytes per frame.
#define AVDEC_MAX_PIXELS (7680 * 4320)

static int avdec_open_with(avdec **out, const AVCodec *codec,
	const AVCodecParameters *par, AVRational pkt_timebase, int threads) {
	*out = NULL;
	avlog_install();
	if (!codec) {
		return AVERROR_DECODER_NOT_FOUND;
	}
	avdec *d = calloc(1, sizeof(*d));
	if (!d) {
		return AVERROR(ENOMEM);
	}
	d->ctx = avcodec_alloc_context3(codec);
	d->pkt = av_packet_alloc();
	d->frame = av_frame_alloc();
	if (!d->ctx || !d->pkt || !d->frame) {
		avdec_close(d);
		return AVERROR(ENOMEM);
	}
	int ret;
	if (par) {
		ret = avcodec_parameters_to_context(d->ctx, par);
		if (ret < 0) {
			avdec_close(d);
			return ret;
		}
	}
	d->ctx->pkt_timebase = pkt_timebase;
	d->ctx->thread_count = threads > 0 ? threads : 1;
	d->ctx->log_level_offset = AVDEC_LOG_LEVEL_OFFSET;
	d->ctx->max_pixels = AVDEC_MAX_PIXELS;
	ret = avcodec_open2(d->ctx, codec, NULL);
	if (ret < 0) {
		avdec_close(d);
		return ret;
	}
	*out = d;
	return 0;
}

int avdec_open_id(avdec **out, int codec_id, int threads) {
	return avdec_open_with(out, avcodec_find_decoder(codec_id), NULL,
		(AVRational){1, 1000000000}, threads);
}

uint8_t *avdec_packet(avdec *d, int size) {
	av_packet_unref(d->pkt);
	if (av_new_packet(d->pkt, size) < 0) {
		return NULL;
	}
	return d->pkt->data;
}

int avdec_send(avdec *d, int64_t pts) {
	d->pkt->pts = pts;
	d->pkt->dts = AV_NOPTS_VALUE;
	int ret = avcodec_send_packet(d->ctx, d->pkt);
	av_packet_unref(d->pkt);
	return ret;
}

int avdec_drain(avdec *d) {
	return avcodec_send_packet(d->ctx, NULL);
}

int avdec_receive(avdec *d, avdec_picture *pic) {
	int ret = avcodec_receive_frame(d->ctx, d->frame);
	if (ret < 0) {
		return ret;
	}
	AVFrame *f = d->frame;
	pic->width = f->width;
	pic->height = f->height;
	pic->key = f->key_frame;
	pic->corrupt = (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags;
	pic->pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
	return 0;
}

// avdec_plain_format maps the deprecated full-range "J" formats to their
// plain twins (libswscale warns about the J ones) and says whether the
// samples are full range.
static enum AVPixelFormat avdec_plain_format(const AVFrame *f, int *full_range) {
	*full_range = f->color_range == AVCOL_RANGE_JPEG;
	switch (f->format) {
	case AV_PIX_FMT_YUVJ420P: *full_range = 1; return AV_PIX_FMT_YUV420P;
	case AV_PIX_FMT_YUVJ422P: *full_range = 1; return AV_PIX_FMT_YUV422P;
	case AV_PIX_FMT_YUVJ444P: *full_range = 1; return AV_PIX_FMT_YUV444P;
	case AV_PIX_FMT_YUVJ440P: *full_range = 1; return AV_PIX_FMT_YUV440P;
	case AV_PIX_FMT_YUVJ411P: *full_range = 1; return AV_PIX_FMT_YUV411P;
	default: return f->format;
	}
}

static int avdec_sws(avdec *d, int dst_w, int dst_h) {
	const AVFrame *f = d->frame;
	int full_range;
	enum AVPixelFormat fmt = avdec_plain_format(f, &full_range);
	int colorspace = f->colorspace;
	if (d->sws && d->sws_src_w == f->width && d->sws_src_h == f->height &&
		d->sws_src_fmt == fmt && d->sws_full_range == full_range &&
		d->sws_colorspace == colorspace && d->sws_dst_w == dst_w && d->sws_dst_h == dst_h) {
		return 0;
	}
	sws_freeContext(d->sws);
	d->sws = sws_getContext(f->width, f->height, fmt, dst_w, dst_h, AV_PIX_FMT_BGR24,
		SWS_BILINEAR, NULL, NULL, NULL);
	if (!d->sws) {
		return AVERROR(EINVAL);
	}
	if (full_range || (colorspace != AVCOL_SPC_UNSPECIFIED && colorspace != AVCOL_SPC_RGB)) {
		int *inv, *table, src_range, dst_range, brightness, contrast, saturation;
		if (sws_getColorspaceDetails(d->sws, &inv, &src_range, &table, &dst_range,
				&brightness, &contrast, &saturation) >= 0) {
			const int *coefs = inv;
			if (colorspace != AVCOL_SPC_UNSPECIFIED && colorspace != AVCOL_SPC_RGB) {
				coefs = sws_getCoefficients(colorspace);
			}
			sws_setColorspaceDetails(d->sws, coefs, full_range, table, dst_range,
				brightness, contrast, saturation);
		}
	}
	d->sws_src_w = f->width;
	d->sws_src_h = f->height;
	d->sws_src_fmt = fmt;
	d->sws_full_range = full_range;
	d->sws_colorspace = colorspace;
	d->sws_dst_w = dst_w;
	d->sws_dst_h = dst_h;
	return 0;
}

int avdec_convert(avdec *d, uint8_t *dst, int stride, int width, int height) {
	if (!d->frame->data[0]) {
		return AVERROR(EINVAL);
	}
	int ret = avdec_sws(d, width, height);
	if (ret < 0) {
		return ret;
	}
	uint8_t *planes[4] = {dst, NULL, NULL, NULL};
	int strides[4] = {stride, 0, 0, 0};
	ret = sws_scale(d->sws, (const uint8_t *const *)d->frame->data, d->frame->linesize,
		0, d->frame->height, planes, strides);
	return ret == height ? 0 : AVERROR(EINVAL);
}

void avdec_reset(avdec *d) {
	avcodec_flush_buffers(d->ctx);
	av_frame_unref(d->frame);
}

const char *avdec_codec_name(const avdec *d) {
	return d->ctx->codec ? d->ctx->codec->name : "";
}

void avdec_close(avdec *d) {
	if (!d) {
		return;
	}
	sws_freeContext(d->sws);
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	avcodec_free_context(&d->ctx);
	free(d);
}

struct avdemux {
	AVFormatContext *fmt;
	AVPacket *pkt;
	int stream;
	int opened; // avformat_open_input succeeded
	int abort;
};

static int avdemux_interrupted(void *opaque) {
	avdemux *m = opaque;
	return __atomic_load_n(&m->abort, __ATOMIC_RELAXED);
}

avdemux *avdemux_alloc(void) {
	avlog_install();
	avdemux *m = calloc(1, sizeof(*m));
	if (!m) {
		return NULL;
	}
	m->pkt = av_packet_alloc();
	m->fmt = avformat_alloc_context();
	if (!m->pkt || !m->fmt) {
		avformat_free_context(m->fmt);
		m->fmt = NULL;
		avdemux_close(m);
		return NULL;
	}
	m->fmt->interrupt_callback.callback = avdemux_interrupted;
	m->fmt->interrupt_callback.opaque = m;
	return m;
}

int avdemux_open(avdemux *m, const char *url, char **keys, char **vals, int nopts) {
	AVDictionary *opts = NULL;
	for (int i = 0; i < nopts; i++) {
		av_dict_set(&opts, keys[i], vals[i], 0);
	}
	// On failure avformat_open_input frees the context and clears m->fmt.
	int ret = avformat_open_input(&m->fmt, url, NULL, &opts);
	av_dict_free(&opts);
	if (ret < 0) {
		return ret;
	}
	m->opened = 1;
	ret = avformat_find_stream_info(m->fmt, NULL);
	if (ret < 0) {
		return ret;
	}
	ret = av_find_best_stream(m->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (ret < 0) {
		return ret;
	}
	m->stream = ret;
	for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
		if ((int)i != m->stream) {
			m->fmt->streams[i]->discard = AVDISCARD_ALL;
		}
	}
	return 0;
}

void avdemux_get_info(const avdemux *m, avdemux_info *info) {
	const AVStream *st = m->fmt->streams[m->stream];
	const AVCodecParameters *par = st->codecpar;
	memset(info, 0, sizeof(*info));
	info->width = par->width;
	info->height = par->height;
	info->codec_id = par->codec_id;
	info->codec_name = avcodec_get_name(par->codec_id);
	AVRational fps = st->avg_frame_rate;
	if (fps.num <= 0 || fps.den <= 0) {
		fps = st->r_frame_rate;
	}
	if (fps.num > 0 && fps.den > 0) {
		info->fps_num = fps.num;
		info->fps_den = fps.den;
	}
	info->tb_num = st->time_base.num;
	info->tb_den = st->time_base.den;
	info->start = st->start_time;
	info->frames = st->nb_frames > 0 ? st->nb_frames : 0;
	if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
		info->duration_us = av_rescale_q(st->duration, st->time_base, AV_TIME_BASE_Q);
	} else if (m->fmt->duration != AV_NOPTS_VALUE && m->fmt->duration > 0) {
		info->duration_us = m->fmt->duration;
	}
	info->extradata = par->extradata;
	info->extradata_size = par->extradata_size;
	info->format_name = m->fmt->iformat ? m->fmt->iformat->name : "";
}

int avdemux_read(avdemux *m, avdemux_packet *out) {
	for (;;) {
		av_packet_unref(m->pkt);
		int ret = av_read_frame(m->fmt, m->pkt);
		if (ret < 0) {
			return ret;
		}
		if (m->pkt->stream_index != m->stream) {
			continue;
		}
		out->data = m->pkt->data;
		out->size = m->pkt->size;
		out->key = (m->pkt->flags & AV_PKT_FLAG_KEY) != 0;
		out->pts = m->pkt->pts;
		out->dts = m->pkt->dts;
		out->duration = m->pkt->duration;
		out->pos = m->pkt->pos;
		return 0;
	}
}

void avdemux_set_abort(avdemux *m, int on) {
	__atomic_store_n(&m->abort, on, __ATOMIC_RELAXED);
}

void avdemux_close(avdemux *m) {
	if (!m) {
		return;
	}
	if (m->opened) {
		avformat_close_input(&m->fmt);
	} else {
		avformat_free_context(m->fmt);
	}
	av_packet_free(&m->pkt);
	free(m);
}

int avdec_open_demux(avdec **out, const avdemux *m, int threads) {
	const AVStream *st = m->fmt->streams[m->stream];
	return avdec_open_with(out, avcodec_find_decoder(st->codecpar->codec_id),
		st->codecpar, st->time_base, threads);
}

int avdec_send_demuxed(avdec *d, avdemux *m) {
	return avcodec_send_packet(d->ctx, m->pkt);
}
