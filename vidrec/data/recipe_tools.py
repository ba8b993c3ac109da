"""Helpers shared by the recipes in datasets/.

Each recipe turns one dataset's official files into canonical manifests; what they
have in common is how they finish: one ``<split>.jsonl`` and one summary line per
split, a ``missing.txt`` listing the videos that were not found, and turning a
``ManifestError`` into a one-line ``error: ...`` exit.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from vidrec.data.manifest import ClipRecord, ManifestError, write_manifest

__all__ = ["first_few", "report_split", "write_splits", "write_missing", "write_missing_lines", "run_main"]

SHOW_MISSING = 5  # missing videos named in a summary line; missing.txt lists them all


def first_few(names: Sequence[str]) -> str:
    """``"a, b, c, d, e, ..."``: the first few names, and ``...`` when there are more."""
    return ", ".join(names[:SHOW_MISSING]) + (", ..." if len(names) > SHOW_MISSING else "")


def report_split(split: str, records: Sequence[ClipRecord], missing: Sequence[str], *, captions: bool = False) -> None:
    """One summary line per split; with ``captions``, counts them too; names the first
    few missing videos."""
    line = f"{split}: {len(records)} clips"
    if captions:
        line += f", {sum(len(r.captions) for r in records)} captions"
    if missing:
        line += f", {len(missing)} missing videos dropped ({first_few(missing)})"
    print(line)


def write_splits(
    out: Path,
    records: Mapping[str, list[ClipRecord]],
    missing: Mapping[str, Sequence[str]],
    *,
    order: Iterable[str] | None = None,
    captions: bool = False,
) -> None:
    """``out/<split>.jsonl`` and its summary line for each split in ``records``: in
    ``order`` (skipping the splits ``records`` lacks) when given, else in ``records``'
    own order. ``missing`` may leave out splits with nothing missing.

    ``order`` also names every split the recipe can write: a ``<split>.jsonl`` of those that
    this run did not write is named in a warning and left in place. It may be an earlier run's
    ``test.jsonl`` that does not belong with this run's train and val, or the train and val of
    a run over the other annotation file (MSR-VTT's train/val and test files converted one at
    a time): only the user knows, and deleting it would lose the second case."""
    order = None if order is None else list(order)
    for split in records if order is None else [s for s in order if s in records]:
        write_manifest(out / f"{split}.jsonl", records[split])
        report_split(split, records[split], missing.get(split, ()), captions=captions)
    for split in [s for s in order or () if s not in records]:
        stale = out / f"{split}.jsonl"
        if stale.is_file():
            print(f"warning: {stale} was not written by this run (it has no {split} split) and is left "
                  "as it was: delete it if it does not belong with these splits")


def write_missing(out: Path, missing: Mapping[str, Sequence[str]]) -> None:
    """``missing.txt``: '<split>\\t<path>' per missing video (see ``write_missing_lines``)."""
    write_missing_lines(out, [f"{split}\t{rel}" for split, rels in missing.items() for rel in rels])


def write_missing_lines(out: Path, lines: Sequence[str]) -> None:
    """``missing.txt``: one line each; removed when there are none, so a stale list from
    an earlier run cannot mislead."""
    path = out / "missing.txt"
    if lines:
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    elif path.exists():
        path.unlink()


def run_main(main: Callable[[], object]) -> None:
    """Run a recipe's ``main()``; a ``ManifestError`` (a malformed official file) exits
    with status 1 and ``error: <message>`` instead of a traceback."""
    try:
        main()
    except ManifestError as e:
        sys.exit(f"error: {e}")
