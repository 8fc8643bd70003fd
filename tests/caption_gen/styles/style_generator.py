"""Planted-style caption generator for the style-clustering tests and benchmark (seed 000 §3.3: style
clusters should follow *how* a description is written, not what it describes).

Five clearly different writing styles; inside each style the attributes, the number of mentioned
items (so the length), the vocabulary (synonyms, openers, connectors) and partly the order vary, so a
clustering that keys on one sentence pattern over-splits a style and one that keys on content mixes
styles. Styles:

0. ``attribute_list`` — a terse comma-separated list of attribute phrases, no verbs;
1. ``narrative`` — several full present-tense sentences, head to toe, third person;
2. ``participial`` — one long sentence that opens with a participle ("Dressed in ...") and the
   clothing, the person mentioned late;
3. ``exclamatory`` — questions and exclamations addressed to the reader ("Can you spot ...?");
4. ``first_person_past`` — a witness report in the first person, past tense ("I saw a ...").

Pure standard library; deterministic for a seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable

COLORS = ["black", "white", "red", "blue", "green", "grey", "brown", "yellow", "pink", "purple", "navy", "beige",
          "dark", "light"]
TOPS = ["jacket", "t-shirt", "sweater", "coat", "hoodie", "blouse", "shirt", "vest", "cardigan", "tank top"]
BOTTOMS = ["jeans", "trousers", "shorts", "skirt", "pants", "leggings"]
SHOES = ["sneakers", "boots", "sandals", "shoes", "heels", "loafers"]
HAIR_LEN = ["long", "short", "shoulder-length", "curly", "straight", "wavy"]
HAIR_COLOR = ["black", "brown", "blonde", "grey", "red"]
BAGS = ["backpack", "handbag", "shoulder bag", "umbrella", "suitcase", "phone", "tote"]
ACCESSORIES = ["glasses", "a cap", "a scarf", "a watch", "a mask", "sunglasses", "a hat"]
PEOPLE = [("woman", "she", "her"), ("man", "he", "his"), ("girl", "she", "her"), ("boy", "he", "his"),
          ("lady", "she", "her"), ("guy", "he", "his"), ("person", "they", "their")]

STYLE_NAMES = ("attribute_list", "narrative", "participial", "exclamatory", "first_person_past")


def sample_attributes(rng: random.Random) -> dict:
    who, subj, pos = rng.choice(PEOPLE)
    return {
        "who": who, "subj": subj, "pos": pos,
        "hair": f"{rng.choice(HAIR_LEN)} {rng.choice(HAIR_COLOR)} hair",
        "top": f"{rng.choice(COLORS)} {rng.choice(TOPS)}",
        "bottom": f"{rng.choice(COLORS)} {rng.choice(BOTTOMS)}",
        "shoes": f"{rng.choice(COLORS)} {rng.choice(SHOES)}",
        "bag": rng.choice(BAGS) if rng.random() < 0.6 else None,
        "acc": rng.choice(ACCESSORIES) if rng.random() < 0.4 else None,
    }


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def attribute_list(a: dict, rng: random.Random) -> str:
    items = [a["hair"], a["top"], a["bottom"], a["shoes"]]
    if rng.random() < 0.5:
        items = items[:1] + rng.sample(items[1:], 3)
    if a["bag"]:
        items.append(a["bag"])
    if a["acc"]:
        items.append(a["acc"].removeprefix("a "))
    if rng.random() < 0.7:
        items.insert(0, rng.choice([a["who"], "female" if a["subj"] == "she" else "male", f"adult {a['who']}"]))
    if rng.random() < 0.3:
        items = items[: max(3, len(items) - rng.randint(1, 2))]
    sep = rng.choice([", ", ", ", "; "])
    return sep.join(items) + rng.choice(["", "", "."])


def narrative(a: dict, rng: random.Random) -> str:
    subj = a["subj"].capitalize()
    verb_s = "are" if a["subj"] == "they" else "is"
    has = "have" if a["subj"] == "they" else "has"
    wears = "wear" if a["subj"] == "they" else "wears"
    opener = rng.choice([f"The {a['who']} {has} {a['hair']}.", f"This {a['who']} {has} {a['hair']}.",
                         f"A {a['who']} with {a['hair']} is walking down the street."])
    s = [opener,
         rng.choice([f"{subj} {verb_s} wearing {_a(a['top'])}.", f"{subj} {wears} {_a(a['top'])} on top.",
                     f"{subj} {verb_s} dressed in {_a(a['top'])}."]),
         rng.choice([f"{subj} also {has} {a['bottom']} on.", f"{subj} {wears} {a['bottom']} as well.",
                     f"Below that {subj.lower()} {verb_s} wearing {a['bottom']}."]),
         rng.choice([f"On {a['pos']} feet are {a['shoes']}.", f"{subj} {verb_s} wearing {a['shoes']}.",
                     f"{a['pos'].capitalize()} shoes are {a['shoes']}."])]
    if a["acc"]:
        s.append(f"{subj} {verb_s} also wearing {a['acc']}.")
    if a["bag"]:
        s.append(rng.choice([f"{subj} {verb_s} carrying {_a(a['bag'])}.", f"{subj} {has} {_a(a['bag'])} with {'them' if a['subj'] == 'they' else 'him' if a['subj'] == 'he' else 'her'}."]))
    if rng.random() < 0.3:
        s.append(rng.choice([f"{subj} {verb_s} looking straight ahead.", f"{subj} {verb_s} facing away from the camera."]))
    return " ".join(s)


def participial(a: dict, rng: random.Random) -> str:
    opener = rng.choice(["Dressed in", "Wearing", "Clad in", "Sporting"])
    clothes = [_a(a["top"]), a["bottom"]]
    if rng.random() < 0.6:
        clothes.append(f"a pair of {a['shoes']}")
    mid = rng.choice([" that match the rest of the outfit", " that look comfortable for a long day", ""])
    who = rng.choice([f"a {a['who']} with {a['hair']}", f"a young {a['who']} with {a['hair']}", f"a {a['who']}"])
    action = rng.choice(["is walking slowly along the crowded street", "is standing near the entrance of a building",
                         "is crossing the road in the afternoon light", "is waiting at the corner",
                         "is strolling past the shops"])
    extra = ""
    if a["bag"]:
        extra = rng.choice([f" while holding {_a(a['bag'])} in one hand", f", carrying {_a(a['bag'])}",
                            f" with {_a(a['bag'])} over one shoulder"])
    tail = rng.choice(["", " and looking ahead with a calm expression", " at an unhurried pace"])
    text = f"{opener} {', '.join(clothes[:-1])} and {clothes[-1]}{mid}, {who} {action}{extra}{tail}"
    return text + rng.choice([".", ".", ""])


def exclamatory(a: dict, rng: random.Random) -> str:
    pool = [
        f"Can you spot the {a['who']} in the {a['top']}?",
        f"Look for {_a(a['top'])} and {a['bottom']}!",
        f"Wow, what {a['shoes']}!",
        f"Did you see that {a['hair']}?",
        f"Check out the {a['shoes']}!",
        f"Who could miss {_a(a['top'])} like that?",
        f"What a {a['who']}!",
        f"Just look at those {a['bottom']}!",
    ]
    if a["bag"]:
        pool += [f"And don't forget the {a['bag']}!", f"Is that {_a(a['bag'])}?"]
    k = rng.randint(2, 4)
    return " ".join(rng.sample(pool, k))


def first_person_past(a: dict, rng: random.Random) -> str:
    open_ = rng.choice([f"I saw {_a(a['who'])} who was wearing {_a(a['top'])} and {a['bottom']}.",
                        f"I noticed {_a(a['who'])} in {_a(a['top'])} and {a['bottom']}.",
                        f"Yesterday I saw {_a(a['who'])} wearing {_a(a['top'])}."])
    s = [open_]
    pron = a["subj"]
    obj = {"she": "her", "he": "him", "they": "them"}[pron]
    was = "were" if pron == "they" else "was"
    if rng.random() < 0.8:
        s.append(rng.choice([f"I think {pron} had {a['hair']}.", f"I remember that {pron} had {a['hair']}.",
                             f"As far as I recall {pron} had {a['hair']}."]))
    if rng.random() < 0.7:
        s.append(rng.choice([f"{pron.capitalize()} {was} wearing {a['shoes']}, I believe.",
                             f"I also noticed {a['shoes']}."]))
    if a["bag"]:
        s.append(rng.choice([f"I saw {obj} carrying {_a(a['bag'])}.", f"I'm fairly sure {pron} had {_a(a['bag'])}."]))
    return " ".join(s)


STYLES: tuple[Callable[[dict, random.Random], str], ...] = (
    attribute_list, narrative, participial, exclamatory, first_person_past,
)


def generate(per_style: int, seed: int = 0, styles: tuple[int, ...] | None = None) -> tuple[list[str], list[int]]:
    """``per_style`` captions for each style (all five unless ``styles`` picks some), shuffled;
    returns ``(texts, planted_style_index)``."""
    rng = random.Random(seed)
    chosen = tuple(range(len(STYLES))) if styles is None else styles
    rows = [(STYLES[s](sample_attributes(rng), rng), s) for s in chosen for _ in range(per_style)]
    rng.shuffle(rows)
    return [r[0] for r in rows], [r[1] for r in rows]
