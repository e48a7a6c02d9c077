"""Settings: what a client is for, where it sends, and the explicit opt-out in code."""

from __future__ import annotations

import os

from telemetry_core._native import ConfigurationError, parse_bool

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from enum import Enum
    from typing import Any, Union

    #: A path given as str or os.PathLike.
    PathLike = Union[str, os.PathLike[str]]
    #: A granularity: its name, or a member of an enum of names (OpenTelemetryGranularity).
    Granularity = Enum

__all__ = ["MissingProductWarning", "Settings"]

_SINKS = ("posthog", "file", "debug", "memory")
#: What ``product`` means when it is not passed: Chroma, whose integration relies on it.
_DEFAULT_PRODUCT = "chromadb"
_MODES = ("library", "cli")
_TLS_ROOTS = ("bundled", "platform")


class MissingProductWarning(UserWarning):
    """A :class:`Client` was built from settings that name no product.

    Such a client is Chroma's: its events are labelled ``chromadb`` and Chroma's switches
    decide consent. Issued once per process, on the first such client; pass
    ``Settings(product="your-product", version=...)`` to name yours, or
    ``product="chromadb"`` to keep Chroma's defaults without the warning. As for any
    warning, a filter can make it an exception, e.g. in a test suite
    ``pytest -W error::telemetry_core.MissingProductWarning``.
    """

    __module__ = "telemetry_core"  # where users import it from, and how it is shown


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"Settings.{name} must be {expected}, not {type(value).__name__}")


