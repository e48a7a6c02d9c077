"""The Python API: settings, capture, decision, stats, errors, context."""

from __future__ import annotations

import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

import telemetry_core
from telemetry_core import (
    Client,
    ConfigurationError,
    InvalidEventError,
    MissingProductWarning,
    Settings,
    TelemetryError,
    TelemetryEvent,
)
from telemetry_core import _client as client_module
from telemetry_core.integrations.cli import CliTelemetry

from conftest import clean_env, run_python

SECRET = "11a245dd53334a50626b2356ccff3083922976f8016efbfb387ac3ab23a0dcf7"


def memory_client(**kw: object) -> Client:
    settings: dict[str, object] = {"product": "acme", "version": "1.0", "sink": "memory"}
    settings.setdefault("environment", {})
    settings.update(kw)
    return Client(Settings(**settings))  # type: ignore[arg-type]


def props(event: dict[str, object]) -> dict[str, object]:
    p = event["properties"]
    assert isinstance(p, dict)
    return p


def test_capture_with_keywords_anonymizes_by_type_and_adds_python_context() -> None:
    with memory_client() as client:
        client.capture("started", mode="server", workers=123456, ok=True, nothing=None)
    (event,) = client.delivered()
    p = props(event)
    assert event["event"] == "started"
    assert p["mode"] != "server"
    assert len(str(p["mode"])) == 16
    assert p["workers"] == 123000  # 3 significant digits
    assert (p["ok"], p["nothing"]) == (True, None)
    assert p["runtime"] == "python"
    assert p["runtime_version"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert p["python_implementation"] == sys.implementation.name
    assert p["in_venv"] is (sys.prefix != sys.base_prefix)
    assert p["in_jupyter"] is False
    assert p["in_colab"] is False
    assert isinstance(p["in_conda"], bool)
    assert p["$geoip_disable"] is True
    assert p["$ip"] is None


def test_telemetry_event_declares_kinds_and_batches_like_chroma() -> None:
    client = memory_client(flush_interval=3600)
    for _ in range(5):
        client.capture(
            TelemetryEvent(
                "collection_add",
                {"collection_uuid": "my_collection", "add_amount": 1234, "label": "default"},
                kinds={"collection_uuid": "hashed", "label": "safe"},
                batch_key="c1:add",
                max_batch_size=3,
                summed=("add_amount",),
            )
        )
    stats = client.shutdown(5)
    events = client.delivered()
    # First at once; then 3 merged (the maximum); the last one at shutdown.
    assert [props(e)["batch_size"] for e in events] == [1, 3, 1]
    assert [props(e)["add_amount"] for e in events] == [1234, 3702, 1234]  # exact sums
    assert {props(e)["label"] for e in events} == {"default"}
    assert {props(e)["collection_uuid"] for e in events} != {"my_collection"}
    assert (stats.captured, stats.sent, stats.merged, stats.queued) == (5, 5, 2, 0)


def test_fixed_identity_makes_hashes_reproducible() -> None:
    a = memory_client(install_id="6f3c8a1e-2b4d-4e5f-9a0b-1c2d3e4f5a6b", secret_hex=SECRET)
    a.capture("x", name="my_collection")
    a.shutdown()
    (event,) = a.delivered()
    assert event["distinct_id"] == "6f3c8a1e-2b4d-4e5f-9a0b-1c2d3e4f5a6b"
    assert props(event)["name"] == "80ded56ea35a1d2c"  # the shared vector's weak case


def chroma_client(**kw: object) -> Client:
    """A Chroma client reading the real (test-isolated) environment and HOME."""
    settings: dict[str, object] = {"product": "chromadb", "version": "1.5.9", "profile": "chroma"}
    settings.update(kw)
    return Client(Settings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "debug"),
    [
        ({"sink": "memory"}, False),
        # The debug switch replaces a real destination, which would store the id.
        ({"endpoint": "https://eu.i.posthog.com", "api_key": "phc_x"}, True),
    ],
    ids=["memory", "TELEMETRY_DEBUG=1"],
)
def test_memory_and_debug_sinks_write_no_id_file(
    settings: dict[str, object],
    debug: bool,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    if debug:
        monkeypatch.setenv("TELEMETRY_DEBUG", "1")
    client = chroma_client(**settings)
    assert client.enabled
    client.capture("collection_add", add_amount=3)
    client.capture("collection_query", n_results=10)
    assert client.flush(5)
    stats = client.shutdown()
    assert (stats.captured, stats.sent) == (2, 2)
    if debug:
        printed = capfd.readouterr().err
        assert printed.count("[telemetry debug] would send:") == 2, printed
    else:
        assert [e["event"] for e in client.delivered()] == ["collection_add", "collection_query"]
    # Not ~/.cache/chroma/telemetry_user_id, nor its secret, nor anything else.
    assert sorted(home.rglob("*")) == []


def test_memory_sink_reuses_a_stored_identity_and_adds_nothing(home: Path, tmp_path: Path) -> None:
    # A delivering sink stores the identity, as a real install would.
    events = tmp_path / "events.jsonl"
    stored = chroma_client(sink="file", file_path=events)
    stored.capture("opened", collection="my_collection")
    stored.shutdown()
    sent = json.loads(events.read_text())
    cache = home / ".cache" / "chroma"
    assert sent["distinct_id"] == (cache / "telemetry_user_id").read_text().strip()
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert cache / "telemetry_user_id" in before

    memory = chroma_client(sink="memory")
    memory.capture("opened", collection="my_collection")
    memory.shutdown()
    (event,) = memory.delivered()
    # The same id and the same secret (the same keyed hash), and not a byte written.
    assert event["distinct_id"] == sent["distinct_id"]
    assert props(event)["collection"] == sent["properties"]["collection"] != "my_collection"
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == before


def test_memory_sink_leaves_a_chroma_only_id_file_alone(home: Path) -> None:
    # Chroma's own client wrote the id and no secret; a memory sink adds none beside it.
    cache = home / ".cache" / "chroma"
    cache.mkdir(parents=True)
    (cache / "telemetry_user_id").write_text("0c3f7a52-6f0e-4a39-9f6e-2f1b3d4c5e6f")
    client = chroma_client(sink="memory")
    client.capture("collection_add", add_amount=3)
    assert client.shutdown().sent == 1
    assert sorted(home.rglob("*")) == [home / ".cache", cache, cache / "telemetry_user_id"]
    assert (cache / "telemetry_user_id").read_text() == "0c3f7a52-6f0e-4a39-9f6e-2f1b3d4c5e6f"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.capture(42), TypeError, "TelemetryEvent or an event name"),
        (lambda c: c.capture("e", when=object()), TypeError, 'property "when" has type object'),
        (lambda c: c.capture("e", d={1: "x"}), TypeError, "keys must be str"),
        (lambda c: c.capture(TelemetryEvent("e"), x=1), TypeError, "not both"),
        (lambda c: c.capture(""), InvalidEventError, "event name is empty"),
        (lambda c: c.capture(TelemetryEvent("e", kinds={"x": "secret"})), InvalidEventError,
         "unknown property kind"),
        (lambda c: c.flush("soon"), TypeError, "number of seconds"),
    ],
)  # fmt: skip
def test_programming_errors_raise_clear_exceptions(
    call: object, error: type[Exception], message: str
) -> None:
    client = memory_client()
    with pytest.raises(error, match=message):
        call(client)  # type: ignore[operator]
    assert client.stats.captured == 0


