"""The captioner's tokenizer: a byte-level BPE trained in-process with ``tokenizers`` (nothing downloaded).

Trained on the instruction texts of every kind (each TDE template inserted), and on targets written
for randomly drawn attribute combinations, with a vocabulary large enough that every instruction and
attribute word is one token (short sequences keep CPU training cheap). Byte-level, so any text
(a mined template, a style prompt) still tokenizes.

*Instruction phrases*: every fixed sentence of the instruction bank (the kinds' texts around the TDE
template, :func:`instruction_phrases`) is also one added token, so the ~100-token instruction the
captioner reads before every answer costs a handful of positions (the TDE template itself stays in
word tokens: the model has to read its structure). A joint training step is dominated by the
sequence length — 64 image tokens, the instruction, a ~23-token answer — so this makes it ~1.5×
cheaper; the engine tokenizes the same text with the same tokenizer, so training and serving agree.
A changed instruction text simply falls back to word tokens. The chat templates render
``USER: <image>\\n{instruction}\\nASSISTANT:`` (the image in the architecture's placeholder); an answer
ends with ``</s>``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: LLaVA's specials and chat template (:mod:`caption_gen.captioner.arch_llava`; Qwen2-VL's are in
#: :mod:`caption_gen.captioner.arch_qwen2vl`).
SPECIALS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<image>", "<pad>")

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].upper() }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] in ['image', 'image_pil', 'image_url'] %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


#: a phrase token needs at least this many words (shorter fixed pieces stay word tokens).
PHRASE_MIN_WORDS = 3


def instruction_phrases(instructions: Any) -> list[str]:
    """The fixed sentences of every kind's instruction text (``{max_words}`` filled, split at the TDE
    ``{template}`` slot and after each sentence's final period), each with its leading space, as it
    occurs in a rendered instruction; pieces under :data:`PHRASE_MIN_WORDS` words are left out."""
    from caption_gen.instructions.bank import KINDS

    phrases: list[str] = []
    for kind in KINDS:
        spec = instructions.spec(kind)
        text = spec.text.replace("{max_words}", str(spec.max_words)) if spec.max_words is not None else spec.text
        for piece in text.split("{template}"):
            for sentence in re.split(r"(?<=\.)(?=\s)", piece):
                if len(sentence.split()) >= PHRASE_MIN_WORDS and sentence not in phrases:
                    phrases.append(sentence)
    return phrases


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


def train_tokenizer(corpus: list[str], vocab_size: int, phrases: list[str] | tuple[str, ...] = (), *,
                    specials: tuple[str, ...] = SPECIALS, chat_template: str = CHAT_TEMPLATE):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE of ``vocab_size`` trained on ``corpus``) with an
    architecture's ``specials`` and ``chat_template`` (default: LLaVA's; each must hold ``<unk>``, ``<s>``,
    ``</s>``, ``<pad>``) and each of ``phrases`` as one added (non-special) token."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in phrases])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", chat_template=chat_template)
