"""Configuration: a TOML file validated by pydantic.

Why pydantic with ``extra="forbid"``: a typo in a budget key must be an error that names
the key, not a silently ignored line that leaves an agent without a spending cap.
Every error message names the file, the dotted key path and what is wrong.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agentdeck.errors import ConfigError
from agentdeck.paths import config_file, default_data_dir
from agentdeck.providers.presets import (DEFAULT_PROVIDER_SECTIONS, PRESETS, fill_preset, preset_names,
                                         price_provider_for)
from agentdeck.providers.urls import check_base_url, endpoint_prefix, join_endpoint

ProtocolName = Literal["openai", "anthropic", "gemini"]
TIERS: tuple[str, ...] = ("fast", "balanced", "smart")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GatewaySettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    admin_token: str = ""
    data_dir: str = Field(default_factory=default_data_dir, description="platform data dir (XDG on Linux) unless set")
    log_bodies: bool = False
    log_format: Literal["human", "json"] = Field("human", description="serve's call log: human lines or JSON lines")
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(600.0, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0)
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    store_flush_interval_s: float = Field(0.5, gt=0, le=1.0)
    default_price_input: float = Field(15.0, ge=0, description="USD/Mtok for models with no price")
    default_price_output: float = Field(75.0, ge=0)

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir))


class KeyConfig(_Strict):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    daily_budget_usd: float | None = Field(None, ge=0)


class BudgetConfig(_Strict):
    hourly_usd: float = Field(10.0, ge=0)
    daily_usd: float = Field(50.0, ge=0)
    auto_stop_when_daily_spent: bool = True
    alert_thresholds: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])


class CapsConfig(_Strict):
    """Per-request caps: the first layer of cost protection."""

    max_tokens_share: float = Field(0.5, gt=0, le=1.0, description="cap max_tokens to this share of the model's output limit")
    max_tokens: int | None = Field(None, gt=0, description="absolute cap; overrides the share when set")
    max_input_tokens: int = Field(200_000, gt=0)
    default_max_tokens: int = Field(4096, gt=0, description="assumed when an OpenAI caller sends no max_tokens")


class AnomalyConfig(_Strict):
    enabled: bool = True
    rps_factor: float = Field(10.0, gt=1)
    cost_factor: float = Field(2.0, gt=1)
    baseline_window_s: float = Field(300.0, gt=0)
    min_baseline_rps: float = Field(0.2, gt=0)
    min_baseline_usd_per_hour: float = Field(1.0, gt=0, description="expected cost rate floor, so pennies never alert")
    throttle_key: bool = False
    throttle_rps: float = Field(1.0, gt=0)


class AlertsConfig(_Strict):
    webhook_url: str = ""
    webhook_retries: int = Field(3, ge=0)
    dedupe_window_s: float = Field(300.0, ge=0)


class LimitsConfig(_Strict):
    rps: float = Field(50.0, gt=0)
    slots: int = Field(50, gt=0)
    min_rps: float = Field(1.0, gt=0)
    min_slots: int = Field(1, gt=0)
    max_rps: float = Field(500.0, gt=0)
    max_slots: int = Field(500, gt=0)
    decrease: float = Field(0.7, gt=0, lt=1)
    increase: float = Field(10.0, ge=0)
    increase_every_s: float = Field(60.0, gt=0)
    max_queue_wait_s: float = Field(10.0, ge=0)
    congestion_window_s: float = Field(1.0, gt=0, description="429s within this window count as one event")
    enabled: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> "LimitsConfig":
        if self.min_rps > self.max_rps:
            raise ValueError("min_rps must not exceed max_rps")
        if self.min_slots > self.max_slots:
            raise ValueError("min_slots must not exceed max_slots")
        return self


class RetryConfig(_Strict):
    max_retries: int = Field(2, ge=0, le=10)
    backoff_base_s: float = Field(0.25, ge=0)
    backoff_max_s: float = Field(8.0, ge=0)
    deadline_s: float = Field(120.0, gt=0)


class BreakerConfig(_Strict):
    failure_threshold: int = Field(5, gt=0)
    open_for_s: float = Field(30.0, gt=0)


class ProviderConfig(_Strict):
    """One upstream: how to reach it (protocol, base_url, key) and which models it serves.

    `preset` fills protocol, base_url and api_key_env for a known OpenAI-compatible host; keys
    written in the section win over it. The upstream URL prefix is computed here, once, so the
    request path only appends the endpoint (see agentdeck.providers.urls).
    """

    preset: str | None = Field(None, description="a known OpenAI-compatible host: " + ", ".join(PRESETS))
    protocol: ProtocolName
    base_url: str
    api_key: str = ""
    api_key_env: str = Field("", description="the environment variable the key is read from when api_key is not set")
    models: list[str] = Field(default_factory=list, description="model names and fnmatch globs (claude-*, o[0-9]*)")
    fallback: str | None = Field(None, description="another provider, taken while this one's breaker is open; one of "
                                                   "another protocol is reached by translation (docs/translation.md)")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)

    _prefix: str = PrivateAttr("")
    _urls: dict[str, str] = PrivateAttr(default_factory=dict)
    _price_provider: str = PrivateAttr("")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("preset")
        if name is not None and (not isinstance(name, str) or name not in PRESETS):
            err = PydanticCustomError("unknown_preset", "unknown preset {preset}; presets are {known}",
                                      {"preset": repr(name), "known": preset_names()})
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(type=err, loc=("preset",), input=name)])
        out = fill_preset(data)
        # Built in code rather than parsed from a file: read the key's variable here
        # (parse_config puts a "${NAME}" reference in place instead, expanded with its environ).
        env_name = out.get("api_key_env")
        if "api_key" not in out and isinstance(env_name, str) and env_name:
            out["api_key"] = os.environ.get(env_name, "")
        return out

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_base_url(v)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError("must be an environment variable name (letters, digits, _)")
        return v

    @field_validator("models")
    @classmethod
    def _model_entries(cls, v: list[str]) -> list[str]:
        for i, entry in enumerate(v):
            if not entry.strip():
                raise ValueError(f"entry {i} is empty")
        return v

    @model_validator(mode="after")
    def _precompute(self) -> "ProviderConfig":
        self._prefix = endpoint_prefix(self.protocol, self.base_url)
        self._urls = {}
        self._price_provider = price_provider_for(self.preset, self.protocol, self.base_url)
        return self

    def url_for(self, path: str) -> str:
        """The upstream URL for a client endpoint path ("/v1/chat/completions", "/v1/messages", ...)."""
        # Read the private dict directly: pydantic's private-attribute __getattr__ costs about 1 µs a call.
        private = cast(dict[str, Any], self.__pydantic_private__)
        urls: dict[str, str] = private["_urls"]
        try:
            return urls[path]
        except KeyError:
            url = urls[path] = join_endpoint(self.protocol, private["_prefix"], path)
            return url

    @property
    def is_local(self) -> bool:
        """A model server on the user's machine (ollama, vllm presets): priced $0 unless configured."""
        return self.preset is not None and PRESETS[self.preset].local

    @property
    def price_provider_id(self) -> str:
        """The genai-prices provider id this provider's models are priced under."""
        return cast(str, cast(dict[str, Any], self.__pydantic_private__)["_price_provider"])


