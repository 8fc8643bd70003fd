"""Image discovery (directory / list file / glob, local or fsspec) and decoding to RGB with rejects."""

from caption_gen.images.decode import (
    DecodedImage,
    ImageRejected,
    decode_image,
    find_duplicates,
    hash_file,
    iter_images,
    to_rgb,
)
from caption_gen.images.discovery import DEFAULT_EXTENSIONS, ImageRef, discover_images

__all__ = [
    "DEFAULT_EXTENSIONS",
    "DecodedImage",
    "ImageRef",
    "ImageRejected",
    "decode_image",
    "discover_images",
    "find_duplicates",
    "hash_file",
    "iter_images",
    "to_rgb",
]
