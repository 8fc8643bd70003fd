"""Corpora in the file formats the field's trainers read, both ways (docs/formats.md).

* :mod:`~caption_gen.corpus.formats.luperson_mllm`: the released LUPerson-MLLM captions (seed 002 §3.1):
  one JSON dict ``{image path: caption}`` per instruction × MLLM, named ``Ts-<model>.json`` (static
  instruction) and ``Td-<model>.json`` (dynamic instruction), as the MLLM4Text-ReID trainer reads them;
  import into a corpus and export from one.
* :mod:`~caption_gen.corpus.formats.cuhk_pedes`: export a corpus as a CUHK-PEDES ``reid_raw.json`` (a list
  of ``{split, captions, file_path, id}``), what IRRA-style trainers read. The import direction is
  ``pedes corpus import --format cuhk-pedes`` (:mod:`training.data.import_corpus`).
"""

from caption_gen.corpus.formats.cuhk_pedes import ReidRawExport, export_reid_raw
from caption_gen.corpus.formats.luperson_mllm import (
    LUPERSON_FORMAT,
    LupersonExport,
    LupersonImport,
    caption_file_name,
    export_luperson_mllm,
    import_luperson_mllm,
    parse_caption_file_name,
)

#: ``pedes corpus export --format`` names.
EXPORT_FORMATS: tuple[str, ...] = (LUPERSON_FORMAT, "cuhk-pedes")

__all__ = [
    "EXPORT_FORMATS",
    "LUPERSON_FORMAT",
    "LupersonExport",
    "LupersonImport",
    "ReidRawExport",
    "caption_file_name",
    "export_luperson_mllm",
    "export_reid_raw",
    "import_luperson_mllm",
    "parse_caption_file_name",
]
