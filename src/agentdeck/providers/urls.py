"""base_url as the providers' SDKs spell it, turned into the URL each endpoint is posted to.

The OpenAI SDK's base_url includes the API version (`https://api.openai.com/v1`,
`https://generativelanguage.googleapis.com/v1beta/openai`) and the SDK appends the endpoint
(`/chat/completions`); the Anthropic SDK's base_url has no version and it appends
`/v1/messages`. The gateway serves the endpoints under `/v1/...`, so for OpenAI the part after
`/v1` is appended to the configured URL. The prefix is computed once when the config loads:
the request path only concatenates strings.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_VERSION = "/v1"


def check_base_url(url: str) -> str:
    """The URL without trailing slashes; ValueError (shown with the key path) when it cannot be a base_url."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("must not have a query string or fragment (the endpoint path is appended to it)")
    return url.rstrip("/")


def endpoint_prefix(protocol: str, base_url: str) -> str:
    """What an endpoint path is appended to.

    OpenAI: a base_url with a path is used as given; a bare host gets `/v1`. The endpoint path
    after `/v1` is then appended. Anthropic (and any versionless protocol): the URL without a
    trailing `/v1`, to which the full `/v1/...` endpoint path is appended.
    """
    base = base_url.rstrip("/")
    if protocol == "openai":
        return base if urlsplit(base).path not in ("", "/") else base + _VERSION
    return base[: -len(_VERSION)] if base.endswith(_VERSION) else base


def join_endpoint(protocol: str, prefix: str, path: str) -> str:
    """The upstream URL for a client endpoint path (`/v1/chat/completions`, `/v1/messages`, ...)."""
    if not path.startswith("/"):
        raise ValueError(f"endpoint path {path!r} must start with '/'")
    if protocol == "openai":
        if path.startswith(_VERSION + "/"):
            return prefix + path[len(_VERSION):]
        raise ValueError(f"endpoint path {path!r} is not under /v1 (OpenAI base URLs already carry their version)")
    return prefix + path
