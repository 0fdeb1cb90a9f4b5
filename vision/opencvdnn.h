// C interface of flowwatch's OpenCV DNN shim (opencvdnn.cpp), used by
// opencvdnn.go. Every call that can fail returns NULL on success or an error
// message allocated with malloc, which the caller frees; no C++ exception
// leaves the shim.
#ifndef FLOWWATCH_VISION_OPENCVDNN_H
#define FLOWWATCH_VISION_OPENCVDNN_H

#ifdef __cplusplus
extern "C" {
#endif

// fw_dnn is one loaded network with its last output.
typedef struct fw_dnn fw_dnn;

// fw_dnn_max_rank is the most dimensions an input or output may have.
enum { fw_dnn_max_rank = 8 };

// fw_dnn_open reads the ONNX model at path and prepares it for backend and
// target (cv::dnn::Backend and cv::dnn::Target values). in_name and out_name
// may be empty: the network's first input and its last layer's output. On
// success *out holds the network.
char *fw_dnn_open(const char *path, int backend, int target,
                  const char *in_name, const char *out_name, fw_dnn **out);

// fw_dnn_forward runs the network on the float32 tensor data of shape
// dims[0..ndims). On success *out points at the output's data, which stays
// valid until the next fw_dnn_forward or fw_dnn_close, and out_dims[0..
// *out_ndims) holds its shape.
char *fw_dnn_forward(fw_dnn *d, const float *data, const int *dims, int ndims,
                     const float **out, int *out_dims, int *out_ndims);

// fw_dnn_close frees the network.
void fw_dnn_close(fw_dnn *d);

// fw_dnn_cuda_available reports whether this OpenCV build can run networks
// on a CUDA device present on this machine.
int fw_dnn_cuda_available(void);

#ifdef __cplusplus
}
#endif

#endif
