#!/usr/bin/env python3
"""Read the first line of text in a picture with an edgeimg device serving PaddleOCR's det, cls
and rec models (recipes/ocr-aarch64.toml), over the Open Inference Protocol with Triton's client.

Usage:
  ocr_client.py URL PICTURE REC_MODEL [--token-file FILE]

  URL        the device's API, e.g. http://192.168.1.57:8000 (edgeimg run prints it)
  PICTURE    a picture with text (PNG or JPEG)
  REC_MODEL  the rec model's ONNX file: the device does not serve its character list, which
             rec's file holds in its metadata (edgeimg keeps it in ~/.cache/edgeimg/models/)

  pip install 'tritonclient[http]' numpy onnx pillow   (and keep triton_client.py beside it)

det finds the text lines, cls says which way up the first one is, rec reads it. The pre- and
post-processing is the least PP-OCR needs: resize, normalise, row bands of det's probability
map grown as DB's unclip grows them, greedy CTC decoding. Every tensor goes in Triton's binary
extension. Prints one line per model.
"""

import argparse
import sys

import numpy as np
import onnx
import tritonclient.http as triton
from PIL import Image

from triton_client import connect  # examples/triton_client.py, beside this file


class Device:
    """The models on the device: their input sizes from its metadata, inference over the API."""

    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def input_hw(self, model):
        """(height, width) of the model's frozen NCHW input."""
        shape = self.client.get_model_metadata(model, headers=self.headers)["inputs"][0]["shape"]
        return int(shape[2]), int(shape[3])

    def infer(self, model, pixels):
        """One inference; the model's first output as a numpy array."""
        tensor = triton.InferInput("x", list(pixels.shape), "FP32")
        tensor.set_data_from_numpy(pixels, binary_data=True)
        result = self.client.infer(model, [tensor], headers=self.headers)
        return result.as_numpy(result.get_response()["outputs"][0]["name"])


def normalised(picture, height, width):
    """PP-OCR's input: RGB resized to height x width, (x/255 - 0.5) / 0.5, NCHW."""
    rgb = np.asarray(picture.convert("RGB").resize((width, height), Image.BILINEAR), np.float32)
    return ((rgb / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def text_lines(prob, threshold=0.3):
    """Row bands of det's probability map where text is: [(top, bottom, left, right)]."""
    mask = prob > threshold
    bands, top = [], None
    for y, on in enumerate(list(mask.any(axis=1)) + [False]):
        if on and top is None:
            top = y
        elif not on and top is not None:
            cols = np.flatnonzero(mask[top:y].any(axis=0))
            bands.append((top, y, int(cols[0]), int(cols[-1]) + 1))
            top = None
    return bands


def grown(band, det_hw, size):
    """A band as a box in the picture's pixels, grown as DB's unclip does (det marks shrunk
    text kernels)."""
    top, bottom, left, right = band
    grow = 0.8 * (bottom - top)
    sy, sx = size[1] / det_hw[0], size[0] / det_hw[1]
    return (
        max(0, int((left - grow) * sx)),
        max(0, int((top - grow) * sy)),
        min(size[0], int((right + grow) * sx + 1)),
        min(size[1], int((bottom + grow) * sy + 1)),
    )


def characters(rec_model):
    """rec's classes: CTC's blank, the 'character' list in the model's metadata, a space."""
    props = {p.key: p.value for p in onnx.load(rec_model).metadata_props}
    return ["blank"] + props["character"].splitlines() + [" "]


def ctc_text(probs, chars):
    """Greedy CTC: the best class per step, repeats and blanks dropped."""
    out, prev = [], 0
    for i in probs.argmax(axis=1):
        if i != 0 and i != prev:
            out.append(chars[i])
        prev = i
    return "".join(out).strip()


def read_first_line(models, picture, chars):
    """det, cls and rec on `picture`, asked of `models` (`input_hw(name)`, `infer(name,
    pixels)`); what each found, as lines to print (det's alone when it finds no text)."""
    det_hw = models.input_hw("det")
    bands = text_lines(models.infer("det", normalised(picture, *det_hw))[0, 0])
    said = [f"det: {len(bands)} text lines"]
    if not bands:
        return said
    box = grown(bands[0], det_hw, picture.size)
    line = picture.crop(box)
    cls = models.infer("cls", normalised(line, *models.input_hw("cls")))[0]
    way = "upside down" if cls[1] > cls[0] else "upright"
    said.append(f"cls: line 1 (box {list(box)}) is {way} (p={cls.max():.2f})")
    rec = models.infer("rec", normalised(line, *models.input_hw("rec")))[0]
    said.append(f"rec: line 1 reads {ctc_text(rec, chars)!r}")
    return said


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("picture")
    parser.add_argument("rec_model")
    parser.add_argument("--token-file")
    args = parser.parse_args()

    picture = Image.open(args.picture)
    lines = read_first_line(Device(*connect(args.url, args.token_file)), picture, characters(args.rec_model))
    for line in lines:
        print(line)
    return 0 if len(lines) == 3 else 1


if __name__ == "__main__":
    sys.exit(main())
