"""Speaks to an edge-runtime served over TLS with Python's `requests`, verifying its certificate
against the test's CA, the way a client on the LAN would.

Usage: tls_client.py HOST:PORT CA.pem TOKEN   (exits non-zero with a message on the first failure)
Installs requests with pip when missing (the Rust test calls this script).
"""

import ssl
import subprocess
import sys


def ensure_requests():
    try:
        import requests  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "requests"])


def main(address, ca, token):
    import requests
    from requests.adapters import HTTPAdapter

    base = f"https://{address}"
    auth = {"Authorization": f"Bearer {token}"}

    live = requests.get(f"{base}/v2/health/live", verify=ca, timeout=30)
    assert live.status_code == 200 and live.json()["live"], live.text

    request = {"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}
    answer = requests.post(f"{base}/v2/models/tiny-mlp/infer", json=request, headers=auth, verify=ca, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = answer.json()["outputs"]
    assert outputs[0]["shape"] == [1, 4] and len(outputs[0]["data"]) == 4, outputs

    refused = requests.post(f"{base}/v2/models/tiny-mlp/infer", json=request, verify=ca, timeout=30)
    assert refused.status_code == 401, refused.text

    # Without the CA the certificate cannot be verified: the client must refuse the server.
    try:
        requests.get(f"{base}/v2/health/live", timeout=30)
    except requests.exceptions.SSLError:
        pass
    else:
        raise AssertionError("a client without the CA accepted the server's certificate")

    # TLS 1.2 and 1.3 are both served.
    class Pinned(HTTPAdapter):
        def __init__(self, version):
            self.version = version
            super().__init__()

        def init_poolmanager(self, *args, **kwargs):
            context = ssl.create_default_context(cafile=ca)
            context.minimum_version = self.version
            context.maximum_version = self.version
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        session = requests.Session()
        session.mount("https://", Pinned(version))
        got = session.get(f"{base}/v2/health/ready", timeout=30)
        assert got.status_code == 200, (version, got.text)
    print("tls client: verified certificate, inference, 401 without token, TLS 1.2 and 1.3")


if __name__ == "__main__":
    ensure_requests()
    main(*sys.argv[1:4])
