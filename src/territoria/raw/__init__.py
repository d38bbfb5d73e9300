"""Raw layer: the immutable records of each load, with their lineage (load, source, hash)."""

from territoria.raw.summary import SourceSummary, source_summaries

__all__ = ["SourceSummary", "source_summaries"]
