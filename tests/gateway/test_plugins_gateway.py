"""A gateway configured with the example plugins: a rule on a plugin signal, a plugin guard."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def test_plugin_signal_drives_a_rule_and_plugin_guard_blocks(gateway_factory, standins,
                                                             monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    gw = gateway_factory({
        "signals": {"plugins": [{"use": "my_plugins:TicketPriority"}]},
        "rules": [{"name": "urgent-to-gamma",
                   "when": {"signal": "ticket.priority", "op": "le", "value": 1},
                   "then": {"pin": "gamma"}}],
        "guards": {"plugins": [{"use": "my_plugins:NoInternalHosts"}]},
    })
    r = gw.chat("P1: the poem generator is down, write a short poem about the sea")
    assert r.status_code == 200 and r.headers["x-polyroute-model"] == "gamma"
    assert r.headers["x-polyroute-rule"] == "urgent-to-gamma"
    blocked = gw.chat("Why is db1.corp.internal slow?")
    assert blocked.status_code == 403
    assert blocked.headers["x-polyroute-ended-by"] == "guard: names an internal host"
    assert standins["alpha"].calls + standins["beta"].calls == 0
