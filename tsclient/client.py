"""HTTP calls to one TorchServe over pooled keep-alive connections, with current keys.

Every call sends the current key of its kind; when TorchServe rejects it (`is_key_rejection`)
the key is renewed (`KeyStore.renew`: a newer one from the key file, else one issued with the
API key) and the call repeated, at most `RENEWALS` times. Network trouble raises
`requests.RequestException`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tsclient.keys import KeyStore, bearer
from tsclient.protocol import is_key_rejection, scale_params

log = logging.getLogger(__name__)

T = TypeVar("T")

# TorchServe 0.12 issues a new key on GET <management>/token?type=<kind> with the API key
# (tests/tsclient/test_client_live.py checks which methods it answers).
TOKEN_METHOD = "GET"
TOKEN_PATH = "/token"
# A key can be rotated again while the call repeated with its renewed key is on its way (keys
# rotated every few hundred ms under load); a second renewal covers that, and the bound keeps a
# server that refuses every key from being asked forever.
RENEWALS = 2


class TorchServeClient:
    """The inference and management APIs of one TorchServe, with key renewal built in."""

    def __init__(
        self,
        inference_url: str,
        management_url: str,
        keys: KeyStore,
        *,
        connect_timeout: float = 0.5,
        timeout: float = 5.0,
        pool_size: int = 8,
        connect_retries: int = 1,
    ) -> None:
        self.inference_url = inference_url.rstrip("/")
        self.management_url = management_url.rstrip("/")
        self.keys = keys
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.session = requests.Session()
        # Retry only connections that were never established (safe for POST); a read failure
        # is reported at once rather than doubling the wait. Pollers (start-up, probes) pass 0.
        retry = Retry(
            total=connect_retries,
            connect=connect_retries,
            read=0,
            status=0,
            other=0,
            backoff_factor=0,
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # never route loopback traffic through a proxy
        self.executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="tsclient")

    def close(self) -> None:
        """Release the thread pool and the pooled connections."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    def __enter__(self) -> TorchServeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run `call(*args)` on the client's thread pool (for concurrent calls)."""
        return self.executor.submit(call, *args)

    def request(
        self, method: str, url: str, kind: str, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """One request with the current `kind` key, repeated with a renewed key while refused
        (at most `RENEWALS` times)."""
        key = self.keys.get(kind)
        response = self._send(method, url, key, timeout, **kwargs)
        for _ in range(RENEWALS):
            if not is_key_rejection(response):
                break
            key = self.keys.renew(kind, key, self.issue_key)
            if key is None:
                break
            response = self._send(method, url, key, timeout, **kwargs)
        return response

    def _send(
        self, method: str, url: str, key: str | None, timeout: float | None, **kwargs: Any
    ) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), **bearer(key)}
        wait = (self.connect_timeout, self.timeout if timeout is None else timeout)
        return self.session.request(method, url, headers=headers, timeout=wait, **kwargs)

    def issue_key(self, kind: str) -> bool:
        """Have TorchServe issue a new `kind` key with the API key (it rewrites its key file)."""
        api_key = self.keys.get("api")
        if not api_key:
            return False
        try:
            response = self.session.request(
                TOKEN_METHOD,
                f"{self.management_url}{TOKEN_PATH}",
                params={"type": kind},
                headers=bearer(api_key),
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.RequestException as exc:
            log.warning("cannot ask TorchServe for a new %s key: %s", kind, type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("TorchServe refused to issue a %s key (%s)", kind, response.status_code)
        return response.status_code == 200

    def renew_key(self, kind: str) -> str:
        """A freshly issued `kind` key; RuntimeError when TorchServe issues none."""
        old = self.keys.current().get(kind)
        if not self.issue_key(kind):
            raise RuntimeError(f"TorchServe issued no new {kind} key")
        new = self.keys.current().get(kind)
        if not new or new == old:
            raise RuntimeError(f"the {kind} key in {self.keys.path} did not change")
        return new

    def predict(
        self,
        model: str,
        data: bytes,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """POST image bytes to /predictions/<model> with the inference key."""
        return self._post_image("predictions", model, data, headers, timeout)

    def explain(
        self,
        model: str,
        data: bytes,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """POST image bytes to /explanations/<model> (TorchServe's explanations API)."""
        return self._post_image("explanations", model, data, headers, timeout)

    def _post_image(
        self,
        api: str,
        model: str,
        data: bytes,
        headers: dict[str, str] | None,
        timeout: float | None,
    ) -> requests.Response:
        url = f"{self.inference_url}/{api}/{model}"
        return self.request("POST", url, "inference", timeout, data=data, headers=headers or {})

    def describe_response(self, model: str, timeout: float | None = None) -> requests.Response:
        """GET /models/<model> on the management API, as it answered."""
        return self.request("GET", f"{self.management_url}/models/{model}", "management", timeout)

    def describe(self, model: str, timeout: float | None = None) -> Any:
        """The management API's description of one model (a list, one entry per version)."""
        response = self.describe_response(model, timeout)
        response.raise_for_status()
        return response.json()

    def scale(
        self, model: str, min_worker: int, max_worker: int | None = None, timeout: float = 60.0
    ) -> None:
        """Set a model's worker range and wait until TorchServe has applied it."""
        params = scale_params(min_worker, max_worker)  # validated before anything is sent
        url = f"{self.management_url}/models/{model}"
        response = self.request("PUT", url, "management", timeout, params=params)
        response.raise_for_status()
