"""base_url as the SDKs spell it: each spelling reaches the right path on a real loopback server."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
import pytest
from core_providers_support import PathRecorder, recorder  # noqa: F401  (fixture)

from agentdeck.config import ProviderConfig, parse_config
from agentdeck.errors import ConfigError
from agentdeck.providers import PRESETS

# (protocol, base_url path as configured, client endpoint path, path the upstream must receive)
SPELLINGS = [
    ("openai", "", "/v1/chat/completions", "/v1/chat/completions"),                 # bare host gets /v1 (the mock)
    ("openai", "/", "/v1/responses", "/v1/responses"),
    ("openai", "/v1", "/v1/chat/completions", "/v1/chat/completions"),              # api.openai.com/v1
    ("openai", "/v1/", "/v1/responses", "/v1/responses"),
    ("openai", "/v1beta/openai", "/v1/chat/completions", "/v1beta/openai/chat/completions"),  # Gemini
    ("openai", "/v1beta/openai/", "/v1/chat/completions", "/v1beta/openai/chat/completions"),
    ("openai", "/api/v1", "/v1/chat/completions", "/api/v1/chat/completions"),      # OpenRouter
    ("openai", "/openai/v1", "/v1/responses", "/openai/v1/responses"),              # Groq
    ("anthropic", "", "/v1/messages", "/v1/messages"),                              # the SDK spelling
    ("anthropic", "/v1", "/v1/messages", "/v1/messages"),                           # tolerated, not doubled
    ("anthropic", "/v1/", "/v1/messages/count_tokens", "/v1/messages/count_tokens"),
    ("anthropic", "/proxy/anthropic", "/v1/messages", "/proxy/anthropic/v1/messages"),
]


async def _post(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"model": "m"}) as resp:
            assert resp.status == 200


@pytest.mark.parametrize("protocol, base_path, endpoint, expected", SPELLINGS)
async def test_each_spelling_hits_the_right_upstream_path(recorder: PathRecorder, protocol: str, base_path: str,  # noqa: F811
                                                           endpoint: str, expected: str) -> None:
    p = ProviderConfig(protocol=protocol, base_url=recorder.origin + base_path, models=["m"])
    await _post(p.url_for(endpoint))
    assert recorder.paths == [expected]


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_each_preset_path_hits_the_right_upstream_path(recorder: PathRecorder, preset: str) -> None:  # noqa: F811
    """The preset's own base_url path, on a loopback host (what the real host would receive)."""
    path = urlsplit(PRESETS[preset].base_url).path
    cfg = parse_config({"providers": {"p": {"preset": preset, "base_url": recorder.origin + path, "models": ["m"]}}},
                       "<test>", environ={})
    await _post(cfg.providers["p"].url_for("/v1/chat/completions"))
    want = {"": "/v1/chat/completions"}.get(path, path + "/chat/completions")
    assert recorder.paths == [want]


def test_preset_urls_as_the_hosts_document_them() -> None:
    cfg = parse_config({"providers": {name: {"preset": name, "models": ["m"]} for name in PRESETS}}, "<test>", environ={})
    got = {name: p.url_for("/v1/chat/completions") for name, p in cfg.providers.items()}
    assert got == {
        "openrouter": "https://openrouter.ai/api/v1/chat/completions",
        "groq": "https://api.groq.com/openai/v1/chat/completions",
        "gemini-openai": "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "ollama": "http://127.0.0.1:11434/v1/chat/completions",
        "vllm": "http://127.0.0.1:8000/v1/chat/completions",
        "deepseek": "https://api.deepseek.com/v1/chat/completions",
        "mistral": "https://api.mistral.ai/v1/chat/completions",
        "together": "https://api.together.xyz/v1/chat/completions",
    }


def test_the_default_providers_use_the_sdk_spellings() -> None:
    cfg = parse_config({}, "<test>", environ={})
    assert cfg.providers["openai"].url_for("/v1/responses") == "https://api.openai.com/v1/responses"
    assert cfg.providers["anthropic"].url_for("/v1/messages") == "https://api.anthropic.com/v1/messages"


def test_a_changed_base_url_changes_the_precomputed_prefix() -> None:
    p = ProviderConfig(protocol="openai", base_url="https://api.openai.com/v1")
    assert p.url_for("/v1/chat/completions") == "https://api.openai.com/v1/chat/completions"
    p.base_url = "http://127.0.0.1:9"
    assert p.url_for("/v1/chat/completions") == "http://127.0.0.1:9/v1/chat/completions"


def test_an_openai_endpoint_outside_v1_is_a_programming_error() -> None:
    p = ProviderConfig(protocol="openai", base_url="https://api.openai.com/v1")
    with pytest.raises(ValueError, match="not under /v1"):
        p.url_for("/v1beta/models/x:generateContent")


@pytest.mark.parametrize("url, expect", [
    ("ftp://x", "must start with http"),
    ("https://", "has no host"),
    ("https://api.example.com/v1?api-version=2", "must not have a query string"),
    ("https://api.example.com/v1#frag", "must not have a query string"),
])
def test_bad_base_urls_name_the_key(url: str, expect: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"providers": {"p": {"protocol": "openai", "base_url": url}}}, "my.toml", environ={})
    assert str(e.value).startswith("my.toml: providers.p.base_url: ") and expect in str(e.value)
