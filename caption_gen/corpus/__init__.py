"""The Parquet corpus store (DESIGN.md §2): schema, row helpers, shard writer, reader, manifest,
dataset card, validation and info. Import submodules explicitly (``from caption_gen.corpus.writer
import CorpusWriter``); this package itself imports nothing heavy.
"""