class TierModels(_Strict):
    """A tier's model for each calling protocol; a plain string (`fast = "gemini-2.5-flash"`) names one
    model for every protocol (a caller of another protocol reaches it through `[routing] translate`)."""

    anthropic: str | None = None
    openai: str | None = None
    gemini: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_for_all(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"anthropic": data, "openai": data, "gemini": data}
        return data


def _default_tiers() -> dict[str, TierModels]:
    return {
        "fast": TierModels(anthropic="claude-haiku-4-5", openai="gpt-4o-mini"),
        "balanced": TierModels(anthropic="claude-sonnet-4-5", openai="gpt-4o"),
        "smart": TierModels(anthropic="claude-opus-4-5", openai="gpt-4.1"),
    }


class RoutingConfig(_Strict):
    tiers: dict[str, TierModels] = Field(default_factory=_default_tiers)
    max_escalations: int = Field(1, ge=0, le=2)
    escalate: bool = True
    downgrade_at: float = Field(0.8, gt=0, le=1.0, description="share of a budget past which auto requests drop a tier")
    large_context_tokens: int = Field(100_000, gt=0)
    rules: list[dict[str, Any]] = Field(default_factory=list, description="extra classifier rules")
    translate: bool = Field(True, description="serve a model that only a provider of another protocol serves, "
                                              "translating both ways (docs/translation.md); false: 404 instead")
    same_vendor: bool = Field(False, description="auto and the tiers keep a caller to its own protocol's models; "
                                                 "false: auto takes the tier's cheapest configured model of any vendor")

    @field_validator("tiers")
    @classmethod
    def _tier_names(cls, v: dict[str, TierModels]) -> dict[str, TierModels]:
        unknown = set(v) - set(TIERS)
        if unknown:
            raise ValueError(f"unknown tier {sorted(unknown)[0]!r}; tiers are fast, balanced, smart")
        merged = _default_tiers()
        merged.update(v)
        return merged


