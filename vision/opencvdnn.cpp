// flowwatch's OpenCV DNN shim: loading and running an ONNX network with
// every OpenCV exception caught and turned into an error message. gocv's own
// DNN wrappers let cv::Exception escape into Go, which aborts the process,
// so a corrupt model file or an input of the wrong shape would take
// flowwatch down instead of being refused.
#include "opencvdnn.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

struct fw_dnn {
    cv::dnn::Net net;
    std::string in_name;
    std::string out_name;
    // out keeps the last output alive until the next forward.
    cv::Mat out;
};

static char *fw_error(const std::string &msg) {
    char *s = static_cast<char *>(std::malloc(msg.size() + 1));
    if (s != nullptr) {
        std::memcpy(s, msg.c_str(), msg.size() + 1);
    }
    return s;
}

static char *fw_error(const std::exception &e) {
    std::string msg = e.what();
    // cv::Exception's message starts with a newline and the OpenCV version.
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) {
        msg.pop_back();
    }
    while (!msg.empty() && (msg.front() == '\n' || msg.front() == ' ')) {
        msg.erase(0, 1);
    }
    return fw_error(msg);
}

int fw_dnn_cuda_available(void) {
    try {
        return cv::dnn::getAvailableTargets(cv::dnn::DNN_BACKEND_CUDA).empty() ? 0 : 1;
    } catch (...) {
        return 0;
    }
}

char *fw_dnn_open(const char *path, int backend, int target,
                  const char *in_name, const char *out_name, fw_dnn **out) {
    *out = nullptr;
    fw_dnn *d = nullptr;
    try {
        d = new fw_dnn();
        d->net = cv::dnn::readNetFromONNX(path);
        if (d->net.empty()) {
            delete d;
            return fw_error("the network has no layers");
        }
        d->in_name = in_name;
        d->out_name = out_name;
        if (!d->in_name.empty()) {
            // Layer 0 is the network's input layer; its outputs are the
            // model's inputs.
            cv::Ptr<cv::dnn::Layer> input = d->net.getLayer(0);
            if (input.empty() || input->outputNameToIndex(d->in_name) < 0) {
                delete d;
                return fw_error("the model has no input \"" + std::string(in_name) + "\"");
            }
        }
        if (!d->out_name.empty() && d->net.getLayerId(d->out_name) < 0) {
            delete d;
            return fw_error("the model has no output \"" + std::string(out_name) + "\"");
        }
        d->net.setPreferableBackend(backend);
        d->net.setPreferableTarget(target);
    } catch (const std::exception &e) {
        delete d;
        return fw_error(e);
    } catch (...) {
        delete d;
        return fw_error("unknown C++ exception");
    }
    *out = d;
    return nullptr;
}

char *fw_dnn_forward(fw_dnn *d, const float *data, const int *dims, int ndims,
                     const float **out, int *out_dims, int *out_ndims) {
    *out = nullptr;
    *out_ndims = 0;
    if (ndims < 1 || ndims > fw_dnn_max_rank) {
        return fw_error("input rank " + std::to_string(ndims) + " is outside 1.." +
                        std::to_string(fw_dnn_max_rank));
    }
    try {
        // A header over the caller's data: setInput copies it into the
        // network, so nothing keeps the pointer after this call.
        cv::Mat blob(ndims, dims, CV_32F, const_cast<float *>(data));
        d->net.setInput(blob, d->in_name);
        cv::Mat res = d->out_name.empty() ? d->net.forward() : d->net.forward(d->out_name);
        if (res.type() != CV_32F) {
            return fw_error("the output's element type is " + cv::typeToString(res.type()) +
                            ", want 32-bit float");
        }
        if (res.dims > fw_dnn_max_rank) {
            return fw_error("the output's rank " + std::to_string(res.dims) + " is above " +
                            std::to_string(fw_dnn_max_rank));
        }
        d->out = res.isContinuous() ? res : res.clone();
    } catch (const std::exception &e) {
        return fw_error(e);
    } catch (...) {
        return fw_error("unknown C++ exception");
    }
    *out_ndims = d->out.dims;
    for (int i = 0; i < d->out.dims; i++) {
        out_dims[i] = d->out.size[i];
    }
    *out = d->out.ptr<float>();
    return nullptr;
}

void fw_dnn_close(fw_dnn *d) {
    delete d;
}
