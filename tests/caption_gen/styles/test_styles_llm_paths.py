"""LLM neutralizer / style-prompt writer / template miner against a stub backend that implements the
captioning-backend interface (``generate(requests) -> results`` with ``text``, ``num_tokens``,
``finish_reason``, ``error``). Injected faults: an error result, a length-cut result, an invalid template."""

from __future__ import annotations

import re
from dataclasses import dataclass

from caption_gen.styles.llm import request_prompt
from caption_gen.styles.neutralize import LLMNeutralizer, RuleNeutralizer, content_survival
from caption_gen.styles.prompts import LLMStylePrompter, cluster_statistics
from caption_gen.templates_mining import mine_templates, rule_template


@dataclass
class _Result:
    text: str
    num_tokens: int
    finish_reason: str
    error: str | None = None


class StubBackend:
    """A deterministic 'LLM': answers each prompt kind with a function of the prompt text."""

    def __init__(self, fail_on: str | None = None, cut_on: str | None = None, bad_template_on: str | None = None):
        self.fail_on, self.cut_on, self.bad_template_on = fail_on, cut_on, bad_template_on
        self.requests = []

    def generate(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            assert getattr(r, "image", None) is None  # text-only path
            prompt = request_prompt(r)
            if self.fail_on and self.fail_on in prompt:
                out.append(_Result("", 0, "error", error="boom"))
            elif self.cut_on and self.cut_on in prompt:
                out.append(_Result("A [color]", 4, "length"))
            elif "Rewritten:" in prompt:
                desc = re.search(r"Description: (.*)\nRewritten:", prompt).group(1)
                out.append(_Result(RuleNeutralizer().neutralize_one(desc.replace("red", "red")), 20, "stop"))
            elif "Instruction:" in prompt:
                n = re.search(r"median (\d+) words", prompt).group(1)
                out.append(_Result(f"Use a style of about {n} words.", 9, "stop"))
            elif "Template:" in prompt:
                cap = prompt.rsplit("Description: ", 1)[1].split("\nTemplate:")[0]
                if self.bad_template_on and self.bad_template_on in cap:
                    out.append(_Result("A [person] in [shirt colour].", 8, "stop"))
                else:
                    out.append(_Result("Template: " + (rule_template(cap) or cap), 20, "stop"))
            else:  # pragma: no cover
                raise AssertionError(prompt)
        return out


def test_llm_neutralizer_uses_backend_and_falls_back_per_item():
    texts = ["A man in a red coat.", "FAILME a woman in blue jeans.", "CUTME green shirt, black shoes."]
    backend = StubBackend(fail_on="FAILME", cut_on="CUTME")
    neu = LLMNeutralizer(backend, batch_size=2)
    out = neu.neutralize(texts)
    assert len(backend.requests) == 3
    assert out[0] == "A [person] in a [color] [garment]."  # the subject noun is content too
    assert neu.fallbacks == {"error": 1, "length": 1}
    assert out[1] == RuleNeutralizer().neutralize_one(texts[1])
    assert content_survival(texts, out) == 0.0


def test_llm_style_prompter_and_fallback():
    groups = [(["[color] [garment], [color] [footwear]"] * 3, cluster_statistics(["red coat, black shoes"] * 3)),
              (["FAILME"], cluster_statistics(["You will see a man in a coat."]))]
    prompter = LLMStylePrompter(StubBackend(fail_on="FAILME"))
    res = prompter.write(groups)
    assert res[0] == ("Use a style of about 4 words.", "llm")
    assert res[1][1] == "statistics" and res[1][0].startswith("Use a")
    assert prompter.fallbacks == {"error": 1}


def test_llm_style_prompter_gets_the_contrast_and_rejects_near_copies():
    """The LLM writer sees what sets each cluster apart (values vs the corpus) and the pattern; an output
    near-identical to an earlier cluster's falls back to the deterministic contrast prompt."""
    import numpy as np

    from caption_gen.styles.embed import stylometric_features
    from caption_gen.styles.prompts import ClusterBrief, contrast_prompt, corpus_contrast, distinguishing

    texts = (["[color] [garment], [color] [footwear], [belongings]"] * 5 + ["Can you see the [person]? Wow, look!"] * 5
             + ["The [person] is wearing a [color] [garment]. He has [color] [footwear]."] * 10)
    labels = np.array([0] * 5 + [1] * 5 + [2] * 10)
    devs = corpus_contrast(stylometric_features(texts), labels)
    briefs = [ClusterBrief([texts[0]], cluster_statistics(texts[:5]), distinguishing(devs[0]), texts[0]),
              ClusterBrief([texts[5]], cluster_statistics(texts[5:]), distinguishing(devs[1]), texts[5])]
    backend = StubBackend()
    prompter = LLMStylePrompter(backend)
    res = prompter.write(briefs)
    first, second = (request_prompt(r) for r in backend.requests)
    assert "- questions (share of sentences): 50% in this style vs 12% in the corpus (higher" in second
    assert "- exclamations (share of sentences): 50% in this style vs 12% in the corpus (higher" in second
    assert "commas per word" in first and "Pattern (a typical description of this style): " + texts[0] in first
    # the stub answers "Use a style of about N words." for both: the second is a near copy of the first
    assert res[0][1] == "llm" and res[1][1] == "statistics"
    assert res[1][0] == contrast_prompt(briefs[1].contrast, briefs[1].pattern)
    assert prompter.fallbacks == {"near_duplicate": 1}


def test_llm_template_miner_validates_and_falls_back():
    caps = ["A woman in a red coat and black boots carries a backpack.",
            "BADONE a man in a blue shirt and grey shoes.",
            "The girl has long hair and wears a green dress."]
    res = mine_templates(caps, backend=StubBackend(bad_template_on="BADONE"))
    assert res.stats["rejected"] == 1 and res.stats["llm_fallbacks"] == 1
    assert res.rejects[0]["reason"].startswith("slots:") and "unknown slot [person]" in res.rejects[0]["reason"]
    assert {t.source for t in res.templates} == {"llm", "rules-fallback"}
    assert len(res.templates) == 3
