"""The captioner's tokenizer: a byte-level BPE trained in-process with ``tokenizers`` (nothing downloaded).

Trained on the instruction texts of every kind (each TDE template inserted), and on targets written
for randomly drawn attribute combinations, with a vocabulary large enough that every instruction and
attribute word is one token (short sequences keep CPU training cheap). Byte-level, so any text
(a mined template, a style prompt) still tokenizes. The LLaVA chat template renders
``USER: <image>\\n{instruction}\\nASSISTANT:``; an answer ends with ``</s>``.
"""

from __future__ import annotations

import numpy as np

SPECIALS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<image>", "<pad>")

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] in ['image', 'image_pil', 'image_url'] %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def tokenizer_corpus(instruction_texts: list[str], seed: int, samples: int = 600) -> list[str]:
    """Texts the BPE is trained on: every instruction plus targets of ``samples`` random people."""
    from caption_gen.captioner.targets import target_text
    from caption_gen.instructions.bank import InstructionSet
    from caption_gen.synth.attributes import sample_identity, sample_outfit

    rng = np.random.default_rng(seed)
    templates = InstructionSet.load().templates
    out = list(instruction_texts) * 4
    for k in range(samples):
        ident = sample_identity(k, rng)
        outfit = sample_outfit(ident, 0, rng)
        for kind in ("static", "identity", "clothing"):
            out.append(" " + target_text(kind, ident, outfit, rng=rng))
        out.append(" " + target_text("dynamic", ident, outfit, rng=rng,
                                     template=templates[k % len(templates)]))
    return out


def train_tokenizer(corpus: list[str], vocab_size: int):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE) with the LLaVA specials and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", chat_template=CHAT_TEMPLATE)
