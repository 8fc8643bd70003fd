"""The corpus contract (DESIGN.md §2): explicit pyarrow schemas of caption rows and reject rows.

A corpus directory::

    corpus.json                     manifest (see caption_gen.corpus.manifest)
    README.md                       dataset card
    shards/captions-00000.parquet   one row per generated caption (long format)
    shards/_done/00000.json         per-shard stats, written last: its presence = shard complete
    rejects/rejects-00000.parquet   images/captions that failed, with reasons
    styles/                         style clustering outputs

Row key: ``(image_id, kind, model, template_id, style_id)`` is unique across the corpus.
Human captions imported from a benchmark use ``kind="human"`` and ``model="human:<k>"`` where
``k`` is the caption's index in its annotation entry (CUHK-PEDES has two captions per image, from
different annotators), so the key stays unique without an extra column.

Only types that pandas, pyarrow.dataset, DuckDB and HuggingFace ``datasets`` all read are used:
strings, ints, floats, bools, UTC timestamps, lists of strings and structs of those.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.0"

ROW_KEY: tuple[str, ...] = ("image_id", "kind", "model", "template_id", "style_id")

#: reject reasons that mean "never generated" (the backend failed; the text was never judged): a rerun
#: generates these jobs again (:mod:`caption_gen.captioning.plan`). Every other reject is final
#: (validation, decode, discovery, and ``flow:shard_failed``, which ``on_shard_failure: reject`` chose).
RETRYABLE_REASONS: frozenset[str] = frozenset({"generation:error"})

#: Caption kinds known to the store. ``human`` = imported ground truth.
KINDS: tuple[str, ...] = ("static", "dynamic", "identity", "clothing", "human")

SAMPLING_TYPE = pa.struct(
    [
        pa.field("temperature", pa.float32()),
        pa.field("top_p", pa.float32()),
        pa.field("max_tokens", pa.int32()),
        pa.field("seed", pa.int64()),
    ]
)

VALIDATION_TYPE = pa.struct(
    [
        pa.field("passed", pa.bool_(), nullable=False),
        pa.field("reasons", pa.list_(pa.string())),
        # attribute groups detected in the caption (clothing, shoes, hair, gender, belongings, ...)
        pa.field("covered", pa.list_(pa.string())),
        # share of the expected attribute groups that were covered, in [0, 1]; null when not applicable
        pa.field("coverage", pa.float32()),
    ]
)

CAPTION_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("image_path", pa.string(), nullable=False),
        pa.field("image_sha256", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("person_id", pa.int64()),
        pa.field("split", pa.string()),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("template_id", pa.string()),
        pa.field("style_id", pa.string()),
        pa.field("instruction_id", pa.string()),
        pa.field("instruction_sha256", pa.string()),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("num_tokens", pa.int32()),
        pa.field("finish_reason", pa.string()),
        pa.field("sampling", SAMPLING_TYPE),
        pa.field("validation", VALIDATION_TYPE, nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={b"pedes.schema_version": SCHEMA_VERSION.encode()},
)

#: Where in the pipeline a reject happened.
REJECT_STAGES: tuple[str, ...] = ("discovery", "decode", "generation", "validation", "import")

REJECT_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string()),
        pa.field("image_path", pa.string(), nullable=False),
        pa.field("image_sha256", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("model", pa.string()),
        pa.field("template_id", pa.string()),
        pa.field("style_id", pa.string()),
        # the first / main reason, for grouping ("decode:truncated", "validation:refusal", ...)
        pa.field("reason", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string())),
        # free text for a human: what exactly was wrong ("same content as a/b.jpg", "truncated at ...")
        pa.field("detail", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("attempt", pa.int32()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={b"pedes.schema_version": SCHEMA_VERSION.encode()},
)


def image_id_from_sha256(sha256_hex: str) -> str:
    """Stable image id derived from the content hash: the first 20 hex digits (80 bits)."""
    return sha256_hex[:20]
