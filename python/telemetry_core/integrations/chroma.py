"""Chroma's product telemetry through telemetry-core.

Give chromadb this class as its product telemetry implementation::

    import chromadb
    from chromadb.config import Settings

    client = chromadb.Client(Settings(
        chroma_product_telemetry_impl="telemetry_core.integrations.chroma.ProductTelemetry",
    ))

Chroma's own events (``ClientStartEvent``, ``ClientCreateCollectionEvent``,
``CollectionAddEvent``, ...) are shipped with Chroma's names, batch keys and maximum batch
sizes. Collection ids are sent only as keyed hashes; the counts Chroma adds up when it
batches (``add_amount``, ``with_documents``, ...) are summed by the core and sent exactly,
and partial batches are sent at exit, which Chroma's own client lost.

**Consent** is Chroma's: ``Settings(anonymized_telemetry=False)``, the
``ANONYMIZED_TELEMETRY`` variable, a ``.env`` file in the working directory, and
``DO_NOT_TRACK``. Opted out, this component has no side effect at all: no thread, no file,
no socket.

**Where events go** is explicit, never a default host:

* ``TELEMETRY_CORE_ENDPOINT``: a PostHog-compatible host (HTTPS, or HTTP on loopback), e.g.
  a local ``telemetry-collector``; with ``TELEMETRY_CORE_API_KEY``, the project key, and
  ``TELEMETRY_CORE_CA_FILE``, a PEM file of the CA that signed the host's certificate when
  it is an internal one (added to the bundled roots).
* ``TELEMETRY_DEBUG=1``: print each anonymized payload to stderr and send nothing.
* Neither set: nothing is sent anywhere (one debug line on the ``telemetry_core`` logger).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import chromadb
from chromadb.config import System
from chromadb.telemetry.product import ProductTelemetryClient, ProductTelemetryEvent
from overrides import override

from telemetry_core import Client, ConfigurationError, Settings, TelemetryEvent

__all__ = ["CA_FILE_ENV", "ENDPOINT_ENV", "KEY_ENV", "ProductTelemetry", "to_telemetry_event"]

ENDPOINT_ENV = "TELEMETRY_CORE_ENDPOINT"
KEY_ENV = "TELEMETRY_CORE_API_KEY"
CA_FILE_ENV = "TELEMETRY_CORE_CA_FILE"

_log = logging.getLogger("telemetry_core.integrations.chroma")

#: Per Chroma event: the counters its ``batch()`` adds up (sent exactly and summed by
#: the core). Properties not listed are anonymized by kind below.
_SUMMED: dict[str, tuple[str, ...]] = {
    "CollectionAddEvent": ("add_amount", "with_documents", "with_metadata", "with_uris"),
    "CollectionUpdateEvent": (
        "update_amount",
        "with_embeddings",
        "with_metadata",
        "with_documents",
        "with_uris",
    ),
    "CollectionQueryEvent": (
        "query_amount",
        "filtered_ids_amount",
        "with_metadata_filter",
        "with_document_filter",
        "n_results",
        "include_metadatas",
        "include_documents",
        "include_uris",
        "include_distances",
    ),
    "CollectionGetEvent": (
        "ids_count",
        "include_metadata",
        "include_documents",
        "include_uris",
    ),
}

#: Properties whose values identify a user's data: sent only as keyed hashes.
_HASHED = frozenset({"collection_uuid", "collection_id", "collection_name", "database", "tenant"})

#: Chroma's settings that its own client sent with every event; all are labels or flags.
_WHITELISTED_SETTINGS = (
    "chroma_api_impl",
    "is_persistent",
    "chroma_server_ssl_enabled",
    "chroma_server_api_default_path",
)


def to_telemetry_event(event: ProductTelemetryEvent) -> TelemetryEvent:
    """Chroma's event as a :class:`TelemetryEvent`: the same name, batch key and size.

    Only what this integration knows is declared here: which properties are ids (sent
    as keyed hashes) and which counters Chroma sums. Everything else is the core's rule:
    summed counters and ``batch_size`` exact, other numbers rounded, booleans kept. An
    event Chroma adds later without a known sum rule is sent unbatched rather than with
    guessed sums.
    """
    name = event.name
    properties: dict[str, object] = dict(event.properties)
    kinds = {key: "hashed" for key in properties if key in _HASHED}
    summed = _SUMMED.get(name)
    if summed is None or event.max_batch_size <= 1:
        return TelemetryEvent(name, properties, kinds=kinds)
    return TelemetryEvent(
        name,
        properties,
        kinds=kinds,
        batch_key=event.batch_key,
        max_batch_size=event.max_batch_size,
        summed=summed,
    )


def _context(system: System) -> dict[str, object]:
    settings = system.settings
    context: dict[str, object] = {
        "server_context": ProductTelemetryClient.SERVER_CONTEXT.value,
        "hosted": settings.chroma_server_host == "api.trychroma.com",
    }
    for key in _WHITELISTED_SETTINGS:
        value = getattr(settings, key, None)
        if value is None or isinstance(value, (bool, int, float, str)):
            context[key] = value
    return context


def _explicit(settings: Any) -> bool | None:
    # pydantic-settings folds the environment and .env into the settings object, so a value
    # may also have come from ANONYMIZED_TELEMETRY; the core reads those too and agrees
    # (off beats on), it only names "code" as the source first in that case.
    fields_set = getattr(settings, "model_fields_set", None)
    if fields_set is not None and "anonymized_telemetry" not in fields_set:
        return None
    return bool(settings.anonymized_telemetry)


class ProductTelemetry(ProductTelemetryClient):
    """A Chroma ``ProductTelemetryClient`` that ships Chroma's events through the core.

    Built by chromadb's ``System`` from
    ``chroma_product_telemetry_impl="telemetry_core.integrations.chroma.ProductTelemetry"``.
    """

    _client: Client | None

    def __init__(self, system: System) -> None:
        super().__init__(system)
        endpoint = os.environ.get(ENDPOINT_ENV) or None
        settings = Settings(
            anonymized_telemetry=_explicit(system.settings),
            product="chromadb",
            version=chromadb.__version__,
            profile="chroma",
            endpoint=endpoint,
            api_key=os.environ.get(KEY_ENV) or None,
            ca_file=os.environ.get(CA_FILE_ENV) or None,
            context=_context(system),
        )
        try:
            self._client = Client(settings)
        except ConfigurationError as e:
            # Telemetry must never stop Chroma from starting.
            log = _log.warning if endpoint else _log.debug
            log("Chroma telemetry is not sent: %s", e)
            self._client = None

    @property
    def client(self) -> Client | None:
        """The core client, or None when no destination is configured."""
        return self._client

    @override
    def capture(self, event: ProductTelemetryEvent) -> None:
        client = self._client
        if client is None or not client.enabled:
            return
        try:
            client.capture(to_telemetry_event(event))
        except Exception:
            # An event Chroma adds later with a property we cannot convert must not break
            # a database call; telemetry failures are logged, never raised into the host.
            _log.debug("could not capture %s", event.name, exc_info=True)

    @override
    def stop(self) -> None:
        # Chroma stops its components when a client closes: send what is pending, partial
        # batches included, bounded by the deadline. Exit shuts the client down anyway.
        super().stop()
        if self._client is not None and self._client.enabled:
            self._client.flush(self._client.shutdown_timeout)
