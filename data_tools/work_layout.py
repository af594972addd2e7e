"""The layout of a prepared-data directory: the outputs at its top, each corpus's intermediate
files under work/<corpus key>-<tasks>/ (a changed source, setting or task count gets a new
directory, so old and new work never mix)."""

from __future__ import annotations

from pathlib import Path

from data_tools.dedup import NearDedupFiles

REPORT_FILE = "prepare_report.json"  # this run's timings and executor; the manifest has neither


def listing_path(out_dir: Path) -> Path:
    """Where each prepare lists the local trees afresh (the listing's digest keys the corpus)."""
    return Path(out_dir) / "work" / "listing.jsonl"


class WorkLayout:
    """Paths of one corpus's stages under `out_dir`."""

    def __init__(self, out_dir: Path, corpus_key: str, tasks: int) -> None:
        self.out_dir = Path(out_dir)
        self.work = self.out_dir / "work"
        self.root = self.work / f"{corpus_key}-{tasks}"
        self.listing = self.root / "listing"  # one file per task
        self.exact_signatures = self.root / "exact" / "signatures"
        self.exact_duplicates = self.root / "exact" / "duplicates"
        self.near = NearDedupFiles(self.root / "near")
        self.logs = self.root / "logs"
        self.report = self.out_dir / REPORT_FILE

    def stale(self) -> list[Path]:
        """Other corpora's work directories and listings: a changed run never reads them."""
        if not self.work.is_dir():
            return []
        listing = listing_path(self.out_dir)
        keep = {self.root, listing, listing.with_suffix(".partial")}
        return [path for path in self.work.iterdir() if path not in keep]
