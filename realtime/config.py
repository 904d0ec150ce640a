"""Typed settings from ``GIGVORA_*`` environment variables, validated at boot.

``load_settings()`` raises :class:`ConfigError` with one line per problem, each naming the variable;
``lint_environment()`` returns every problem at once (``gigvora config lint``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "GIGVORA_"
DEV_SECRET_FILE = "dev-jwt-secret"
MIN_SECRET_BYTES = 32

CommaList = Annotated[list[str], NoDecode]


class ConfigError(Exception):
    """Settings that cannot boot; ``problems`` holds one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Every setting of Gigvora Live. Field ``x`` is read from ``GIGVORA_X``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    env: Literal["dev", "production"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("./var")
    store_url: str | None = None
    redis_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_previous_secret: SecretStr | None = None
    cors_origins: CommaList = Field(default_factory=list)
    max_text_chars: int = Field(4000, ge=1, le=60_000)
    message_rate_per_s: float = Field(5.0, ge=0)
    message_burst: int = Field(20, ge=1)
    typing_throttle_s: float = Field(3.0, ge=0)
    # presence pushes: one flush per tick; the mode of sockets that did not presence:subscribe
    presence_tick_s: float = Field(0.25, gt=0, le=10)
    presence_default: Literal["all", "batch", "channels", "none"] = "all"
    history_limit: int = Field(50, ge=1, le=500)
    max_outbound_bytes: int = Field(1_048_576, ge=16_384)
    max_connections: int = Field(20_000, ge=1)
    # whole seconds: engine.io announces int(seconds) * 1000 ms to clients
    ping_interval_s: int = Field(25, ge=1, le=300)
    ping_timeout_s: int = Field(20, ge=1, le=300)
    drain_grace_s: float = Field(0.5, ge=0)
    drain_timeout_s: float = Field(10.0, ge=0)
    debug: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    plugins_allow: CommaList = Field(default_factory=list)
    plugins_disable: CommaList = Field(default_factory=list)
    hook_timeout_s: float = Field(2.0, gt=0)
    # admission to the pre-store checks (moderation): in the chain at once, waiting beyond that
    checks_concurrency: int = Field(1024, ge=1, le=100_000)
    checks_queue: int = Field(1024, ge=0, le=100_000)
    seed_channels: bool = True
    moderation_ml: Literal["auto", "on", "off"] = "auto"
    moderation_ml_min_probability: float = Field(0.97, ge=0, le=1)
    moderation_ml_timeout_s: float = Field(1.0, gt=0)
    moderation_escalate_after: int = Field(3, ge=0)
    moderation_escalate_window_s: float = Field(600.0, gt=0)
    moderation_auto_mute_s: float = Field(600.0, gt=0)
    # the optional Detoxify tier (docs/moderation.md): auto = on when both paths are set
    moderation_detoxify: Literal["auto", "on", "off"] = "auto"
    moderation_detoxify_hold_at: float = Field(0.8, ge=0, le=1)
    moderation_detoxify_block_at: float = Field(0.98, ge=0, le=1)
    moderation_detoxify_timeout_s: float = Field(1.5, gt=0)
    moderation_detoxify_max_batch: int = Field(16, ge=1, le=256)
    detoxify_checkpoint: Path | None = None
    detoxify_config_dir: Path | None = None
    chatwoot_base_url: str | None = None
    chatwoot_api_token: SecretStr | None = None
    chatwoot_account_id: int | None = None
    chatwoot_inbox_id: int | None = None
    chatwoot_webhook_secret: SecretStr | None = None
    chatwoot_hmac_token: SecretStr | None = None
    # JSON lists/objects, validated by the bridge (docs/chatwoot.md "Routing", "SLA")
    chatwoot_routing_rules: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    chatwoot_sla_policies: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    chatwoot_business_hours: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)
    chatwoot_sla_webhook_url: str | None = None
    chatwoot_sla_webhook_secret: SecretStr | None = None
    chatwoot_sla_tick_s: float = Field(15.0, gt=0)
    chatwoot_reconcile_s: float = Field(300.0, ge=0)
    rooms_max_publishers: int = Field(6, ge=1, le=64)
    rooms_max_listeners: int = Field(50, ge=0, le=10_000)
    # JSON list of RTCIceServer dicts: [{"urls": ["turn:h"], "username": "u", "credential": "c"}]
    rooms_ice_servers: Annotated[list[dict[str, Any]], NoDecode] = Field(default_factory=list)
    rooms_forwarding: Literal["passthrough", "relay"] = "passthrough"
    rooms_max_video_kbps: int = Field(1500, ge=50, le=20_000)
    rooms_max_audio_kbps: int = Field(64, ge=8, le=512)
    rooms_kick_ban_s: float = Field(600.0, ge=0)
    rooms_telemetry_interval_s: float = Field(2.0, gt=0)
    rooms_reminder_lead_s: float = Field(600.0, ge=0, le=7 * 86400)
    rooms_scheduler_interval_s: float = Field(5.0, gt=0, le=300)
    rooms_media_workers: int = Field(0, ge=0, le=64)
    # the matching plugin (GIGVORA_PLUGINS_ALLOW=matching): the channel gigs are posted in
    matching_channel: str = Field("gigs", min_length=1, max_length=64)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: Any,
                                   *_: Any, **__: Any) -> tuple[Any, ...]:
        """Only explicit values: the environment is read in one place, ``_from_environ``."""
        return (init_settings,)

    @field_validator("cors_origins", "plugins_allow", "plugins_disable", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("chatwoot_routing_rules", "chatwoot_sla_policies",
                     "chatwoot_business_hours", mode="before")
    @classmethod
    def _parse_json(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            empty = "{}" if info.field_name == "chatwoot_business_hours" else "[]"
            value = json.loads(value.strip() or empty)
        return value

    @field_validator("rooms_ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else []
        if not isinstance(value, list) or not all(
                isinstance(server, dict) and server.get("urls") for server in value):
            raise ValueError('must be a JSON list like [{"urls": ["stun:host:3478"]}]')
        return value

    @field_validator("store_url")
    @classmethod
    def _check_store_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite:///", "mongodb://", "mongodb+srv://")):
            raise ValueError("must start with sqlite:/// or mongodb://")
        return value

    @property
    def is_production(self) -> bool:
        """True in production mode, where unsafe settings refuse to boot."""
        return self.env == "production"

    @property
    def effective_store_url(self) -> str:
        """The store URL, defaulting to the embedded SQLite file in the data dir."""
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'gigvora.db').as_posix()}"


def known_variables() -> set[str]:
    """The environment variable names that Settings reads."""
    return {PREFIX + name.upper() for name in Settings.model_fields}


def _validation_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        problems.append(f"{PREFIX}{field.upper()}: {item['msg']}")
    return problems


def production_problems(settings: Settings) -> list[str]:
    """The unsafe settings that production refuses (empty in dev)."""
    if not settings.is_production:
        return []
    problems = []
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        problems.append(f"{PREFIX}JWT_SECRET: production needs a secret of at least "
                        f"{MIN_SECRET_BYTES} bytes")
    if "*" in settings.cors_origins:
        problems.append(f"{PREFIX}CORS_ORIGINS: wildcard origins are refused in production")
    if settings.debug:
        problems.append(f"{PREFIX}DEBUG: debug pages are refused in production")
    if settings.chatwoot_base_url and not settings.chatwoot_webhook_secret:
        problems.append(f"{PREFIX}CHATWOOT_WEBHOOK_SECRET: required in production when the "
                        "Chatwoot bridge is on")
    if settings.chatwoot_sla_webhook_url and not settings.chatwoot_sla_webhook_secret:
        problems.append(f"{PREFIX}CHATWOOT_SLA_WEBHOOK_SECRET: required in production when "
                        f"{PREFIX}CHATWOOT_SLA_WEBHOOK_URL is set (breaches are signed)")
    return problems


def detoxify_problems(settings: Settings) -> list[str]:
    """The Detoxify tier asked for (``on``, or a path given) but unable to load."""
    if settings.moderation_detoxify == "off":
        return []
    paths = {"CHECKPOINT": settings.detoxify_checkpoint, "CONFIG_DIR": settings.detoxify_config_dir}
    problems = [f"{PREFIX}DETOXIFY_{name}: required when {PREFIX}MODERATION_DETOXIFY=on or "
                "the other Detoxify path is set" for name, path in paths.items()
                if path is None and (settings.moderation_detoxify == "on" or any(paths.values()))]
    checkpoint, config_dir = paths["CHECKPOINT"], paths["CONFIG_DIR"]
    if checkpoint is not None and not checkpoint.is_file():
        problems.append(f"{PREFIX}DETOXIFY_CHECKPOINT: no such file {checkpoint}")
    if config_dir is not None and not config_dir.is_dir():
        problems.append(f"{PREFIX}DETOXIFY_CONFIG_DIR: no such folder {config_dir}")
    if settings.moderation_detoxify_hold_at > settings.moderation_detoxify_block_at:
        problems.append(f"{PREFIX}MODERATION_DETOXIFY_HOLD_AT: above "
                        f"{PREFIX}MODERATION_DETOXIFY_BLOCK_AT")
    if (checkpoint or settings.moderation_detoxify == "on") and not all(
            importlib.util.find_spec(name) for name in ("torch", "transformers")):
        problems.append(f"{PREFIX}MODERATION_DETOXIFY: torch and transformers are not "
                        "installed (pip install 'gigvora-live[detoxify]')")
    return problems


def lint_environment(environ: Mapping[str, str] | None = None) -> tuple[Settings | None, list[str]]:
    """Validate the environment; return the settings (if they parse) and every problem found."""
    environ = os.environ if environ is None else environ
    problems = [f"{name}: unknown setting" for name in sorted(environ)
                if name.startswith(PREFIX) and name not in known_variables()]
    values = _from_environ(environ)
    settings = None
    try:
        settings = Settings(**values)
    except ValidationError as error:
        problems.extend(_validation_problems(error))
        bad = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
        partial = Settings(**{k: v for k, v in values.items() if k not in bad})
        problems.extend(production_problems(partial))  # report those too, all at once
        problems.extend(detoxify_problems(partial))
    else:
        problems.extend(production_problems(settings) + detoxify_problems(settings))
    return settings, problems


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings kwargs read from ``environ`` (so tests can pass their own mapping)."""
    return {name: environ[PREFIX + name.upper()] for name in Settings.model_fields
            if PREFIX + name.upper() in environ}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment plus explicit overrides; raise ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    try:
        settings = Settings(**{**_from_environ(environ), **overrides})
    except ValidationError as error:
        raise ConfigError(_validation_problems(error)) from None
    problems = production_problems(settings) + detoxify_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def resolve_jwt_secret(settings: Settings) -> str:
    """The HS256 key: the configured one, or in dev one generated once and kept in DATA_DIR."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if settings.is_production:
        raise ConfigError([f"{PREFIX}JWT_SECRET: required in production"])
    path = settings.data_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Settings as a dict with every secret masked, for lint output and the operator console."""
    shown: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "**********"
        elif name == "rooms_ice_servers":
            value = [{**server, **({"credential": "**********"} if "credential" in server else {})}
                     for server in value]
        elif isinstance(value, Path):
            value = str(value)
        shown[PREFIX + name.upper()] = value
    return shown
