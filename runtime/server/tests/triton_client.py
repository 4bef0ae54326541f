"""Drives a running edge-runtime with NVIDIA's `tritonclient[http]`, a real Open Inference
Protocol client, on the small model (see fixtures.py): JSON and binary tensors, metadata, errors.

Usage: triton_client.py HOST:PORT     (exits non-zero with a message on the first mismatch)
Runs in the test venv, which has the pinned tritonclient[http] and numpy.
"""

import sys


def main(url):
    import numpy as np
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(url=url)
    assert client.is_server_live() and client.is_server_ready(), "server not live/ready"
    assert client.is_model_ready("small"), "model not ready"
    meta = client.get_model_metadata("small")
    assert [i["name"] for i in meta["inputs"]] == ["a", "b"], meta
    assert meta["inputs"][1]["datatype"] == "INT64", meta

    a = np.array([[1, -2, 3], [-4, 5, -6]], dtype=np.float32)
    b = np.ones((2, 3), dtype=np.int64)
    expected_sum = np.array([[1, 0, 8], [0, 6, 0]], dtype=np.float32)
    for binary in (False, True):
        inputs = [http.InferInput("a", [2, 3], "FP32"), http.InferInput("b", [2, 3], "INT64")]
        inputs[0].set_data_from_numpy(a, binary_data=binary)
        inputs[1].set_data_from_numpy(b, binary_data=binary)
        outputs = [http.InferRequestedOutput("sum", binary_data=binary), http.InferRequestedOutput("positive", binary_data=binary)]
        result = client.infer("small", inputs, outputs=outputs, request_id="t1")
        got = result.as_numpy("sum")
        assert got.dtype == np.float32 and np.array_equal(got, expected_sum), (binary, got)
        assert np.array_equal(result.as_numpy("positive"), a > 0), (binary, result.as_numpy("positive"))

    bad = http.InferInput("a", [2, 3], "FP64")
    bad.set_data_from_numpy(a.astype(np.float64))
    good_b = http.InferInput("b", [2, 3], "INT64")
    good_b.set_data_from_numpy(b)
    try:
        client.infer("small", [bad, good_b])
        sys.exit("a FP64 input for a FP32 model was accepted")
    except InferenceServerException as e:
        assert "model expects FP32" in str(e), str(e)
    print("tritonclient: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
