#!/usr/bin/python3
"""Writes the small ONNX models that flowwatch's vision tests load.

Run it with Debian's python3 (the one with python3-torch) from any directory:

    /usr/bin/python3 vision/testdata/make_test_models.py

Every weight comes from a fixed seed, so the models are the same on every
run. The files are small enough to keep in the repository; the tests read the
checked-in copies and never need torch.

Each model NAME is written as NAME/NAME.onnx beside its manifest
NAME/model.yaml (the format of models/<name>/model.yaml). The broken models'
manifests describe a density model like density_tiny, which their ONNX files
contradict.

Models (float32 unless said, NCHW, opset 13):

  density_tiny.onnx        input "input" [N,3,H,W] (N, H, W dynamic; H and W
                           multiples of 4), output "density" [N,1,H/4,W/4],
                           non-negative (ReLU). Two 3x3 convolutions, each
                           followed by a 2x2 average pool, and a 1x1 head.
  detect_yolov8_tiny.onnx  input "input" [N,3,320,320] (N dynamic), output
                           "output" [N,6,2100]: YOLOv8's layout, rows
                           cx, cy, w, h (input pixels) and two class scores
                           (sigmoid), one column per anchor of the stride
                           8, 16 and 32 grids (1600 + 400 + 100).
  bad_int64_output.onnx    like density_tiny, but the output "density" is
                           int64.
  bad_rank.onnx            input "input" [3,H,W] (no batch axis), output
                           "density" [1,H/4,W/4].
  bad_channels.onnx        input "input" [N,1,H,W] (one channel), output
                           "density" [N,1,H/4,W/4].
"""

import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 13


class DensityTiny(nn.Module):
    """A small crowd-density network: the map has a quarter of the input's
    resolution and its cells are non-negative."""

    def __init__(self, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Conv2d(16, 1, 1)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.relu(self.head(x))


class DensityInt64(DensityTiny):
    """density_tiny with its map cast to int64."""

    def forward(self, x):
        return super().forward(x).mul(100.0).to(torch.int64)


class DensityNoBatch(DensityTiny):
    """density_tiny taking one CHW image without a batch axis."""

    def forward(self, x):
        return super().forward(x.unsqueeze(0)).squeeze(0)


class DetectYOLOv8Tiny(nn.Module):
    """A miniature YOLOv8-style person detector with a fixed 320x320 input.

    Three heads (strides 8, 16 and 32) predict, per grid cell, an offset of
    the box centre from the cell, the box size and two class scores; boxes
    are decoded in the graph into input pixels, as YOLOv8's exported models
    do, and the heads are concatenated along the anchor axis."""

    SIZE = 320
    STRIDES = (8, 16, 32)
    CLASSES = 2

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.down16 = nn.Sequential(nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
        self.down32 = nn.Sequential(nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
        outs = 4 + self.CLASSES
        self.heads = nn.ModuleList([nn.Conv2d(16, outs, 1) for _ in self.STRIDES])
        for i, s in enumerate(self.STRIDES):
            g = self.SIZE // s
            ys, xs = torch.meshgrid(torch.arange(g, dtype=torch.float32),
                                    torch.arange(g, dtype=torch.float32), indexing="ij")
            self.register_buffer(f"gx{i}", xs.reshape(1, g * g) - 0.5)
            self.register_buffer(f"gy{i}", ys.reshape(1, g * g) - 0.5)

    def forward(self, x):
        f8 = self.stem(x)
        f16 = self.down16(f8)
        f32 = self.down32(f16)
        parts = []
        for i, (feat, s) in enumerate(zip((f8, f16, f32), self.STRIDES)):
            g = self.SIZE // s
            p = self.heads[i](feat).reshape(-1, 4 + self.CLASSES, g * g)
            t = torch.sigmoid(p)
            # The grid constants have no batch axis ([1, anchors] against
            # [N, 1, anchors]), which OpenCV's importer turns into a bias
            # that broadcasts over the batch; a constant of the full rank
            # would become an element-wise sum that OpenCV 4.6 cannot
            # broadcast over a batch larger than one.
            cx = (t[:, 0:1] * 2.0 + getattr(self, f"gx{i}")) * s
            cy = (t[:, 1:2] * 2.0 + getattr(self, f"gy{i}")) * s
            # (2t)^2 as a product: OpenCV 4.6 mis-scales a Pow followed by
            # a Mul.
            wh2 = t[:, 2:4] * 2.0
            wh = wh2 * wh2 * (4.0 * s)
            parts.append(torch.cat([cx, cy, wh, t[:, 4:]], dim=1))
        return torch.cat(parts, dim=2)


def export(model, name, example, input_dyn, output_name, output_dyn):
    model.eval()
    os.makedirs(os.path.join(HERE, name), exist_ok=True)
    path = os.path.join(HERE, name, name + ".onnx")
    torch.onnx.export(
        model, example, path,
        input_names=["input"], output_names=[output_name],
        dynamic_axes={"input": input_dyn, output_name: output_dyn},
        opset_version=OPSET, do_constant_folding=True)
    print(f"{name}/{name}.onnx: {os.path.getsize(path)} bytes")


def manifest(name, text):
    with open(os.path.join(HERE, name, "model.yaml"), "w") as f:
        f.write(text.format(name=name))


# density_tiny's manifest; the broken models claim to be the same kind of
# model, so that loading them checks the ONNX file against it.
DENSITY_MANIFEST = """\
# Written by make_test_models.py.
name: {name}
file: {name}.onnx
task: density
input:
  name: input
  layout: NCHW
  multiple: 4
  color: RGB
  scale: 0.00392156862745098
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
output:
  name: density
  stride: 4
  sums_to_count: true
"""

DETECT_MANIFEST = """\
# Written by make_test_models.py.
name: {name}
file: {name}.onnx
task: detection
input:
  name: input
  layout: NCHW
  width: 320
  height: 320
  color: RGB
  scale: 0.00392156862745098
output:
  name: output
  format: yolov8
  box: cxcywh
  person_class: 0
  score_threshold: 0.25
  nms_threshold: 0.45
"""


def seeded(seed, cls, *args):
    torch.manual_seed(seed)
    m = cls(*args)
    if isinstance(m, DensityTiny):
        # A head with positive weights and bias keeps every cell above zero,
        # so that maps and their sums are never trivially zero.
        with torch.no_grad():
            m.head.weight.abs_().mul_(0.01)
            m.head.bias.fill_(0.001)
    return m


def main():
    nchw = {0: "n", 2: "h", 3: "w"}
    export(seeded(1, DensityTiny), "density_tiny",
           torch.rand(1, 3, 64, 96), nchw, "density", nchw)
    export(seeded(2, DetectYOLOv8Tiny), "detect_yolov8_tiny",
           torch.rand(1, 3, 320, 320), {0: "n"}, "output", {0: "n"})
    export(seeded(3, DensityInt64), "bad_int64_output",
           torch.rand(1, 3, 64, 96), nchw, "density", nchw)
    export(seeded(4, DensityNoBatch), "bad_rank",
           torch.rand(3, 64, 96), {1: "h", 2: "w"}, "density", {1: "h", 2: "w"})
    export(seeded(5, DensityTiny, 1), "bad_channels",
           torch.rand(1, 1, 64, 96), nchw, "density", nchw)
    for name in ("density_tiny", "bad_int64_output", "bad_rank", "bad_channels"):
        manifest(name, DENSITY_MANIFEST)
    manifest("detect_yolov8_tiny", DETECT_MANIFEST)


if __name__ == "__main__":
    main()