def _opt_str(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _type_error(name, "a str or None", value)
    return value


def _opt_int(name: str, value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _type_error(name, "an int or None", value)
    if value is not None and value < 0:
        raise ConfigurationError(f"Settings.{name} must not be negative, got {value}")
    return value


def _opt_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number of seconds or None", value)
    if not value >= 0:  # also refuses NaN
        raise ConfigurationError(f"Settings.{name} must be a non-negative number, got {value}")
    return float(value)


def _opt_path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise _type_error(name, "a path (str or os.PathLike) or None", value)
    return os.fspath(value)


def _explicit(value: object) -> bool | None:
    """Chroma's field accepts what pydantic accepts: a bool, or a string such as "False"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_bool(value)
        except ValueError as e:
            raise ConfigurationError(f"Settings.anonymized_telemetry: {e}") from None
    raise _type_error("anonymized_telemetry", "a bool", value)


class Settings:
    """How a :class:`Client` decides, captures and delivers.

    Name your product: ``Settings(product="acme", version="1.4.0")`` labels events
    ``acme`` and picks the generic ``acme`` profile, whose switches are the
    ``ACME_TELEMETRY_DISABLED`` and ``ACME_TELEMETRY`` variables and a ``.env`` file.
    ``profile=`` picks a known product's conventions instead (``chroma``, ``qdrant``,
    ``evidently``). Without ``product``, the settings describe Chroma (product
    ``chromadb`` and the ``chroma`` profile), as its integration needs, and a
    :class:`Client` built from them warns once per process with
    :class:`MissingProductWarning`.

    ``anonymized_telemetry`` is ``True`` unless given, as in Chroma; only a value you pass
    counts as an explicit setting in code, and it applies to every profile. Off beats on:
    ``anonymized_telemetry=True`` cannot override an environment variable or
    ``DO_NOT_TRACK=1`` that says off. Which variables a client reads depends on its
    profile; ``client.decision`` lists every source it considered.

    >>> s = Settings(anonymized_telemetry=False)
    >>> s.anonymized_telemetry, s.product
    (False, 'chromadb')
    >>> Settings(product="acme", sink="memory").profile is None  # generic "acme"
    True

    Usage statistics (``Client.usage``): with telemetry on, the usage report is sent home
    ``usage_report_delay`` seconds after the first recording (default 10), then every
    ``usage_report_interval`` (default 3600) and at shutdown; ``usage_reports=False`` keeps
    it local (recording and the local endpoints work either way).

    Error reports (``Client.report_crashes``, ``Client.capture_exception``): a crash waits
    at most ``crash_deadline`` seconds for its report (default 1); at most one report per
    fingerprint every ``crash_per_fingerprint`` seconds (default 60) and ``crash_per_hour``
    reports an hour (default 20). ``app_packages`` names the top-level packages of your own
    code (``("acme",)``): their frames count as the application's even when installed in
    site-packages, as a product installed with pip is.

    Observability (traces for the operator's own OpenTelemetry collector, independent of
    the telemetry consent): Chroma's names work as Chroma users write them,
    ``chroma_otel_collection_endpoint``, ``chroma_otel_service_name``,
    ``chroma_otel_collection_headers`` (a dict) and ``chroma_otel_granularity``
    (``"none"``, ``"operation"``, ``"operation_and_segment"``, ``"all"``, or an
    ``OpenTelemetryGranularity``); the same settings for any product are ``otel_*``
    (``otel_collection_endpoint``, ...), with ``otel_protocol`` (``grpc``,
    ``http/protobuf``, ``http/json``), ``otel_sampler`` and ``otel_sampler_arg``,
    ``otel_resource_attributes``, ``otel_disabled``, ``otel_compression``, the queue's
    ``otel_max_queue_size``, ``otel_max_export_batch_size``, ``otel_schedule_delay`` and
    ``otel_export_timeout``. Each one given beats every variable (``CHROMA_OTEL_*`` or the
    product's ``<PREFIX>_OTEL_*``, then ``OTEL_*``); the core resolves them. A value it
    cannot understand is a warning on the ``telemetry_core`` logger, never an exception.

    HTTPS trust, for the events and the trace exports: ``ca_file`` is a PEM file of CA
    certificates trusted besides the roots (an internal CA that signed
    ``https://telemetry.corp.internal``); traces use it unless the operator's
    ``OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`` or ``OTEL_EXPORTER_OTLP_CERTIFICATE`` names
    another file. ``tls_roots`` is ``"bundled"`` (Mozilla's roots compiled into the
    library, the default) or ``"platform"`` (the system's, through the platform's
    verifier). A ``ca_file`` that is missing or holds no certificate makes
    :class:`Client` raise ``ConfigurationError`` naming it.

    Durations are in seconds. ``environment``, ``working_dir``, ``install_id`` and
    ``secret_hex`` are test hooks: ``environment`` replaces the process environment for
    this client, ``install_id``/``secret_hex`` fix the identity instead of the stored one.
    """

    __slots__ = (
        "_explicit",
        "_product",
        "api_key",
        "app_packages",
        "args",
        "backoff_base",
        "ca_file",
        "config_dir",
        "connect_timeout",
        "context",
        "crash_deadline",
        "crash_per_fingerprint",
        "crash_per_hour",
        "endpoint",
        "environment",
        "file_path",
        "flush_interval",
        "install_id",
        "max_batch_bytes",
        "max_batch_events",
        "max_retries",
        "mode",
        "notice",
        "otel_collection_endpoint",
        "otel_collection_headers",
        "otel_compression",
        "otel_disabled",
        "otel_export_timeout",
        "otel_granularity",
        "otel_max_export_batch_size",
        "otel_max_queue_size",
        "otel_protocol",
        "otel_resource_attributes",
        "otel_sampler",
        "otel_sampler_arg",
        "otel_schedule_delay",
        "otel_service_name",
        "profile",
        "queue_capacity",
        "request_timeout",
        "secret_hex",
        "shutdown_timeout",
        "sink",
        "tls_roots",
        "usage_report_delay",
        "usage_report_interval",
        "usage_reports",
        "version",
        "working_dir",
    )

    def __init__(
        self,
        *,
        anonymized_telemetry: bool | str | None = None,
        product: str | None = None,
        version: str = "",
        profile: str | Mapping[str, object] | None = None,
        endpoint: str | None = None,
        api_key: str | None = None,
        sink: str = "posthog",
        file_path: PathLike | None = None,
        queue_capacity: int | None = None,
        max_batch_events: int | None = None,
        max_batch_bytes: int | None = None,
        flush_interval: float | None = None,
        connect_timeout: float | None = None,
        request_timeout: float | None = None,
        ca_file: PathLike | None = None,
        tls_roots: str | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        shutdown_timeout: float = 1.0,
        mode: str = "library",
        args: Iterable[str] = (),
        config_dir: PathLike | None = None,
        working_dir: PathLike | None = None,
        environment: Mapping[str, str] | None = None,
        install_id: str | None = None,
        secret_hex: str | None = None,
        context: Mapping[str, object] | None = None,
        notice: Mapping[str, object] | None = None,
        usage_reports: bool | None = None,
        usage_report_delay: float | None = None,
        usage_report_interval: float | None = None,
        crash_deadline: float | None = None,
        crash_per_fingerprint: float | None = None,
        crash_per_hour: int | None = None,
        app_packages: Iterable[str] = (),
        otel_collection_endpoint: str | None = None,
        otel_service_name: str | None = None,
        otel_collection_headers: Mapping[str, str] | None = None,
        otel_granularity: str | Granularity | None = None,
        otel_protocol: str | None = None,
        otel_sampler: str | None = None,
        otel_sampler_arg: str | float | None = None,
        otel_resource_attributes: Mapping[str, str] | None = None,
        otel_disabled: bool | None = None,
        otel_compression: str | None = None,
        otel_max_queue_size: int | None = None,
        otel_max_export_batch_size: int | None = None,
        otel_schedule_delay: float | None = None,
        otel_export_timeout: float | None = None,
        chroma_otel_collection_endpoint: str | None = None,
        chroma_otel_service_name: str | None = None,
        chroma_otel_collection_headers: Mapping[str, str] | None = None,
        chroma_otel_granularity: str | Granularity | None = None,
    ) -> None:
        self._explicit = _explicit(anonymized_telemetry)
        self._product = _opt_str("product", product)
        if not isinstance(version, str):
            raise _type_error("version", "a str", version)
        if profile is not None and not isinstance(profile, str):
            if not hasattr(profile, "items"):
                raise _type_error("profile", "a str, a mapping or None", profile)
            profile = dict(profile)
        if not isinstance(sink, str):
            raise _type_error("sink", "a str", sink)
        if sink not in _SINKS:
            raise ConfigurationError(f"unknown sink {sink!r}: use {', '.join(_SINKS)}")
        if not isinstance(mode, str):
            raise _type_error("mode", "a str", mode)
        if mode not in _MODES:
            raise ConfigurationError(f"unknown mode {mode!r}: use library or cli")
        if isinstance(args, str):
            raise TypeError("Settings.args must be a sequence of str, not a single str")
        args = tuple(args)
        if not all(isinstance(a, str) for a in args):
            raise TypeError("Settings.args must be a sequence of str")
        self.version = version
        self.profile = profile
        self.endpoint = _opt_str("endpoint", endpoint)
        self.api_key = _opt_str("api_key", api_key)
        self.sink = sink
        self.file_path = _opt_path("file_path", file_path)
        self.queue_capacity = _opt_int("queue_capacity", queue_capacity)
        self.max_batch_events = _opt_int("max_batch_events", max_batch_events)
        self.max_batch_bytes = _opt_int("max_batch_bytes", max_batch_bytes)
        self.flush_interval = _opt_seconds("flush_interval", flush_interval)
        self.connect_timeout = _opt_seconds("connect_timeout", connect_timeout)
        self.request_timeout = _opt_seconds("request_timeout", request_timeout)
        self.ca_file = _opt_path("ca_file", ca_file)
        tls_roots = _opt_str("tls_roots", tls_roots)
        if tls_roots is not None and tls_roots not in _TLS_ROOTS:
            raise ConfigurationError(f"unknown tls_roots {tls_roots!r}: use bundled or platform")
        self.tls_roots = tls_roots
        self.max_retries = _opt_int("max_retries", max_retries)
        self.backoff_base = _opt_seconds("backoff_base", backoff_base)
        timeout = _opt_seconds("shutdown_timeout", shutdown_timeout)
        self.shutdown_timeout = 1.0 if timeout is None else timeout
        self.mode = mode
        self.args = args
        self.config_dir = _opt_path("config_dir", config_dir)
        self.working_dir = _opt_path("working_dir", working_dir)
        if environment is not None:
            environment = dict(environment)
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in environment.items()):
                raise TypeError("Settings.environment must map str to str")
        self.environment = environment
        self.install_id = _opt_str("install_id", install_id)
        self.secret_hex = _opt_str("secret_hex", secret_hex)
        self.context = dict(context) if context is not None else {}
        self.notice = dict(notice) if notice is not None else None
        if usage_reports is not None and not isinstance(usage_reports, bool):
            raise _type_error("usage_reports", "a bool or None", usage_reports)
        self.usage_reports = usage_reports
        self.usage_report_delay = _opt_seconds("usage_report_delay", usage_report_delay)
        self.usage_report_interval = _opt_seconds("usage_report_interval", usage_report_interval)
        self.crash_deadline = _opt_seconds("crash_deadline", crash_deadline)
        self.crash_per_fingerprint = _opt_seconds("crash_per_fingerprint", crash_per_fingerprint)
        self.crash_per_hour = _opt_int("crash_per_hour", crash_per_hour)
        if isinstance(app_packages, str):
            raise TypeError("Settings.app_packages must be a sequence of str, not a single str")
        app_packages = tuple(app_packages)
        if not all(isinstance(p, str) and p for p in app_packages):
            raise TypeError("Settings.app_packages must be a sequence of non-empty str")
        self.app_packages = app_packages
        # Observability: Chroma's four names are the same settings as the generic ones.
        endpoint_ = _alias("collection_endpoint", otel_collection_endpoint,
                           chroma_otel_collection_endpoint)  # fmt: skip
        self.otel_collection_endpoint = _opt_str("otel_collection_endpoint", endpoint_)
        service = _alias("service_name", otel_service_name, chroma_otel_service_name)
        self.otel_service_name = _opt_str("otel_service_name", service)
        headers = _alias("collection_headers", otel_collection_headers,
                         chroma_otel_collection_headers)  # fmt: skip
        self.otel_collection_headers = _opt_str_map("otel_collection_headers", headers)
        granularity = _alias("granularity", otel_granularity, chroma_otel_granularity)
        self.otel_granularity = _opt_granularity(granularity)
        self.otel_protocol = _opt_str("otel_protocol", otel_protocol)
        self.otel_sampler = _opt_str("otel_sampler", otel_sampler)
        if isinstance(otel_sampler_arg, (int, float)) and not isinstance(otel_sampler_arg, bool):
            otel_sampler_arg = repr(float(otel_sampler_arg))
        self.otel_sampler_arg = _opt_str("otel_sampler_arg", otel_sampler_arg)
        self.otel_resource_attributes = _opt_str_map(
            "otel_resource_attributes", otel_resource_attributes
        )
        if otel_disabled is not None and not isinstance(otel_disabled, bool):
            raise _type_error("otel_disabled", "a bool or None", otel_disabled)
        self.otel_disabled = otel_disabled
        self.otel_compression = _opt_str("otel_compression", otel_compression)
        self.otel_max_queue_size = _otel_count("otel_max_queue_size", otel_max_queue_size)
        self.otel_max_export_batch_size = _otel_count(
            "otel_max_export_batch_size", otel_max_export_batch_size
        )
        self.otel_schedule_delay = _otel_seconds("otel_schedule_delay", otel_schedule_delay)
        self.otel_export_timeout = _otel_seconds("otel_export_timeout", otel_export_timeout)

    # Chroma's names for the observability settings, as Chroma's own Settings has them.
    @property
    def chroma_otel_collection_endpoint(self) -> str | None:
        """Chroma's name for :attr:`otel_collection_endpoint`."""
        return self.otel_collection_endpoint

    @property
    def chroma_otel_service_name(self) -> str | None:
        """Chroma's name for :attr:`otel_service_name`."""
        return self.otel_service_name

    @property
    def chroma_otel_collection_headers(self) -> dict[str, str] | None:
        """Chroma's name for :attr:`otel_collection_headers`."""
        return self.otel_collection_headers

    @property
    def chroma_otel_granularity(self) -> str | None:
        """Chroma's name for :attr:`otel_granularity`."""
        return self.otel_granularity

    def otel_config(self) -> dict[str, object]:
        """The ``"otel"`` object of the core's ``ClientConfig`` (``OtelSettings``): only
        the settings made here, each of which beats every environment variable."""
        otel: dict[str, object] = {
            "endpoint": self.otel_collection_endpoint,
            "service_name": self.otel_service_name,
            "headers": self.otel_collection_headers,
            "granularity": self.otel_granularity,
            "protocol": self.otel_protocol,
            "sampler": self.otel_sampler,
            "sampler_arg": self.otel_sampler_arg,
            "resource_attributes": self.otel_resource_attributes,
            "disabled": self.otel_disabled,
            "compression": self.otel_compression,
            "max_queue_size": self.otel_max_queue_size,
            "max_export_batch_size": self.otel_max_export_batch_size,
            "schedule_delay_ms": _ms(self.otel_schedule_delay),
            "export_timeout_ms": _ms(self.otel_export_timeout),
        }
        return {k: v for k, v in otel.items() if v is not None}

    @property
    def anonymized_telemetry(self) -> bool:
        """The setting in code: ``True`` unless you passed ``False`` (Chroma's default).

        ``anonymized_telemetry=False`` turns telemetry off for every product. The other
        switches depend on the client's profile (from ``product`` unless ``profile=``
        names one), and a client reads only its own profile's:

        * ``chroma`` (``product="chromadb"``, or no product): ``ANONYMIZED_TELEMETRY``,
          in the environment or in a ``.env`` file in the working directory.
        * ``qdrant``: ``QDRANT__TELEMETRY_DISABLED``, ``telemetry_disabled`` in
          ``config/config.yaml`` or ``config/production.yaml``, ``--disable-telemetry``
          in ``args``.
        * ``evidently``: ``EVIDENTLY_DISABLE_TELEMETRY``; on only with ``mode="cli"``.
        * any other name, e.g. ``product="my-tool"``: ``MY_TOOL_TELEMETRY_DISABLED`` and
          ``MY_TOOL_TELEMETRY``, in the environment or in ``.env``.

        ``DO_NOT_TRACK`` and the user's saved choice (``telemetry disable``) apply to
        every profile. So ``ANONYMIZED_TELEMETRY=False`` turns off a Chroma client and
        leaves a ``my-tool`` client on. ``Client.decision`` lists every source the client
        considered and what each said.
        """
        return True if self._explicit is None else self._explicit

    @property
    def explicit(self) -> bool | None:
        """What was passed as ``anonymized_telemetry``, or None when it was not passed."""
        return self._explicit

    @property
    def product(self) -> str:
        """The product's name, sent with every event: ``chromadb`` unless you named one."""
        return _DEFAULT_PRODUCT if self._product is None else self._product

    @product.setter
    def product(self, value: str) -> None:
        if not isinstance(value, str):
            raise _type_error("product", "a str", value)
        self._product = value

    @property
    def product_named(self) -> bool:
        """Whether a product was named; when not, it is Chroma's ``chromadb``.

        >>> Settings().product_named, Settings(product="acme").product_named
        (False, True)
        """
        return self._product is not None

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed, checked like the constructor's arguments.

        >>> Settings(product="acme", mode="library").replace(mode="cli").mode
        'cli'
        """
        fields: dict[str, Any] = {
            name: getattr(self, name) for name in self.__slots__ if not name.startswith("_")
        }
        fields["anonymized_telemetry"] = self._explicit
        # A copy of settings without a product stays without one (and still warns).
        fields["product"] = self._product
        for name in list(changes):
            if name.startswith("chroma_otel_"):
                generic = name.removeprefix("chroma_")
                if generic in changes:
                    raise TypeError(f"Settings.replace() got both {name} and {generic}")
                changes[generic] = changes.pop(name)
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Settings has no field {', '.join(sorted(unknown))}")
        fields.update(changes)
        return Settings(**fields)

    def to_config(self) -> dict[str, object]:
        """The JSON form of the core's ``ClientConfig`` that these settings stand for."""
        config: dict[str, object] = {
            "product": self.product,
            "version": self.version,
            "sink": self.sink,
            "mode": self.mode,
            "args": list(self.args),
            "shutdown_timeout_ms": _ms(self.shutdown_timeout),
        }
        if self._explicit is not None:
            config["explicit"] = self._explicit
        optional: dict[str, object] = {
            "profile": self.profile,
            "endpoint": self.endpoint,
            "api_key": self.api_key,
            "file_path": self.file_path,
            "queue_capacity": self.queue_capacity,
            "max_batch_events": self.max_batch_events,
            "max_batch_bytes": self.max_batch_bytes,
            "flush_interval_ms": _ms(self.flush_interval),
            "connect_timeout_ms": _ms(self.connect_timeout),
            "request_timeout_ms": _ms(self.request_timeout),
            "ca_file": self.ca_file,
            "tls_roots": self.tls_roots,
            "max_retries": self.max_retries,
            "backoff_base_ms": _ms(self.backoff_base),
            "config_dir": self.config_dir,
            "working_dir": self.working_dir,
            "environment": self.environment,
            "install_id": self.install_id,
            "secret_hex": self.secret_hex,
            "notice": self.notice,
            "usage_reports": self.usage_reports,
            "usage_report_delay_ms": _ms(self.usage_report_delay),
            "usage_report_interval_ms": _ms(self.usage_report_interval),
        }
        config.update((k, v) for k, v in optional.items() if v is not None)
        crash = {
            "deadline_ms": _ms(self.crash_deadline),
            "per_fingerprint_ms": _ms(self.crash_per_fingerprint),
            "per_hour": self.crash_per_hour,
        }
        if any(v is not None for v in crash.values()):
            config["crash"] = {k: v for k, v in crash.items() if v is not None}
        if self.context:
            config["context"] = dict(self.context)
        otel = self.otel_config()
        if otel:
            config["otel"] = otel
        return config

    def __repr__(self) -> str:
        shown: dict[str, object] = {}
        if self._explicit is not None:
            shown["anonymized_telemetry"] = self._explicit
        shown.update(
            (k, v)
            for k, v in self.to_config().items()
            if k not in ("explicit", "api_key", "secret_hex", "otel") and v not in ([], {})
        )
        for k, v in self.otel_config().items():
            if k == "headers" and isinstance(v, dict):
                v = dict.fromkeys(v, "***")  # header values are API keys
            shown[f"otel.{k}"] = v
        if self.app_packages:
            shown["app_packages"] = self.app_packages
        if self.api_key:
            shown["api_key"] = "***"  # never echoed: reprs end up in logs
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _alias(name: str, generic: object, chroma: object) -> object:
    """One observability setting given by its generic or by Chroma's name (not both)."""
    if chroma is None:
        return generic
    if generic is not None:
        raise TypeError(
            f"Settings got both otel_{name} and chroma_otel_{name}: they are one setting"
        )
    return chroma


def _opt_str_map(name: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not hasattr(value, "items"):
        raise _type_error(name, "a mapping of str to str or None", value)
    out = dict(value.items())
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in out.items()):
        raise TypeError(f"Settings.{name} must map str to str")
    return out


def _opt_granularity(value: object) -> str | None:
    """A granularity's name: a str as given (the core warns about an unknown one and keeps
    its default), or ``OpenTelemetryGranularity.OPERATION`` and the like."""
    if value is None or isinstance(value, str):
        return value
    named = getattr(value, "value", None)  # an Enum member such as Chroma's
    if isinstance(named, str):
        return named
    raise _type_error("otel_granularity", "a str, an OpenTelemetryGranularity or None", value)


def _otel_warning(message: str) -> None:
    """A bad observability value is a warning on the ``telemetry_core`` logger, never an
    exception (a bad tracing setting must not stop the host from starting)."""
    import logging  # only here: importing telemetry_core stays cheap

    logging.getLogger("telemetry_core").warning("telemetry: %s", message)


def _otel_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(name, "an int or None", value)
    if value < 0:
        _otel_warning(f"Settings.{name}={value} is negative; the default applies")
        return None
    return value


def _otel_seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(name, "a number of seconds or None", value)
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        _otel_warning(f"Settings.{name}={value} is not a duration; the default applies")
        return None
    return float(value)
