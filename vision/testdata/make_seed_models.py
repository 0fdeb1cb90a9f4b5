#!/usr/bin/python3
"""Writes the ONNX files that seed FuzzReadModelIO and test ReadModelIO on
shapes the other test models lack.

Run it with Debian's python3 (the one with python3-torch) from any directory:

    /usr/bin/python3 vision/testdata/make_seed_models.py

Weights come from a fixed seed; the files are a few KB and checked in, so
the tests never need torch.

  seed_nhwc_initializer_inputs.onnx
      input "image" float32 [1,32,48,3] (NHWC, every size fixed), output
      "map" float32 [1,8,12,1]; exported the old way, with every weight
      also listed as a graph input (keep_initializers_as_inputs), which
      ReadModelIO must leave out.
  seed_yolox_two_outputs.onnx
      input "images" float32 [batch,3,64,64], outputs "output" float32
      [batch,64,7] (YOLOX layout: 4 box values, objectness and 2 class
      scores for each of the 64 anchors of one stride-8 grid) and "aux"
      int64 [batch]: a second output of another type.
"""

import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


class NHWCDensity(nn.Module):
    """A 4x-downsampling density head fed NHWC images."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)
        self.pool = nn.AvgPool2d(4)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        x = self.pool(torch.relu(self.conv(x)))
        return torch.relu(self.head(x)).permute(0, 2, 3, 1)


class YOLOXTwoOutputs(nn.Module):
    """A YOLOX-shaped output [N, anchors, 5+classes] and an int64 side
    output."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 7, 8, stride=8)

    def forward(self, x):
        y = self.conv(x).flatten(2).transpose(1, 2)
        return y, (y.sum(dim=(1, 2)) > 0).to(torch.int64)


def main():
    torch.manual_seed(7)
    m = NHWCDensity().eval()
    path = os.path.join(HERE, "seed_nhwc_initializer_inputs.onnx")
    torch.onnx.export(m, torch.rand(1, 32, 48, 3), path,
                      input_names=["image"], output_names=["map"],
                      keep_initializers_as_inputs=True, opset_version=11)
    print(f"{path}: {os.path.getsize(path)} bytes")

    torch.manual_seed(8)
    m = YOLOXTwoOutputs().eval()
    path = os.path.join(HERE, "seed_yolox_two_outputs.onnx")
    torch.onnx.export(m, torch.rand(1, 3, 64, 64), path,
                      input_names=["images"], output_names=["output", "aux"],
                      dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"},
                                    "aux": {0: "batch"}},
                      opset_version=13)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