class Price(_Strict):
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)
    max_output_tokens: int | None = Field(None, gt=0)


class TuiConfig(_Strict):
    theme: str = "dark"
    refresh_hz: float = Field(4.0, ge=1, le=30, description="redraws per second; 4 keeps the console under a tenth of a core")
    max_rows: int = Field(300, ge=10, le=2000)
    gateway: Literal["thread", "process"] = Field(
        "thread", description="where `agentdeck console` runs its gateway: a thread of the console's process, or a "
                              "child process the console attaches to (no shared interpreter lock)")


def _default_providers() -> dict[str, ProviderConfig]:
    """Anthropic and OpenAI with globs, so Claude Code's and Codex's default models work unconfigured.

    Keys come from ANTHROPIC_API_KEY / OPENAI_API_KEY (parse_config expands them with its environ).
    """
    return {name: ProviderConfig.model_validate(section) for name, section in DEFAULT_PROVIDER_SECTIONS.items()}


def _prepare_provider_sections(data: dict[str, Any]) -> dict[str, Any]:
    """Fill presets and turn api_key_env into a "${NAME}" reference, before environment expansion.

    Why before: then a preset's key is read from the same environment as every other
    "${NAME}", and `api_key_env` records which variable a key comes from (for the start-up
    warning), also when the section wrote `api_key = "${NAME}"` itself.
    """
    providers = data.get("providers", DEFAULT_PROVIDER_SECTIONS)
    if not isinstance(providers, dict):
        return data
    out: dict[str, Any] = {}
    for name, section in providers.items():
        if not isinstance(section, dict):
            out[name] = section
            continue
        s = fill_preset(section)
        key = section.get("api_key")
        if isinstance(key, str) and "api_key_env" not in section:
            # The key written in the section wins over the preset's variable; remember which one it names.
            refs = _ENV_REF.findall(key)
            s["api_key_env"] = refs[0] if refs else ""
        env_name = s.get("api_key_env")
        if "api_key" not in s and isinstance(env_name, str) and env_name:
            s["api_key"] = "${" + env_name + "}"
        out[name] = s
    return {**data, "providers": out}


