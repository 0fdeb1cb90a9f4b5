#!/usr/bin/python3
"""Trains, exports and evaluates flowwatch's default crowd-density model.

Run with Debian's python3 (python3-torch 1.13, CPU) from the repository root:

    /usr/bin/python3 models/train/train.py all        # everything below, in order
    /usr/bin/python3 models/train/train.py data       # cutouts, composites, synth frames
    /usr/bin/python3 models/train/train.py train      # trains -> WORK/model.pt
    /usr/bin/python3 models/train/train.py export     # -> models/default/{model.onnx,model.yaml,reference_counts.json}
    /usr/bin/python3 models/train/train.py evaluate   # figures for MODEL_CARD.md

WORK (intermediate files) is /tmp/flowwatch-train unless --work says otherwise.
Every random choice comes from a fixed seed. See models/train/README.md.

Data rules (issue 4): only pedestrians cut out of vtest.avi frames 0-399 pasted
onto real backgrounds, plus frames of flowwatch's synthetic generator with seeds
other than the shipped samples'. vtest frames 400 and later are never read for
training; ../shared/annotations/vtest_counts.csv is read only by `evaluate`.
"""

import argparse
import csv
import glob
import json
import math
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(2)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = "/usr/share/doc/opencv-doc/examples/data"
VTEST = os.path.join(DATA, "vtest.avi")
VW, VH = 768, 576
TRAIN_LAST_VTEST_FRAME = 399
OUT_DIR = os.path.join(ROOT, "models", "default")
STRIDE = 8
MULTIPLE = 8
MAX_SIDE = 768
SCALE_TARGET = 100.0  # density maps are trained x100; the export divides it back
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# Backgrounds: photographs from Debian's opencv-doc (real scenes, no people).
BACKGROUND_PHOTOS = ["building.jpg", "home.jpg", "left01.jpg", "right01.jpg", "left.jpg",
                     "aero1.jpg", "leuvenA.jpg", "leuvenB.jpg", "box_in_scene.png",
                     "graf1.png", "ela_original.jpg", "fruits.jpg", "board.jpg"]
# Synthetic generator runs: (tag, preset, seed, min, max). The shipped samples
# are dense seed 2 and sparse seed 1; they are never used here.
SYNTH_RUNS = ([("d%d" % s, "dense", s, 0, 0) for s in (101, 102, 103, 104, 105, 106)] +
              [("s%d" % s, "sparse", s, 0, 0) for s in (111, 112, 113, 114)] +
              [("h%d" % s, "dense", s, 250, 400) for s in (121, 122, 123)] +
              [("l%d" % s, "dense", s, 20, 70) for s in (131, 132, 133)])
SYNTH_SECONDS, SYNTH_EVERY = 8, 8


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- decoding

def decode_video(path, w, h, first=0, count=None, vf=None):
    """Frames [first, first+count) of a video as uint8 [n,h,w,3] RGB."""
    cmd = ["ffmpeg", "-v", "error", "-i", path]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    size = w * h * 3
    frames = []
    i = 0
    while True:
        buf = p.stdout.read(size)
        if len(buf) < size:
            break
        if i >= first and (count is None or i < first + count):
            frames.append(np.frombuffer(buf, np.uint8).reshape(h, w, 3))
        i += 1
        if count is not None and i >= first + count:
            break
    p.stdout.close()
    p.kill()
    p.wait()
    return np.stack(frames)


