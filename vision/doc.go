// Package vision turns decoded frames into people counts: model manifests,
// the Estimator interface with its backends (ONNX Runtime, OpenCV DNN, and a
// classic estimator that needs no model), pre- and post-processing, the
// scheduler that batches frames across cameras, zones with their masks and
// ground calibration, and heatmaps.
//
// vision takes frames from ingest and knows nothing of alerting or the
// console.
package vision