class OtelConfig(_Strict):
    """OpenTelemetry export (needs the `otel` extra); off while endpoint is empty."""

    endpoint: str = Field("", description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces")
    service_name: str = Field("agentdeck", min_length=1)
    headers: dict[str, str] = Field(default_factory=dict, description="sent with each export (e.g. a vendor's API key)")


class ClusterConfig(_Strict):
    """Where the state several gateways must share lives (docs/cluster.md).

    ``local`` keeps everything in this process (no Redis needed); ``redis`` shares the
    ledger, the emergency stop and provider limits through one Redis, keys prefixed by ``name``.
    """

    backend: Literal["local", "redis"] = "local"
    url: str = Field("redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL (may hold ${ENV} refs)")
    name: str = Field("agentdeck", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="prefixes every key, so two clusters can share one Redis")
    connect_timeout_s: float = Field(1.0, gt=0)
    op_timeout_s: float = Field(2.0, gt=0, description="one Redis command; past it the call counts as Redis down")
    lease_s: float = Field(30.0, gt=0, description="a reservation or slot of a dead process is freed after this")
    on_redis_down: Literal["fail", "local"] = Field("fail", description="fail: new calls get 503; local: per-process state")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v


class Config(_Strict):
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    keys: list[KeyConfig] = Field(default_factory=list)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    caps: CapsConfig = Field(default_factory=CapsConfig)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=_default_providers)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    prices: dict[str, Price] = Field(default_factory=dict)
    tui: TuiConfig = Field(default_factory=TuiConfig)
    otel: OtelConfig = Field(default_factory=OtelConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    source: str = Field("<defaults>", exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        names = [k.name for k in self.keys]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"keys: duplicate key name {sorted(dupes)[0]!r}")
        for name, p in self.providers.items():
            if p.fallback is not None:
                if p.fallback == name:
                    raise ValueError(f"providers.{name}.fallback: a provider cannot be its own fallback")
                fb = self.providers.get(p.fallback)
                if fb is None:
                    raise ValueError(f"providers.{name}.fallback: no provider named {p.fallback!r}")
                if fb.protocol != p.protocol and not self.routing.translate:
                    raise ValueError(f"providers.{name}.fallback: {p.fallback!r} speaks {fb.protocol}, not {p.protocol}; "
                                     "a fallback of another protocol needs [routing] translate = true")
        return self

    # -- lookups used on the request path (cheap dict reads, built once) -----------------
    def provider_for_model(self, model: str) -> str | None:
        """The first provider (any protocol) whose `models` patterns match; the gateway uses a ModelMatcher."""
        from agentdeck.providers.matching import ModelMatcher

        return ModelMatcher(self.providers).any_provider_for(model)

    def key_by_secret(self) -> dict[str, KeyConfig]:
        return {k.key: k for k in self.keys}


def expand_env(value: Any, environ: dict[str, str] | None = None) -> Any:
    """Replace ``${NAME}`` in every string with the environment variable (empty if unset)."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: env.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def default_config_path() -> Path | None:
    """The file a command uses when none is given: $AGENTDECK_CONFIG, else the user's file if present."""
    env = os.environ.get("AGENTDECK_CONFIG")
    if env:
        return Path(env)
    return config_file()


def _format_error(source: str, err: ValidationError, unset: set[str] | None = None) -> str:
    first = err.errors()[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    path = path or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    msg = msg.removeprefix("Value error, ")
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    hint = f" (environment variable {', '.join(sorted(unset))} is not set)" if unset else ""
    return f"{source}: {path}: {msg}{more}{hint}"


def _value_at(doc: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            doc = doc[part]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def parse_config(data: dict[str, Any], source: str = "<config>", environ: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    env = os.environ if environ is None else environ
    raw = data
    data = expand_env(_prepare_provider_sections(data), environ)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        at = _value_at(raw, e.errors()[0]["loc"])
        unset = {m for m in _ENV_REF.findall(at) if not env.get(m)} if isinstance(at, str) else set()
        raise ConfigError(_format_error(source, e, unset)) from None
    cfg.source = source
    if not cfg.gateway.admin_token:
        cfg.gateway.admin_token = os.environ.get("AGENTDECK_ADMIN_TOKEN", "") if environ is None else environ.get("AGENTDECK_ADMIN_TOKEN", "")
    return cfg


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config from ``path``, $AGENTDECK_CONFIG, the user's file, or built-in defaults."""
    p = Path(path) if path is not None else default_config_path()
    if p is None:
        return parse_config({}, "<defaults>")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    return parse_config(data, str(p))
