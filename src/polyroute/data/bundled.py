"""The dataset shipped inside the package, so that the main job runs with no other files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from polyroute.data.loaders import load_models, load_outcomes
from polyroute.data.outcomes import DEFAULT_OUTPUT_TOKENS, Outcomes

BUNDLED_NAME = "llmrouter-bench"


def bundled_paths() -> tuple[Path, Path]:
    """Paths of the bundled outcomes file and its models file."""
    root = Path(str(resources.files("polyroute.data") / "_bundled"))
    return root / "llmrouter-bench.jsonl.gz", root / "models.json"


def load_bundled(output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> Outcomes:
    """llmrouter-bench: 5,489 prompts × 9 open models, MIT licence (see ``_bundled/NOTICE.md``)."""
    data, models = bundled_paths()
    return load_outcomes(data, load_models(models), output_tokens=output_tokens)
