"""One inference on an edgeimg device with NVIDIA's Triton client (`pip install tritonclient[http]`).

Usage:
  triton_client.py URL MODEL NAME=JSON [NAME=JSON ...] [--token-file FILE] [--binary]

  URL      the device's API, e.g. http://192.168.1.57:8000 (https:// for runtime.tls)
  MODEL    the model's name, e.g. tiny-mlp
  NAME=JSON  an input and its values as a JSON list, nested or flat; its datatype and shape
           come from the model's metadata (a dimension of any size takes what is left)
  --token-file FILE  the API's bearer token (runtime.bearer_token_file)
  --binary  send and receive tensors in the binary extension instead of JSON

Prints one line per output: `NAME DATATYPE SHAPE VALUES`, the values as a flat JSON list.
  triton_client.py http://127.0.0.1:8000 tiny-mlp "x=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]"
"""

import argparse
import json
import urllib.parse

import numpy as np
import tritonclient.http as triton
from tritonclient.utils import triton_to_np_dtype


def shape_for(declared, count):
    """The declared shape with its one free dimension (-1) set so that it holds `count` values."""
    fixed = int(np.prod([d for d in declared if d >= 0]))
    return [d if d >= 0 else count // max(fixed, 1) for d in declared]


def connect(url, token_file=None):
    """A client for the device at `url` (http:// or https://) and the headers every request
    carries: the bearer token read from `token_file`, when given."""
    url = urllib.parse.urlsplit(url)
    client = triton.InferenceServerClient(url.netloc, ssl=url.scheme == "https")
    headers = {}
    if token_file:
        with open(token_file, encoding="utf-8") as f:
            headers["Authorization"] = "Bearer " + f.read().strip()
    return client, headers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("inputs", nargs="+", metavar="NAME=JSON")
    parser.add_argument("--token-file")
    parser.add_argument("--binary", action="store_true")
    args = parser.parse_args()

    client, headers = connect(args.url, args.token_file)

    declared = {i["name"]: i for i in client.get_model_metadata(args.model, headers=headers)["inputs"]}
    inputs = []
    for given in args.inputs:
        name, _, values = given.partition("=")
        if name not in declared:
            parser.error(f"model {args.model} has no input {name!r}; its inputs are {list(declared)}")
        datatype = declared[name]["datatype"]
        flat = np.array(json.loads(values), dtype=triton_to_np_dtype(datatype)).reshape(-1)
        tensor = triton.InferInput(name, shape_for(declared[name]["shape"], flat.size), datatype)
        tensor.set_data_from_numpy(flat.reshape(tensor.shape()), binary_data=args.binary)
        inputs.append(tensor)

    result = client.infer(args.model, inputs, headers=headers)
    for output in result.get_response()["outputs"]:
        values = result.as_numpy(output["name"]).reshape(-1).tolist()
        # BYTES elements arrive as bytes; the device's are UTF-8 text.
        values = [v.decode() if isinstance(v, bytes) else v for v in values]
        print(output["name"], output["datatype"], output["shape"], json.dumps(values, ensure_ascii=False))


if __name__ == "__main__":
    main()
