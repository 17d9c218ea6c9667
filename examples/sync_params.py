"""Rewrite each examples/*/params.yaml as the repository's params.yaml with its own source: section.

Run after changing params.yaml: `python examples/sync_params.py`. A test fails while they differ.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "# Generated from params.yaml with only the source section changed; tests check they stay in step.\n"
SOURCE_START = "# What export to ingest"
SOURCE_END = "\ngenerate:\n"


def source_block(text: str, start: str) -> str:
    """From ``start`` up to the generate: section: the source comment and section."""
    begin = text.index(start)
    return text[begin: text.index(SOURCE_END, begin) + 1]


def main() -> None:
    base = (HERE.parent / "params.yaml").read_text(encoding="utf-8")
    default_block = source_block(base, SOURCE_START)
    for path in sorted(HERE.glob("*/params.yaml")):
        text = path.read_text(encoding="utf-8")
        own = source_block(text, "# Source:")
        path.write_text(HEADER + base.replace(default_block, own), encoding="utf-8")
        print(f"updated {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