def test_one_exception_root() -> None:
    assert issubclass(ConfigurationError, TelemetryError)
    assert issubclass(InvalidEventError, TelemetryError)
    with pytest.raises(TelemetryError, match="needs an endpoint"):
        Client(Settings(product="acme"))
    with pytest.raises(ConfigurationError, match="plain HTTP to a non-loopback host"):
        Client(Settings(product="acme", endpoint="http://example.com", api_key="k"))
    with pytest.raises(ConfigurationError, match="unknown sink"):
        Settings(sink="carrier-pigeon")
    with pytest.raises(ConfigurationError, match="unrecognized boolean"):
        Settings(anonymized_telemetry="maybe")
    with pytest.raises(TypeError, match=r"Settings\.queue_capacity must be an int"):
        Settings(queue_capacity="10")  # type: ignore[arg-type]


def test_settings_follow_chroma_semantics() -> None:
    assert Settings().anonymized_telemetry is True
    assert Settings().explicit is None
    assert Settings(anonymized_telemetry=False).explicit is False
    assert Settings(anonymized_telemetry="False").explicit is False  # as pydantic reads it
    assert "explicit" not in Settings().to_config()
    assert Settings(anonymized_telemetry=True).to_config()["explicit"] is True
    assert "phc_secret" not in repr(Settings(api_key="phc_secret"))
    s = Settings(product="acme", shutdown_timeout=0.25).replace(mode="cli")
    assert (s.mode, s.product, s.to_config()["shutdown_timeout_ms"]) == ("cli", "acme", 250)


@pytest.fixture
def unwarned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as if no client without a product had been built yet."""
    monkeypatch.setattr(client_module, "_NO_PRODUCT_WARNING", [True])
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # so "once" is ours, not the warnings registry's
        yield


def product_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, MissingProductWarning)]


def test_settings_without_a_product_warn_once_saying_what_and_how(unwarned: None) -> None:
    with pytest.warns(MissingProductWarning) as caught:
        client = Client(Settings(sink="memory", environment={}))
    (warning,) = product_warnings(caught.list)
    message = str(warning.message)
    assert "names no product" in message
    assert "'chromadb' with an empty version" in message  # what it defaults to
    assert "ANONYMIZED_TELEMETRY" in message  # whose switches then apply
    assert 'Settings(product="my-tool", version="1.2.0")' in message  # how to name one
    assert 'product="chromadb"' in message  # how to keep Chroma's defaults, silently
    assert warning.filename == __file__  # blames the caller's line, not the package
    assert issubclass(MissingProductWarning, UserWarning)  # shown by default filters
    assert client.settings.product == "chromadb"
    assert client.enabled  # a warning, never a change of behaviour

    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        Client(Settings(sink="memory", environment={}))
        Client(Settings(sink="memory", environment={}).replace(mode="cli"))
        threads = [
            threading.Thread(target=Client, args=(Settings(sink="memory", environment={}),))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert product_warnings(later) == []


def test_a_named_product_never_warns(unwarned: None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Client(Settings(product="chromadb", sink="memory", environment={}))
        Client(Settings(product="acme", profile="qdrant", sink="memory", environment={}))
        Client(Settings(sink="memory").replace(product="acme", environment={}))
    assert product_warnings(caught) == []
    # Nothing used up the one warning: an unnamed product still gets it.
    with pytest.warns(MissingProductWarning, match="the qdrant profile you chose"):
        Client(Settings(profile="qdrant", version="2.0", sink="memory", environment={}))


def test_without_a_product_even_client_with_no_settings_warns_before_failing(
    unwarned: None,
) -> None:
    # The posthog sink without an endpoint cannot be built; the warning comes first.
    with pytest.warns(MissingProductWarning), pytest.raises(ConfigurationError, match="endpoint"):
        Client()


def test_the_warning_blames_the_line_that_uses_an_integration(unwarned: None) -> None:
    telemetry = CliTelemetry(Settings(sink="memory", environment={}), cli=True)
    # The client is built inside the package, when the command starts.
    with pytest.warns(MissingProductWarning) as caught, telemetry.usage("report"):
        pass
    (warning,) = product_warnings(caught.list)
    assert warning.filename == __file__


def test_product_named_survives_copies_and_assignment() -> None:
    assert not Settings().product_named
    assert not Settings().replace(mode="cli").product_named
    assert Settings(product="acme").replace(mode="cli").product_named
    s = Settings()
    s.product = "acme"
    assert (s.product, s.product_named, s.to_config()["product"]) == ("acme", True, "acme")
    with pytest.raises(TypeError, match=r"Settings\.product must be a str"):
        Settings(product=3)  # type: ignore[arg-type]


def test_the_warning_goes_to_stderr_once_per_process_never_stdout(home: Path) -> None:
    code = (
        "from telemetry_core import Client, Settings\n"
        "for _ in range(3):\n"
        "    Client(Settings(sink='memory')).capture('x')\n"
        "Client(Settings(sink='memory', anonymized_telemetry=False))\n"
    )
    result = run_python(code, clean_env(home), home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("MissingProductWarning") == 1, result.stderr
    assert "<string>:3: MissingProductWarning: Settings names no product" in result.stderr


def test_explicit_off_and_environment_off_beat_on(home: Path) -> None:
    off = memory_client(anonymized_telemetry=False)
    assert not off.enabled
    assert off.decision.decided_by == {"kind": "code", "name": "explicit setting", "value": "false"}
    env_off = memory_client(
        profile="chroma", anonymized_telemetry=True, environment={"ANONYMIZED_TELEMETRY": "False"}
    )
    assert not env_off.enabled
    assert env_off.decision.decided_by["kind"] == "env"  # type: ignore[index]
    (home / ".env").write_text("ANONYMIZED_TELEMETRY=False\n")
    dotenv_off = memory_client(profile="chroma", environment={}, working_dir=home)
    assert not dotenv_off.enabled
    assert dotenv_off.decision.decided_by["kind"] == "dotenv"  # type: ignore[index]


# What Settings.anonymized_telemetry's docstring and python/README.md promise, per profile.
OWN_SWITCHES = [
    ("chromadb", "ANONYMIZED_TELEMETRY", "False"),
    ("qdrant", "QDRANT__TELEMETRY_DISABLED", "true"),
    ("evidently", "EVIDENTLY_DISABLE_TELEMETRY", "1"),
    ("my-tool", "MY_TOOL_TELEMETRY_DISABLED", "1"),
    ("my-tool", "MY_TOOL_TELEMETRY", "0"),
]


@pytest.mark.parametrize(("product", "switch", "off"), OWN_SWITCHES)
def test_each_product_reads_its_own_switches_and_no_other(
    product: str, switch: str, off: str, home: Path
) -> None:
    def client(environment: dict[str, str]) -> Client:
        # mode="cli": Evidently allows telemetry only there.
        return memory_client(product=product, environment=environment, working_dir=home, mode="cli")

    own = client({switch: off})
    assert not own.enabled
    assert own.decision.decided_by == {"kind": "env", "name": switch, "value": off}
    others = {s: v for p, s, v in OWN_SWITCHES if p != product}
    other = client(others)
    assert other.enabled, str(other.decision)
    read = {source["name"] for source in other.decision.sources}
    assert switch in read
    assert not read & set(others), "the decision lists the switches it read"
    assert not client({"DO_NOT_TRACK": "1"}).enabled  # every profile honours it


def test_decision_explains_for_people_and_programs() -> None:
    c = memory_client(environment={"DO_NOT_TRACK": "1"})
    d = c.decision
    assert not d.enabled
    assert str(d).startswith('telemetry is off: decided by do_not_track DO_NOT_TRACK = "1"')
    data = json.loads(d.to_json())
    assert data == d.to_dict()
    assert set(data) == {"enabled", "decided_by", "sources", "warnings"}
    assert any(s["name"] == "DO_NOT_TRACK" and s["says"] == "off" for s in data["sources"])
    typo = memory_client(environment={"ACME_TELEMETRY_DISABLED": "nope"})
    assert not typo.enabled
    assert any("nope" in w for w in typo.decision.warnings)


def test_opted_out_capture_does_nothing_not_even_counting() -> None:
    client = memory_client(anonymized_telemetry=False)
    for _ in range(100):
        client.capture("x", a=1)
        client.capture(TelemetryEvent("y"))
    assert client.flush(1)
    assert client.shutdown().captured == 0
    assert client.delivered() == []


def test_shutdown_is_idempotent_and_later_captures_are_counted_as_dropped() -> None:
    client = memory_client()
    client.capture("a")
    first = client.shutdown()
    client.capture("b")
    second = client.shutdown()
    assert first.sent == 1
    assert (second.captured, second.sent, second.dropped_shutdown) == (2, 1, 1)
    assert second.to_dict()["dropped_shutdown"] == 1


def test_queue_full_drops_and_counts_instead_of_blocking() -> None:
    client = memory_client(queue_capacity=1, flush_interval=3600)
    for _ in range(1000):
        client.capture("x")
    stats = client.shutdown(5)
    assert stats.dropped_queue_full > 0
    assert stats.captured == stats.sent + stats.dropped_queue_full


def test_preview_shows_the_anonymized_payload_and_sends_nothing() -> None:
    client = memory_client(anonymized_telemetry=False)
    item = client.preview("opened", path="/home/alice/db.sqlite", n=98765)
    assert item["event"] == "opened"
    assert item["properties"]["n"] == 98700
    assert "/home/alice" not in json.dumps(item)
    assert client.delivered() == []


def test_delivered_needs_the_memory_sink(tmp_path: Path) -> None:
    client = Client(
        Settings(product="acme", sink="file", file_path=tmp_path / "e.jsonl", environment={})
    )
    client.capture("to-file", k=1)
    client.shutdown()
    assert json.loads((tmp_path / "e.jsonl").read_text())["event"] == "to-file"
    with pytest.raises(ConfigurationError, match="memory"):
        client.delivered()


def test_decision_warnings_reach_the_telemetry_core_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="telemetry_core"):
        memory_client(environment={"ACME_TELEMETRY_DISABLED": "perhaps"})
    assert any(
        r.name.startswith("telemetry_core") and "perhaps" in r.getMessage() for r in caplog.records
    )


def test_public_names() -> None:
    assert set(telemetry_core.__all__) == {
        "CORE_VERSION",
        "KINDS",
        "Client",
        "ConfigurationError",
        "Decision",
        "InvalidEventError",
        "MissingProductWarning",
        "NATIVE_IMPORT_ERROR",
        "Settings",
        "Stats",
        "TelemetryError",
        "TelemetryEvent",
        "Usage",
        "UsageError",
    }
    assert "chromadb" not in sys.modules or "telemetry_core.integrations.chroma" in sys.modules
    assert telemetry_core.NATIVE_IMPORT_ERROR is None  # the native module loaded here
