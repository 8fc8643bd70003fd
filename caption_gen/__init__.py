"""MLLM captioning: images, instructions, backends, validation, styles, and the Parquet corpus store.

See DESIGN.md §2-§4. Submodules are imported explicitly (``from caption_gen.corpus import ...``);
importing this package is cheap and pulls in no heavy dependency.
"""

__version__ = "0.1.0"
