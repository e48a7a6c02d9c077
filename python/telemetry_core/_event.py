"""Events: a name, properties, their privacy kinds, and an optional batch rule."""

from __future__ import annotations

# `typing` costs milliseconds to import; annotations are strings here, so it is only
# imported for type checkers (mypy treats any TYPE_CHECKING name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["KINDS", "TelemetryEvent"]

#: How a property can be declared (see ``TelemetryEvent.kinds``):
#: ``safe`` sent as is; ``hashed`` sent as a keyed hash; ``exact`` a number sent exactly;
#: ``number`` a number rounded; ``text`` free text scrubbed of e-mails, addresses, paths
#: and names; ``dropped`` never sent. A property without a kind is anonymized by its type:
#: strings hashed, numbers rounded, booleans and None kept.
KINDS = ("safe", "hashed", "exact", "number", "text", "dropped")


class TelemetryEvent:
    """One product-usage event, shaped like Chroma's ``ProductTelemetryEvent``.

    Events with the same ``batch_key`` merge (Chroma's rule): the first is sent at once,
    later ones add up their ``summed`` properties and a ``batch_size`` until
    ``max_batch_size`` of them, then go out; partial batches go out at the flush interval
    and at shutdown.

    >>> event = TelemetryEvent(
    ...     "collection_add",
    ...     {"collection_uuid": "6c6e...", "add_amount": 20},
    ...     kinds={"collection_uuid": "hashed"},
    ...     batch_key="6c6e...collection_add",
    ...     max_batch_size=3000,
    ...     summed=("add_amount",),
    ... )
    >>> event.name
    'collection_add'
    """

    __slots__ = ("batch_key", "kinds", "max_batch_size", "name", "properties", "summed")

    name: str
    properties: dict[str, object]
    kinds: dict[str, str]
    batch_key: str | None
    max_batch_size: int
    summed: tuple[str, ...]

    def __init__(
        self,
        name: str,
        properties: Mapping[str, object] | None = None,
        *,
        kinds: Mapping[str, str] | None = None,
        batch_key: str | None = None,
        max_batch_size: int = 1,
        summed: Iterable[str] = (),
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"the event name must be a str, not {type(name).__name__}")
        if batch_key is not None and not isinstance(batch_key, str):
            raise TypeError(f"batch_key must be a str or None, not {type(batch_key).__name__}")
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise TypeError(f"max_batch_size must be an int, not {type(max_batch_size).__name__}")
        if isinstance(summed, str):
            raise TypeError("summed must be a sequence of property names, not a single str")
        self.name = name
        self.properties = dict(properties) if properties is not None else {}
        self.kinds = dict(kinds) if kinds is not None else {}
        self.batch_key = batch_key
        self.max_batch_size = max_batch_size
        self.summed = tuple(summed)

    def __repr__(self) -> str:
        parts = [repr(self.name), repr(self.properties)]
        if self.kinds:
            parts.append(f"kinds={self.kinds!r}")
        if self.batch_key is not None:
            parts.append(f"batch_key={self.batch_key!r}")
            parts.append(f"max_batch_size={self.max_batch_size!r}")
            parts.append(f"summed={self.summed!r}")
        return f"TelemetryEvent({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelemetryEvent):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict
