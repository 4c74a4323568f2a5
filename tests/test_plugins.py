"""Plugins: a user's own signal and guard, named by import path or by entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyroute.errors import ConfigError
from polyroute.guards.config import GuardsConfig
from polyroute.guards.stage import RequestGuards
from polyroute.plugins import GUARDS_GROUP, SIGNALS_GROUP, PluginSpec, resolve
from polyroute.signals.base import SignalInputs
from polyroute.signals.config import SignalsConfig
from polyroute.signals.registry import SignalSet, catalog

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "plugins"


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_a_signal_plugin_by_import_path_joins_the_catalog_and_computes(on_path):
    config = SignalsConfig(plugins=[{"use": "my_plugins:TicketPriority"}])
    assert catalog(config)["ticket.priority"] == ("number", "request")
    signal = SignalSet(config)["ticket.priority"]
    assert signal.compute(SignalInputs(body={}, text="outage, P1 please")) == 1.0
    assert signal.compute(SignalInputs(body={}, text="no tag")) is None


def test_a_guard_plugin_with_options_takes_part_in_every_request(on_path):
    guards = RequestGuards(GuardsConfig(plugins=[{"use": "my_plugins:NoInternalHosts",
                                                  "options": {"domain": "acme.lan"}}]))
    blocked = guards.check_request(["see db1.acme.lan"], "see db1.acme.lan", None)
    assert blocked.action == "block" and blocked.verdict.spans[0].type == "INTERNAL_HOST"
    assert guards.check_request(["hello"], "hello", None).action == "allow"


def test_entry_points_name_plugins_too(tmp_path, monkeypatch, on_path):
    dist = tmp_path / "acme_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{GUARDS_GROUP}]\nno-internal-hosts = my_plugins:NoInternalHosts\n"
        f"[{SIGNALS_GROUP}]\nticket-priority = my_plugins:TicketPriority\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve("no-internal-hosts", GUARDS_GROUP).__name__ == "NoInternalHosts"
    assert resolve("ticket-priority", SIGNALS_GROUP).name == "ticket.priority"


@pytest.mark.parametrize(("use", "message"), [
    ("nowhere_module:Thing", "cannot import it"),
    ("json:dumps", "names a function, not a class"),
    ("not-installed-anywhere", "no entry point of that name"),
])
def test_a_plugin_that_resolves_to_nothing_is_a_one_line_config_error(use, message):
    with pytest.raises(ConfigError, match=message):
        resolve(use, GUARDS_GROUP)


def test_a_plugin_missing_its_interface_or_given_bad_options_says_so(on_path):
    with pytest.raises(ConfigError, match="lacks check"):
        RequestGuards(GuardsConfig(plugins=[{"use": "my_plugins:TicketPriority"}]))
    with pytest.raises(ConfigError, match="bad options"):
        RequestGuards(GuardsConfig(plugins=[PluginSpec(use="my_plugins:NoInternalHosts",
                                                       options={"colour": "red"})]))


def test_a_cache_index_backend_plugin_serves_the_semantic_lookups(on_path):
    import numpy as np

    from polyroute.cache import SemanticCache, cache_key
    from polyroute.config import CacheConfig

    config = CacheConfig(enabled=True, index={"use": "my_plugins:BruteForceIndex"})
    cache = SemanticCache(config)

    def key(text):
        return cache_key(scope="k", profile="auto", category="default",
                         body={"model": "auto", "messages": [{"role": "user", "content": text}]})

    vec = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    cache.put(key("a"), "tell me a joke", vec, b"joke", model="m", cost=0.01)
    part = next(iter(cache._partitions.values()))
    assert type(part.index).__name__ == "BruteForceIndex"  # the plugin holds the vectors
    near = cache.nearest(key("b"), "tell me a joke please", np.array([0.99, 0.14, 0.0]))
    assert near is not None and near.answer == b"joke"
    with pytest.raises(ConfigError, match="lacks"):
        SemanticCache(CacheConfig(enabled=True, index={"use": "my_plugins:TicketPriority"}))
