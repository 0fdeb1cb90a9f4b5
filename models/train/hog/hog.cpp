// OpenCV's HOG people detector called directly, not through gocv: gocv
// v0.31's HOGDefaultPeopleDetector wraps the std::vector that
// cv::HOGDescriptor::getDefaultPeopleDetector returns in a cv::Mat without
// copying it, so the SVM weights it hands over are freed memory (the detector
// then fires everywhere and grouping leaves one rectangle a frame).
#include <opencv2/objdetect.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>
#include "hog.h"

struct HogCounter {
    cv::HOGDescriptor hog;
};

void *hog_new() {
    HogCounter *h = new HogCounter();
    h->hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
    return h;
}

void hog_free(void *p) { delete (HogCounter *)p; }

int hog_count(void *p, unsigned char *bgr, int w, int h, int step, double upscale, int stride) {
    HogCounter *hc = (HogCounter *)p;
    cv::Mat img(h, w, CV_8UC3, bgr, step);
    cv::Mat src = img;
    cv::Mat big;
    if (upscale != 1.0) {
        cv::resize(img, big, cv::Size(), upscale, upscale, cv::INTER_LINEAR);
        src = big;
    }
    std::vector<cv::Rect> found;
    hc->hog.detectMultiScale(src, found, 0, cv::Size(stride, stride), cv::Size(8, 8), 1.05, 2, false);
    return (int)found.size();
}
