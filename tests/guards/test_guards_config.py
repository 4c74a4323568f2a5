"""``guards:`` config: read from a gateway YAML or a guards-only file, validated with messages
that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyroute.errors import ConfigError
from polyroute.guards import GuardsConfig, build_guards, load_guards_config
from polyroute.guards.jailbreak import JailbreakGuard
from polyroute.guards.pii import PiiGuard


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_absent_sections_are_off_present_ones_on(tmp_path: Path) -> None:
    assert GuardsConfig().pii.enabled is False and GuardsConfig().jailbreak.enabled is False
    config = load_guards_config(write(tmp_path, "guards:\n  pii: {}\n"))
    assert config.pii.enabled and config.pii.action == "redact" and config.pii.types is None
    assert not config.jailbreak.enabled
    assert [type(g) for g in build_guards(config)] == [PiiGuard]
    jb = load_guards_config(write(tmp_path, "guards:\n  jailbreak: {}\n")).jailbreak
    assert jb.enabled and jb.action == "flag" and jb.threshold is None and jb.heuristics


def test_full_gateway_yaml_reads_only_guards(tmp_path: Path) -> None:
    path = write(tmp_path, "backends:\n  - {name: a, url: 'http://127.0.0.1:1'}\n"
                           "router: {whatever: 1}\n"
                           "guards:\n  jailbreak: {action: flag, threshold: 0.4}\n")
    config = load_guards_config(path)
    assert config.jailbreak.enabled and config.jailbreak.threshold == 0.4
    (guard,) = build_guards(config)
    assert isinstance(guard, JailbreakGuard) and guard.threshold == 0.4


def test_guards_only_file_without_wrapper(tmp_path: Path) -> None:
    config = load_guards_config(write(tmp_path, "pii:\n  types: [EMAIL, IBAN]\n  action: block\n"))
    assert config.pii.types == ("EMAIL", "IBAN") and config.pii.action == "block"


@pytest.mark.parametrize(("yaml_text", "fragments"), [
    ("guards:\n  pii: {types: [EMAIL, SHOE]}\n", ["guards.pii.types", "SHOE"]),
    ("guards:\n  pii: {action: restrict}\n", ["guards.pii.action"]),
    ("guards:\n  jailbreak: {action: restrict}\n", ["guards.jailbreak", "safe_models"]),
    ("guards:\n  jailbreak: {threshold: 1.5}\n", ["guards.jailbreak.threshold"]),
    ("guards:\n  pii: {enabeld: true}\n", ["guards.pii.enabeld", "unknown key"]),
    ("backends: []\n", ["no guards: section"]),
    ("guards: [1, 2]\n", ["must be a mapping"]),
])
def test_errors_name_the_key(tmp_path: Path, yaml_text: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_guards_config(write(tmp_path, yaml_text))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_relative_model_path_is_relative_to_file(tmp_path: Path) -> None:
    config = load_guards_config(write(tmp_path, "guards:\n  jailbreak: {model: m}\n"))
    assert config.jailbreak.model == tmp_path / "m"
    with pytest.raises(ConfigError, match="cannot load the jailbreak model"):
        build_guards(config)