def decode_image(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout.strip()
    w, h = [int(v) for v in out.split(",")[:2]]
    return decode_video(path, w, h)[0]


def to_t(img):
    """uint8 HxWx3 -> float [3,H,W] 0..255."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()


def resize_area(img, w, h):
    """Shrinks like OpenCV INTER_AREA (enlarges bilinearly)."""
    t = to_t(img)[None]
    if w <= img.shape[1] and h <= img.shape[0]:
        t = F.interpolate(t, size=(h, w), mode="area")
    else:
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return t[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- cutouts

def components(mask):
    """Connected components (8-neighbour) of a bool [H,W] mask by max-label propagation."""
    m = torch.from_numpy(mask)[None, None].float()
    idx = torch.arange(1, mask.size + 1, dtype=torch.float32).reshape(1, 1, *mask.shape)
    lab = idx * m
    for _ in range(2000):
        new = F.max_pool2d(lab, 3, 1, 1) * m
        if torch.equal(new, lab):
            break
        lab = new
    return lab[0, 0].long().numpy()


def build_cutouts(work):
    """Pedestrians cut out of vtest frames 0-399 by background subtraction."""
    log("decoding vtest frames 0..%d" % TRAIN_LAST_VTEST_FRAME)
    frames = decode_video(VTEST, VW, VH, 0, TRAIN_LAST_VTEST_FRAME + 1)
    assert len(frames) == TRAIN_LAST_VTEST_FRAME + 1
    bg = np.median(frames[::4], axis=0).astype(np.uint8)
    np.save(os.path.join(work, "vtest_background.npy"), bg)
    cut = []
    bgf = bg.astype(np.int16)
    for fi in range(0, TRAIN_LAST_VTEST_FRAME + 1, 3):
        f = frames[fi]
        lab = components(foreground(f, bgf, 28))
        for lid, y0, y1, x0, x1, hx in pedestrians(lab):
            h = y1 - y0
            pm = (lab[y0:y1, x0:x1] == lid).astype(np.float32)
            alpha = F.avg_pool2d(torch.from_numpy(pm)[None, None], 3, 1, 1)[0, 0].numpy()
            rgba = np.concatenate([f[y0:y1, x0:x1], (alpha * 255).astype(np.uint8)[..., None]], 2)
            cut.append({"rgba": rgba, "hx": hx, "hy": 0.07 * h, "frame": fi, "y1": int(y1)})
    log("cutouts: %d from %d frames" % (len(cut), len(range(0, TRAIN_LAST_VTEST_FRAME + 1, 3))))
    return bg, cut


# vtest frames counted in ../shared/annotations/vtest_counts.csv lie inside
# 0-399; real frames within this many frames of one are never trained on, so
# the annotated check is made on pictures the model has not seen (the
# pedestrians cut out for composites may still come from near them).
ANNOTATED_VTEST_FRAMES = range(0, 400, 50)
ANNOTATED_MARGIN = 12
REAL_EVERY = 2


def single_person(lab, lid, y0, y1, x0, x1):
    """Whether a foreground blob looks like exactly one upright pedestrian,
    whole and inside the frame; returns the head x in blob coordinates or None."""
    h, w = y1 - y0, x1 - x0
    area = int((lab[y0:y1, x0:x1] == lid).sum())
    if area < 500 or not (45 <= h <= 190 and 14 <= w <= 90 and 1.6 <= h / w <= 4.5):
        return None
    if area / (h * w) < 0.4 or y0 <= 1 or x0 <= 1 or x1 >= VW - 1 or y1 >= VH - 1:
        return None
    # head: the top rows of the blob must be narrower than the body
    top = lab[y0:y0 + max(3, h // 8), x0:x1] == lid
    mid = lab[y0 + h // 3:y0 + h // 2, x0:x1] == lid
    if top.sum(1).mean() > 0.9 * mid.sum(1).mean():
        return None
    return float(np.nonzero(top.any(0))[0].mean())


def pedestrians(lab):
    """The blobs of a label image that pass the one-pedestrian checks:
    (label, y0, y1, x0, x1, head x in blob coordinates) each."""
    for lid in np.unique(lab[lab > 0]):
        ys, xs = np.nonzero(lab == lid)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        hx = single_person(lab, lid, y0, y1, x0, x1)
        if hx is not None:
            yield lid, y0, y1, x0, x1, hx


def foreground(frame, bgf, threshold):
    """Foreground mask of a frame against the median background, opened then closed."""
    diff = np.abs(frame.astype(np.int16) - bgf).max(axis=2)
    fg = torch.from_numpy(diff > threshold)[None, None].float()
    fg = -F.max_pool2d(-fg, 3, 1, 1)
    fg = F.max_pool2d(fg, 3, 1, 1)
    fg = F.max_pool2d(fg, 7, 1, 3)
    fg = -F.max_pool2d(-fg, 7, 1, 3)
    return fg[0, 0].numpy() > 0.5


def build_real(frames, bg):
    """Real vtest frames 0-399 with what background subtraction can vouch for:
    each blob that passes the one-pedestrian checks becomes a labelled head,
    and the rest of the picture that did not change is labelled as nobody.
    Anything else that moved (groups, fragments, people cut by the edge or
    faint against the ground) is marked unknown and left out of the loss.
    Returns images, density maps and per-cell weights (1 known, 0 unknown)."""
    bgf = bg.astype(np.int16)
    imgs, dens, wts, n_heads, n_unknown = [], [], [], 0, 0
    for fi in range(0, TRAIN_LAST_VTEST_FRAME + 1, REAL_EVERY):
        if any(abs(fi - a) <= ANNOTATED_MARGIN for a in ANNOTATED_VTEST_FRAMES):
            continue
        f = frames[fi]
        strong = foreground(f, bgf, 28)
        faint = foreground(f, bgf, 16)
        lab = components(strong)
        explained = np.zeros((VH, VW), bool)
        pts = []
        for _, y0, y1, x0, x1, hx in pedestrians(lab):
            h = y1 - y0
            pts.append((x0 + hx, y0 + 0.07 * h, max(2.0, 0.18 * h)))
            explained[max(0, y0 - 4):y1 + 4, max(0, x0 - 4):x1 + 4] = True
        unknown = faint & ~explained
        # unknown spreads one cell each way: a person's density reaches past its blob
        cells = torch.from_numpy(unknown)[None, None].float()
        cells = F.max_pool2d(cells, STRIDE, STRIDE)
        cells = F.max_pool2d(cells, 3, 1, 1)[0, 0].numpy() > 0
        imgs.append(f)
        dens.append(density_map(pts, VW, VH))
        wts.append((~cells).astype(np.float32))
        n_heads += len(pts)
        n_unknown += int(cells.sum())
    log("real frames: %d, labelled heads %d, unknown cells %.1f%%" % (
        len(imgs), n_heads, 100.0 * n_unknown / max(1, sum(w.size for w in wts))))
    return np.stack(imgs), np.stack(dens), np.stack(wts)


# ---------------------------------------------------------------- density targets

def density_map(points, w, h, stride=STRIDE):
    """Head points (x, y, sigma_px) -> map [h/stride, w/stride], each person summing to 1
    (mass outside the map folded back in: each head inside the image counts exactly 1)."""
    mh, mw = h // stride, w // stride
    d = np.zeros((mh, mw), np.float32)
    for x, y, s in points:
        if not (0 <= x < w and 0 <= y < h):
            continue
        cx, cy, sg = x / stride - 0.5, y / stride - 0.5, max(0.5, s / stride)
        r = int(math.ceil(3 * sg))
        ix, iy = int(round(cx)), int(round(cy))
        xs = np.arange(max(0, ix - r), min(mw, ix + r + 1))
        ys = np.arange(max(0, iy - r), min(mh, iy + r + 1))
        if len(xs) == 0 or len(ys) == 0:
            d[min(mh - 1, max(0, iy)), min(mw - 1, max(0, ix))] += 1
            continue
        g = np.exp(-((ys[:, None] - cy) ** 2 + (xs[None, :] - cx) ** 2) / (2 * sg * sg))
        d[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += g / g.sum()
    return d


# ---------------------------------------------------------------- composites

def load_backgrounds(bg_vtest):
    bgs = [bg_vtest]
    for name in BACKGROUND_PHOTOS:
        p = os.path.join(DATA, name)
        if os.path.exists(p):
            im = decode_image(p)
            if im.shape[0] >= 200 and im.shape[1] >= 200:
                bgs.append(im)
    return bgs


def random_background(rng, bgs, w, h):
    # the empty plaza half of the time: it is the scene the model must know best
    b = bgs[0] if rng.random() < 0.5 else bgs[rng.integers(1, len(bgs))]
    bh, bw = b.shape[:2]
    if b is bgs[0] and rng.random() < 0.4:
        # the plaza exactly as the camera sees it: its static objects (cones,
        # sign, tripod, cars, windows) must come out as nobody
        return to_t(b) * torch.tensor(rng.uniform(0.92, 1.08, 3), dtype=torch.float32)[:, None, None]
    s = rng.uniform(0.6, 1.0)
    cw, ch = int(bw * s), int(bh * s)
    cw, ch = max(64, min(cw, bw)), max(64, min(ch, bh))
    x0, y0 = rng.integers(0, bw - cw + 1), rng.integers(0, bh - ch + 1)
    crop = b[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = to_t(resize_area(np.ascontiguousarray(crop), w, h))
    gain = torch.tensor(rng.uniform(0.7, 1.25, 3), dtype=torch.float32)[:, None, None]
    return (out * gain * rng.uniform(0.75, 1.2)).clamp(0, 255)


def paste(canvas, person, x, y, height, rng):
    """Pastes a cutout with its head at (x, y), scaled to `height` px; returns sigma."""
    rgba = person["rgba"]
    ph, pw = rgba.shape[:2]
    s = height / ph
    nh, nw = max(4, int(round(ph * s))), max(2, int(round(pw * s * rng.uniform(0.85, 1.15))))
    t = torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).float()[None]
    t = F.interpolate(t, size=(nh, nw), mode="area" if s < 1 else "bilinear",
                      **({} if s < 1 else {"align_corners": False}))[0]
    if rng.random() < 0.5:
        t = t.flip(2)
        hx = pw - person["hx"]
    else:
        hx = person["hx"]
    rgb, a = t[:3], (t[3:] / 255.0)
    # colour: per-channel gain, brightness; sometimes a clothing hue swap
    rgb = rgb * torch.tensor(rng.uniform(0.75, 1.25, 3), dtype=torch.float32)[:, None, None]
    if rng.random() < 0.2:
        rgb = rgb[torch.from_numpy(rng.permutation(3))]
    if rng.random() < 0.3:
        k = 3
        rgb = F.avg_pool2d(rgb[None], k, 1, k // 2, count_include_pad=False)[0]
        a = F.avg_pool2d(a[None], k, 1, k // 2, count_include_pad=False)[0]
    # occlusion: sometimes the lower part is cut off (hidden by something in front)
    if rng.random() < 0.15:
        cut = int(nh * rng.uniform(0.4, 0.8))
        a = a.clone()
        a[:, cut:] = 0
    ox = int(round(x - hx * nw / pw))
    oy = int(round(y - person["hy"] * nh / ph))
    _, H, W = canvas.shape
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(W, ox + nw), min(H, oy + nh)
    if x1 <= x0 or y1 <= y0:
        return
    sl = (slice(None), slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    aa = a[sl]
    canvas[:, y0:y1, x0:x1] = canvas[:, y0:y1, x0:x1] * (1 - aa) + rgb[sl] * aa


def composite(rng, bgs, cut, w, h):
    """One picture with N pasted pedestrians and its density map."""
    canvas = random_background(rng, bgs, w, h)
    # density from empty to several hundred, spread evenly on a log scale
    u = rng.random()
    # (a fifth empty, a fifth 1-12 like vtest, the rest log-uniform up to 450)
    if u < 0.2:
        n = 0
    elif u < 0.4:
        n = int(rng.integers(1, 13))
    else:
        n = int(round(math.exp(rng.uniform(0, math.log(450)))))
    # perspective: height grows linearly with the foot row, like vtest's camera
    # (about 60 px at the top, 130 px at the bottom) or a farther/closer one
    far = rng.uniform(12, 70)
    near = far * rng.uniform(1.3, 3.5)
    ys = np.sort(rng.uniform(-0.05, 1.05, n))  # foot rows, far first (drawn first)
    pts = []
    for yf in ys:
        hh = far + (near - far) * yf
        foot = yf * h
        head_y = foot - 0.93 * hh
        x = rng.uniform(-0.02, 1.02) * w
        p = cut[rng.integers(len(cut))]
        paste(canvas, p, x, head_y, hh, rng)
        pts.append((x, head_y, max(2.0, 0.18 * hh)))
    if rng.random() < 0.3:
        sigma_blur = 3
        canvas = F.avg_pool2d(canvas[None], sigma_blur, 1, 1, count_include_pad=False)[0]
    canvas = (canvas + torch.randn_like(canvas) * rng.uniform(0, 4)).clamp(0, 255)
    return canvas.round().byte().permute(1, 2, 0).numpy(), density_map(pts, w, h), len(
        [p for p in pts if 0 <= p[0] < w and 0 <= p[1] < h])


def build_synth(work):
    exe = os.path.join(work, "synthframes")
    subprocess.run(["go", "build", "-o", exe, "./models/train/synthframes"], cwd=ROOT, check=True)
    # [rendered frames, the same frames through H.264]
    imgs, dens, counts = ([], []), ([], []), ([], [])
    for tag, preset, seed, mn, mx in SYNTH_RUNS:
        prefix = os.path.join(work, "syn_" + tag)
        if not os.path.exists(prefix + ".rgb"):
            subprocess.run([exe, "-preset", preset, "-seed", str(seed), "-min", str(mn), "-max",
                            str(mx), "-seconds", str(SYNTH_SECONDS), "-every", str(SYNTH_EVERY),
                            "-out", prefix], check=True)
        # every frame twice: as rendered, and through H.264 and back as
        # synth.Generate encodes the shipped samples (libx264 veryfast, CRF 23,
        # yuv420p), so the model knows codec blur as every camera delivers it
        if not os.path.exists(prefix + ".mp4"):
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", "1280x720", "-r", "15", "-i", prefix + ".rgb", "-an", "-c:v",
                            "libx264", "-preset", "veryfast", "-crf", "23", "-bf", "0", "-g", "30",
                            "-pix_fmt", "yuv420p", "-threads", "2", prefix + ".mp4"], check=True)
        rendered = np.fromfile(prefix + ".rgb", np.uint8).reshape(-1, 720, 1280, 3)
        coded = decode_video(prefix + ".mp4", 1280, 720)
        heads = {}
        with open(prefix + ".csv") as f:
            for row in f:
                if row.startswith("#"):
                    continue
                i, x, y, hp = row.strip().split(",")
                heads.setdefault(int(i), []).append((float(x), float(y), float(hp)))
        # the runtime shrinks 1280x720 to MAX_SIDE (768x432): train at that scale
        w, h = MAX_SIDE, MAX_SIDE * 720 // 1280
        s = w / 1280
        for k, raw in enumerate((rendered, coded)):
            for i in range(len(raw)):
                imgs[k].append(resize_area(raw[i], w, h))
                pts = [(x * s, y * s, max(2.0, 0.18 * hp * s)) for x, y, hp in heads.get(i, [])]
                dens[k].append(density_map(pts, w, h))
                counts[k].append(len(pts))
    imgs, dens, counts = imgs[0] + imgs[1], dens[0] + dens[1], counts[0] + counts[1]
    log("synth frames: %d (half of them through H.264), people per frame %d..%d" % (
        len(imgs), min(counts), max(counts)))
    return np.stack(imgs), np.stack(dens), np.array(counts)


def cmd_data(args):
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    work = args.work
    cache = os.path.join(work, "cutouts.pkl")
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            bg, cut = pickle.load(f)
    else:
        bg, cut = build_cutouts(work)
        with open(cache, "wb") as f:
            pickle.dump((bg, cut), f)
    # a contact sheet of cutouts for a human check
    sheet = np.zeros((4 * 130, 16 * 60, 3), np.uint8)
    for k, p in enumerate(cut[:: max(1, len(cut) // 64)][:64]):
        r, c = divmod(k, 16)
        im = resize_area(p["rgba"][..., :3], 60, 130)
        sheet[r * 130:(r + 1) * 130, c * 60:(c + 1) * 60] = im
    save_png(os.path.join(work, "cutouts.png"), sheet)
    bgs = load_backgrounds(bg)
    log("backgrounds: %d" % len(bgs))
    imgs, dens, counts = [], [], []
    w, h = VW, VH
    for i in range(args.composites):
        im, d, c = composite(rng, bgs, cut, w, h)
        imgs.append(im)
        dens.append(d)
        counts.append(c)
        if i % 100 == 0:
            log("composite %d/%d (%d people)" % (i, args.composites, c))
    save_png(os.path.join(work, "composite0.png"), imgs[1])
    save_png(os.path.join(work, "composite1.png"), imgs[2])
    np.savez(os.path.join(work, "composites.npz"), img=np.stack(imgs), den=np.stack(dens),
             count=np.array(counts))
    real = os.path.join(work, "real.npz")
    if not os.path.exists(real):
        frames = decode_video(VTEST, VW, VH, 0, TRAIN_LAST_VTEST_FRAME + 1)
        ri, rd, rw = build_real(frames, bg)
        np.savez(real, img=ri, den=rd, wt=rw)
    si, sd, sc = build_synth(work)
    np.savez(os.path.join(work, "synth.npz"), img=si, den=sd, count=sc)
    log("data done: %d composites, %d synth frames" % (len(imgs), len(si)))


def save_png(path, img):
    h, w = img.shape[:2]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    "%dx%d" % (w, h), "-i", "-", path], input=np.ascontiguousarray(img).tobytes(),
                   check=True)


# ---------------------------------------------------------------- network

def cbr(i, o, s=1, d=1):
    return nn.Sequential(nn.Conv2d(i, o, 3, s, d, dilation=d, bias=False), nn.BatchNorm2d(o),
                         nn.ReLU(inplace=True))


class FlowNet(nn.Module):
    """A compact CSRNet-style density network: a strided front end to 1/8 of the
    input, a dilated back end for context, a 1x1 head; the map is 1/8 of the input."""

    def __init__(self, w=(16, 32, 64)):
        super().__init__()
        self.front = nn.Sequential(cbr(3, w[0], 2), cbr(w[0], w[1], 2), cbr(w[1], w[2], 2))
        self.back = nn.Sequential(cbr(w[2], w[2]), cbr(w[2], w[2], d=2), cbr(w[2], w[2], d=3))
        self.head = nn.Sequential(nn.Conv2d(w[2], 32, 1), nn.ReLU(inplace=True), nn.Conv2d(32, 1, 1))

    def forward(self, x):
        return F.relu(self.head(self.back(self.front(x))))


class Exported(nn.Module):
    """What ships: the map divided back to people per cell."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x) * (1.0 / SCALE_TARGET)


def normalize(img_u8_nhwc):
    t = torch.from_numpy(img_u8_nhwc).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(MEAN)[None, :, None, None]
    s = torch.tensor(STD)[None, :, None, None]
    return (t - m) / s


# ---------------------------------------------------------------- training

def cmd_train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    c = np.load(os.path.join(args.work, "composites.npz"))
    s = np.load(os.path.join(args.work, "synth.npz"))
    r = np.load(os.path.join(args.work, "real.npz"))
    # (images, density maps, per-cell weights or None when every cell is known)
    sets = [(c["img"], c["den"], None), (s["img"], s["den"], None), (r["img"], r["den"], r["wt"])]
    share = np.array([args.composite_share, 1 - args.composite_share - args.real_share,
                      args.real_share])
    log("train: %d composites, %d synth frames, %d real frames; shares %s" % (
        len(c["img"]), len(s["img"]), len(r["img"]), share.round(2).tolist()))
    net = FlowNet()
    log("parameters: %d" % sum(p.numel() for p in net.parameters()))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps,
                                                pct_start=0.1)
    cw, ch = args.crop
    net.train()
    t0 = time.time()
    run_l, run_c = 0.0, 0.0
    for step in range(args.steps):
        xs, ys, ws = [], [], []
        for b in range(args.batch):
            imgs, dens, wts = sets[rng.choice(3, p=share)]
            i = rng.integers(len(imgs))
            im, d = imgs[i], dens[i]
            wt = wts[i] if wts is not None else np.ones_like(d)
            H, W = im.shape[:2]
            # crop on the map grid so the target stays exact
            mx = rng.integers(0, (W - cw) // STRIDE + 1)
            my = rng.integers(0, (H - ch) // STRIDE + 1)
            x = im[my * STRIDE:my * STRIDE + ch, mx * STRIDE:mx * STRIDE + cw]
            y = d[my:my + ch // STRIDE, mx:mx + cw // STRIDE]
            k = wt[my:my + ch // STRIDE, mx:mx + cw // STRIDE]
            if rng.random() < 0.5:
                x, y, k = x[:, ::-1], y[:, ::-1], k[:, ::-1]
            xs.append(np.ascontiguousarray(x))
            ys.append(np.ascontiguousarray(y))
            ws.append(np.ascontiguousarray(k))
        x = normalize(np.stack(xs))
        y = torch.from_numpy(np.stack(ys))[:, None] * SCALE_TARGET
        k = torch.from_numpy(np.stack(ws))[:, None]
        out = net(x)
        # only cells whose truth is known count, in the map and in the count
        loss_map = ((out - y) ** 2 * k).sum() / k.sum().clamp(min=1)
        cnt_o = (out * k).sum((1, 2, 3)) / SCALE_TARGET
        cnt_y = (y * k).sum((1, 2, 3)) / SCALE_TARGET
        # L1 on the count: a faint density floor over an empty picture costs as
        # much per person as a missed head, so the model learns to say zero
        loss_cnt = ((cnt_o - cnt_y).abs() / (1 + cnt_y.sqrt())).mean()
        loss = loss_map + args.count_weight * loss_cnt
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run_l += loss_map.item()
        run_c += (cnt_o - cnt_y).abs().mean().item()
        if (step + 1) % 50 == 0:
            log("step %d/%d map %.4f count-MAE %.2f (%.2fs/step)" % (
                step + 1, args.steps, run_l / 50, run_c / 50, (time.time() - t0) / (step + 1)))
            run_l, run_c = 0.0, 0.0
        if (step + 1) % 500 == 0 or step + 1 == args.steps:
            torch.save(net.state_dict(), os.path.join(args.work, "model.pt"))
    log("trained %d steps in %.0fs" % (args.steps, time.time() - t0))


def load_net(work):
    net = FlowNet()
    net.load_state_dict(torch.load(os.path.join(work, "model.pt")))
    net.eval()
    return net


def predict(net, frames_u8):
    """Counts of RGB frames (already at the size the runtime feeds)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(frames_u8), 8):
            d = net(normalize(frames_u8[i:i + 8])) / SCALE_TARGET
            out += d.sum((1, 2, 3)).tolist()
    return out


# ---------------------------------------------------------------- export

MANIFEST = """\
# The default crowd-density model. Written by models/train/train.py export;
# see MODEL_CARD.md. Input as in training: RGB, p/255, ImageNet mean and std.
name: default
file: model.onnx
task: density
input:
  name: input
  layout: NCHW
  width: 0
  height: 0
  batch: 0
  multiple: {multiple}
  max_side: {max_side}
  color: RGB
  scale: 0.00392156862745098
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
output:
  name: density
  stride: {stride}
  sums_to_count: true
"""

# vtest frames whose counts the Go test (vision/shipped_model_test.go) checks.
REFERENCE_FRAMES = [30, 420, 600, 780]


def cmd_export(args):
    torch.manual_seed(args.seed)
    net = load_net(args.work)
    model = Exported(net).eval()
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "model.onnx")
    dyn = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(model, torch.randn(1, 3, 576, 768), path, input_names=["input"],
                      output_names=["density"], dynamic_axes={"input": dyn, "density": dyn},
                      opset_version=13, do_constant_folding=True)
    log("model.onnx: %d bytes" % os.path.getsize(path))
    with open(os.path.join(OUT_DIR, "model.yaml"), "w") as f:
        f.write(MANIFEST.format(multiple=MULTIPLE, max_side=MAX_SIDE, stride=STRIDE))
    frames = decode_video(VTEST, VW, VH)
    ref = {str(i): round(c, 3) for i, c in zip(REFERENCE_FRAMES, predict(net, frames[REFERENCE_FRAMES]))}
    with open(os.path.join(OUT_DIR, "reference_counts.json"), "w") as f:
        json.dump({"video": VTEST, "note": "counts of models/default on these vtest frames at "
                   "export (torch); vision/shipped_model_test.go checks ONNX Runtime against them",
                   "counts": ref}, f, indent=1)
        f.write("\n")
    log("reference counts: %s" % ref)


# ---------------------------------------------------------------- evaluation

def read_counts(path):
    out = {}
    with open(path) as f:
        for row in f:
            row = row.strip()
            if not row or row.startswith("#") or row.startswith("frame"):
                continue
            a, b = row.split(",")[:2]
            out[int(a)] = float(b)
    return out


def cmd_evaluate(args):
    net = load_net(args.work)
    res = {}
    frames = decode_video(VTEST, VW, VH)
    for name, path in [("vtest annotated (shared/annotations, frames 0-350)",
                        os.path.join(ROOT, "..", "shared", "annotations", "vtest_counts.csv")),
                       ("vtest held-out 400-794 (own counts by eye)",
                        os.path.join(ROOT, "models", "train", "vtest_heldout_counts.csv"))]:
        if not os.path.exists(path):
            continue
        truth = read_counts(path)
        idx = sorted(truth)
        pred = predict(net, frames[idx])
        err = [p - truth[i] for p, i in zip(pred, idx)]
        res[name] = {"frames": len(idx), "MAE": float(np.mean(np.abs(err))),
                     "bias": float(np.mean(err)),
                     "per_frame": {i: [truth[i], round(p, 2)] for i, p in zip(idx, pred)}}
    for tag, vid in [("synth-dense (seed 2, held out)", "synth-dense"),
                     ("synth-sparse (seed 1, held out)", "synth-sparse")]:
        mp4 = os.path.join(ROOT, "samples", "media", vid + ".mp4")
        truth = {}
        with open(os.path.join(ROOT, "samples", "media", vid + ".truth.csv")) as f:
            next(f)
            for row in f:
                fr = int(row.split(",")[0])
                truth[fr] = truth.get(fr, 0) + 1
        w, h = MAX_SIDE, MAX_SIDE * 720 // 1280
        # every 10th frame, shrunk with area averaging as the runtime does
        fr = decode_video(mp4, 1280, 720)[::10]
        small = np.stack([resize_area(f, w, h) for f in fr])
        idx = list(range(0, 600, 10))[:len(small)]
        pred = predict(net, small)
        t = np.array([truth.get(i, 0) for i in idx], float)
        p = np.array(pred)
        res[tag] = {"frames": len(idx), "MAE": float(np.abs(p - t).mean()),
                    "rel": float((np.abs(p - t) / np.maximum(t, 1)).mean()),
                    "bias": float((p - t).mean()), "truth_mean": float(t.mean())}
    print(json.dumps(res, indent=1))
    with open(os.path.join(args.work, "evaluate.json"), "w") as f:
        json.dump(res, f, indent=1)


def run_analyze(inp, out, extra):
    """bin/flowwatch analyze; returns (its output, wall seconds)."""
    exe = os.path.join(ROOT, "bin", "flowwatch")
    t0 = time.time()
    r = subprocess.run([exe, "analyze", inp, "--out", out] + extra, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        raise SystemExit("analyze %s %s failed: %s" % (inp, extra, r.stderr[-2000:]))
    return r.stdout + r.stderr, wall


def cmd_compare(args):
    """The shipped model against the classic estimator through bin/flowwatch
    analyze (the Go pipeline), same frames, one run: MAE and frames per second."""
    import re
    env = os.environ
    env.setdefault("FLOWWATCH_ORT_LIB", os.path.join(ROOT, "third_party", "onnxruntime",
                                                     "libonnxruntime.so.1.24.1"))
    env.setdefault("FLOWWATCH_MODELS", os.path.join(ROOT, "models"))
    env.setdefault("FLOWWATCH_SAMPLES", os.path.join(ROOT, "samples", "media"))
    estimators = [("default", ["--model", "default", "--threads", "2"]),
                  ("classic", ["--model", "classic", "--pixels-per-person", "1450",
                               "--horizon", "-0.15"])]
    ann = read_counts(os.path.join(ROOT, "..", "shared", "annotations", "vtest_counts.csv"))
    held = read_counts(os.path.join(ROOT, "models", "train", "vtest_heldout_counts.csv"))
    res = {}
    for name, extra in estimators:
        out = os.path.join(args.work, "cmp_%s_vtest.csv" % name)
        text, wall = run_analyze(VTEST, out, extra)
        rates = re.findall(r"([0-9.]+)/s", text)
        counts = read_analyze(out)
        row = {"fps_progress": float(rates[-1]) if rates else None,
               "fps_wall": round(len(counts) / wall, 1)}
        for tag, truth in [("vtest_annotated", ann), ("vtest_heldout", held)]:
            e = [counts[i] - truth[i] for i in sorted(truth)]
            row[tag + "_MAE"] = round(float(np.mean(np.abs(e))), 3)
            row[tag + "_bias"] = round(float(np.mean(e)), 3)
            row[tag + "_per_frame"] = {i: round(counts[i], 2) for i in sorted(truth)}
        for vid in ("synth-dense", "synth-sparse"):
            out = os.path.join(args.work, "cmp_%s_%s.csv" % (name, vid))
            text, _ = run_analyze(os.path.join(ROOT, "samples", "media", vid + ".mp4"), out,
                                  extra + ["--every", "10"])
            m = re.search(r"all\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)%", text)
            if m:
                row[vid] = {"frames": int(m.group(1)), "MAE": float(m.group(2)),
                            "mean_truth": float(m.group(3)), "rel_err_pct": float(m.group(4))}
        res[name] = row
        log(name, json.dumps({k: v for k, v in row.items() if "per_frame" not in k}))
    # OpenCV's HOG people detector (models/train/hog, OpenCV C++ through cgo)
    exe = os.path.join(args.work, "hog")
    subprocess.run(["go", "build", "-o", exe, "./models/train/hog"], cwd=ROOT, check=True)
    for up in (1.0, 1.5):
        row = {}
        for tag, truth in [("vtest_annotated", ann), ("vtest_heldout", held)]:
            r = subprocess.run([exe, "-upscale", str(up), "-frames", ",".join(map(str, sorted(truth))),
                                VTEST], capture_output=True, text=True, check=True).stdout
            got = {int(a): float(b) for a, b, _ in
                   (l.split(",") for l in r.splitlines() if l and l[0].isdigit())}
            e = [got[i] - truth[i] for i in sorted(truth)]
            row[tag + "_MAE"] = round(float(np.mean(np.abs(e))), 3)
            row[tag + "_bias"] = round(float(np.mean(e)), 3)
            row[tag + "_per_frame"] = got
            row["fps_" + tag] = float(re.search(r"([0-9.]+) frames/s", r).group(1))
        for vid in ("synth-dense", "synth-sparse"):
            truth = {}
            with open(os.path.join(ROOT, "samples", "media", vid + ".truth.csv")) as f:
                next(f)
                for line in f:
                    fr = int(line.split(",")[0])
                    truth[fr] = truth.get(fr, 0) + 1
            idx = list(range(0, 600, 50))
            r = subprocess.run([exe, "-upscale", str(up), "-frames", ",".join(map(str, idx)),
                                os.path.join(ROOT, "samples", "media", vid + ".mp4")],
                               capture_output=True, text=True, check=True).stdout
            got = {int(a): float(b) for a, b, _ in
                   (l.split(",") for l in r.splitlines() if l and l[0].isdigit())}
            t = np.array([truth.get(i, 0) for i in idx], float)
            g = np.array([got[i] for i in idx])
            row[vid] = {"frames": len(idx), "MAE": round(float(np.abs(g - t).mean()), 2),
                        "mean_truth": round(float(t.mean()), 2),
                        "rel_err_pct": round(float((np.abs(g - t) / np.maximum(t, 1)).mean() * 100), 1)}
        res["hog_x%.1f" % up] = row
        log("hog x%.1f" % up, json.dumps({k: v for k, v in row.items() if "per_frame" not in k}))
    with open(os.path.join(args.work, "compare.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


def read_analyze(path):
    out = {}
    with open(path) as f:
        next(f)
        for row in f:
            fr, _, zone, c = row.strip().split(",")
            if zone == "all":
                out[int(fr)] = float(c)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["data", "train", "export", "evaluate", "compare", "all"])
    ap.add_argument("--work", default="/tmp/flowwatch-train")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--composites", type=int, default=500)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, nargs=2, default=[256, 256])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--count-weight", type=float, default=1.0)
    ap.add_argument("--composite-share", type=float, default=0.45)
    ap.add_argument("--real-share", type=float, default=0.25,
                    help="share of crops from real vtest frames 0-399 (masked labels)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    steps = ["data", "train", "export", "evaluate"] if args.cmd == "all" else [args.cmd]
    for s in steps:
        globals()["cmd_" + s](args)


if __name__ == "__main__":
    main()
