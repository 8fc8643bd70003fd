"""The tiny trained captioner shared by the test suite (its config; the model is cached by a hash of it).

Tests that train it in-process (``tests/caption_gen/captioner``) and tests that run ``pedes demo`` /
``pedes repro`` in a subprocess use the same settings, so the captioner is trained once per machine (in
``$PEDES_CACHE`` or ``~/.cache/pedes-forge``) and reused by every later test and run."""

#: enough steps to write valid sentences of every kind (attribute accuracy is the benchmark's business)
#: (sizes pinned here, so a change of the captioner's defaults does not change what the suite trains)
#: the default architecture (Qwen2-VL) at 128 × 64 pixels (8 × 4 patches, 8 image tokens)
TEST_CAPTIONER = dict(arch="qwen2vl", steps=240, batch_size=12, synth_identities=80, synth_images_per_identity=4,
                      image_pixels=9000, patch_size=16, vision_hidden=128, text_hidden=128, text_layers=2,
                      vision_layers=2, lr=3e-3, warmup_steps=30, log_every=40, vision_steps=0, freeze_vision=False,
                      examples_per_image=1, length_groups=1)

#: the same with the LLaVA architecture (96² squashed, 36 image tokens): the real engine serves both
TEST_CAPTIONER_LLAVA = {**{k: v for k, v in TEST_CAPTIONER.items() if k != "image_pixels"}, "arch": "llava",
                        "image_size": 96}

#: a captioner that trains in seconds (tests of the training loop and wiring, not of caption quality)
MICRO_CAPTIONER = dict(arch="llava", steps=3, batch_size=2, synth_identities=4, synth_images_per_identity=1, image_size=32,
                       patch_size=16, vision_hidden=32, vision_layers=1, text_hidden=64, text_layers=1, vocab_size=300,
                       warmup_steps=1, log_every=1, threads=1, vision_steps=0, freeze_vision=False,
                       examples_per_image=2, length_groups=1)

#: the same size with the Qwen2-VL architecture (64 × 32 pixels: 4 × 2 patches, 2 image tokens)
MICRO_CAPTIONER_QWEN = {**{k: v for k, v in MICRO_CAPTIONER.items() if k != "image_size"}, "arch": "qwen2vl",
                        "image_pixels": 64 * 32 + 100}
