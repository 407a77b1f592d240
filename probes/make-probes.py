#!/usr/bin/env python3
"""Writes the probe suites in probes/ (JSONL, see README.md). Standard library only, so that
rebuilding gives byte-identical files: `python3 probes/make-probes.py`.

The factual items are grouped by prompt length: within a group every prompt has the same number
of tokens for both SmolLM2-135M and Gemma 3 270M (checked when the suites were designed, and at
every load by strata itself), so an item's corrupted partner is another item of its group, and
the partner's answer is the distractor.
"""
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (country, capital); the groups have equal prompt token lengths (SmolLM2, Gemma 3).
CAPITALS = [
    # "The capital of X is": 5 tokens (SmolLM2), 6 (Gemma 3, with <bos>)
    [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
     ("Japan", "Tokyo"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("China", "Beijing"),
     ("England", "London"), ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Austria", "Vienna"),
     ("Poland", "Warsaw"), ("Ireland", "Dublin"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
     ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Hungary", "Budapest"),
     ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
     ("Australia", "Canberra"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"),
     ("Belgium", "Brussels"), ("Switzerland", "Bern"), ("Bulgaria", "Sofia"),
     ("Syria", "Damascus"), ("Afghanistan", "Kabul"), ("Tunisia", "Tunis"),
     ("Scotland", "Edinburgh"), ("Wales", "Cardiff"), ("Jamaica", "Kingston")],
    # 6 / 7 tokens
    [("South Korea", "Seoul"), ("the Netherlands", "Amsterdam"), ("the Philippines", "Manila"),
     ("New Zealand", "Wellington")],
]

# (landmark, city); "<Landmark> is located in the city of".
LANDMARKS = [
    # 8 / 9 tokens
    [("Big Ben", "London"), ("Red Square", "Moscow"), ("Dam Square", "Amsterdam"),
     ("the Bund", "Shanghai"), ("the Smithsonian", "Washington"), ("South Beach", "Miami")],
    # 9 / 9
    [("the Kremlin", "Moscow"), ("the Louvre", "Paris"), ("Tower Bridge", "London"),
     ("the Pantheon", "Rome"), ("Checkpoint Charlie", "Berlin"),
     ("Independence Hall", "Philadelphia")],
    # 9 / 10
    [("the Acropolis", "Athens"), ("Buckingham Palace", "London"), ("the CN Tower", "Toronto"),
     ("the Willis Tower", "Chicago"), ("the Charles Bridge", "Prague"),
     ("the Atomium", "Brussels"), ("Westminster Abbey", "London"),
     ("the Blue Mosque", "Istanbul"), ("the Vatican Museums", "Rome"),
     ("the Spanish Steps", "Rome"), ("Montmartre", "Paris"), ("the British Museum", "London"),
     ("Hyde Park", "London"), ("the Lincoln Memorial", "Washington"),
     ("the White House", "Washington"), ("the Liberty Bell", "Philadelphia"),
     ("the Egyptian Museum", "Cairo")],
    # 10 / 10
    [("the Eiffel Tower", "Paris"), ("the Colosseum", "Rome"),
     ("the Brandenburg Gate", "Berlin"), ("the Space Needle", "Seattle"),
     ("the Prado Museum", "Madrid"), ("the Forbidden City", "Beijing"),
     ("Marina Bay Sands", "Singapore"), ("Fenway Park", "Boston"), ("Park Güell", "Barcelona"),
     ("the Vasa Museum", "Stockholm"), ("Federation Square", "Melbourne"),
     ("Wrigley Field", "Chicago")],
    # 10 / 11
    [("the Hagia Sophia", "Istanbul"), ("the Parthenon", "Athens"),
     ("the Trevi Fountain", "Rome"), ("the Gateway of India", "Mumbai"),
     ("the Anne Frank House", "Amsterdam"), ("Tivoli Gardens", "Copenhagen"),
     ("the Hungarian Parliament Building", "Budapest"), ("Trafalgar Square", "London"),
     ("Pike Place Market", "Seattle"), ("the Astrodome", "Houston")],
    # 11 / 11
    [("the Sagrada Familia", "Barcelona"), ("the Rialto Bridge", "Venice"),
     ("the Reichstag building", "Berlin"), ("the Rijksmuseum", "Amsterdam"),
     ("the Belém Tower", "Lisbon")],
    # 11 / 12
    [("the Bolshoi Theatre", "Moscow"), ("Schönbrunn Palace", "Vienna"),
     ("the Sensoji Temple", "Tokyo"), ("Kinkaku-ji", "Kyoto"),
     ("the Grand Ole Opry", "Nashville")],
]


def slug(text):
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def derangement(group):
    """Partner index for each member: the smallest cyclic shift giving every member a partner
    with a different answer."""
    n = len(group)
    for k in range(1, n):
        if all(group[i][1] != group[(i + k) % n][1] for i in range(n)):
            return [(i + k) % n for i in range(n)]
    raise SystemExit(f"no derangement with distinct answers for {group}")


def factual():
    items = []
    for groups, kind, template in [
        (CAPITALS, "capital", "The capital of {} is"),
        (LANDMARKS, "landmark", "{} is located in the city of"),
    ]:
        for group in groups:
            partner = derangement(group)
            for i, (subject, answer) in enumerate(group):
                other, other_answer = group[partner[i]]

                def prompt(s):
                    p = template.format(s)
                    return p[0].upper() + p[1:]

                items.append({
                    "id": f"{kind}-{slug(subject.removeprefix('the '))}",
                    "prompt": prompt(subject),
                    "target": " " + answer,
                    "distractor": " " + other_answer,
                    "corrupted": prompt(other),
                    "subject": subject.removeprefix("the "),
                })
    return items


IOI_TEMPLATES = [
    "When {A} and {B} went to the store, {S} gave a drink to",
    "When {A} and {B} got a snack at the cafe, {S} decided to give it to",
    "Then, {A} and {B} went to the park. {S} gave a ball to",
    "Then, {A} and {B} had a long argument, and afterwards {S} said to",
    "After {A} and {B} went to the hospital, {S} gave a flower to",
    "While {A} and {B} were working at the office, {S} gave a report to",
    "Friends {A} and {B} found a necklace at the beach. {S} gave it to",
    "Afterwards, {A} and {B} went to the restaurant. {S} gave a ring to",
    "When {A} and {B} arrived at the school, {S} gave a book to",
    "Then, {A} and {B} were thinking about going to the station. {S} wanted to give a ticket to",
    "{A} and {B} went to the garden, and {S} handed a basket to",
    "Yesterday {A} and {B} visited the museum, and {S} showed a painting to",
    "At the party, {A} and {B} were talking, and then {S} passed a glass to",
    "Since {A} and {B} were at the library, {S} lent a pen to",
    "After lunch, {A} and {B} went to the market. {S} bought a gift for",
    "When {A} and {B} came home, {S} threw the keys to",
    "On Monday, {A} and {B} met at the bank, where {S} sent a letter to",
    "In the morning, {A} and {B} walked to the lake, and {S} gave a fish to",
    "After the game, {A} and {B} went to the bar. {S} offered a beer to",
    "During the trip, {A} and {B} stopped at the hotel, and {S} gave the map to",
    "Later, {A} and {B} cooked dinner in the kitchen. {S} passed the salt to",
    "When {A} and {B} reached the airport, {S} handed a passport to",
    "After class, {A} and {B} went to the theater. {S} gave a ticket to",
    "Last week {A} and {B} moved to a new house, and {S} gave a key to",
    "At the zoo, {A} and {B} saw a lion, and {S} pointed it out to",
]

# Single tokens (with a leading space) for both tokenizers.
NAMES = ("Mary John Tom James Dan Sid Martin Amy Lisa Kate Paul Mark Sarah Emma David Michael "
         "Anna Laura Peter Rachel Alice Bob Carol Jack Jane Ryan Kevin Susan Karen Steve Joe "
         "Mike Chris Alex Sam Ben Eric Adam Emily Daniel Andrew George Henry Grace Rose Lucy "
         "Tim Jim").split()


def ioi():
    rng = random.Random(6)
    items = []
    for t, template in enumerate(IOI_TEMPLATES):
        for order in ("abba", "baba"):
            io, s, c = rng.sample(NAMES, 3)
            first, second = (io, s) if order == "abba" else (s, io)
            items.append({
                "id": f"ioi-{t:02d}-{order}",
                "prompt": template.format(A=first, B=second, S=s),
                "target": " " + io,
                "distractor": " " + s,
                # ABC: the second mention of the subject becomes a third name.
                "corrupted": template.format(A=first, B=second, S=c),
            })
    return items


GT_NOUNS = ["war", "expedition", "project", "dynasty", "occupation", "reign", "tour",
            "festival", "famine", "drought", "strike", "blockade", "trial", "conflict",
            "campaign", "rebellion", "crisis", "siege", "exhibition", "construction",
            "journey", "voyage", "embargo", "pilgrimage", "migration", "plague", "truce",
            "program", "boom", "revolt"]


def greater_than():
    rng = random.Random(1732)
    items = []
    for noun in GT_NOUNS:
        century = rng.choice(["15", "16", "17", "18"])
        tens = rng.randint(2, 7)
        units = rng.randint(1, 9)
        year = f"{century}{tens}{units}"
        prompt = f"The {noun} lasted from the year {year} to the year {century}"
        items.append({
            "id": f"gt-{noun}-{year}",
            "prompt": prompt,
            # Digits are single tokens for both tokenizers: the next token is the tens digit
            # of the end year. Greater tens digits are correct, smaller ones wrong.
            "target": str(tens + 1),
            "distractor": str(tens - 1),
            "corrupted": f"The {noun} lasted from the year {century}01 to the year {century}",
            "good": [str(d) for d in range(tens + 1, 10)],
            "bad": [str(d) for d in range(0, tens)],
        })
    return items


# Common nouns that are single tokens (with a leading space) for both tokenizers.
INDUCTION_WORDS = ("apple table river window garden doctor music paper horse camera bottle "
                   "forest island pencil mountain teacher kitchen bridge market castle rocket "
                   "candle guitar violin jacket engine planet silver orange monkey tiger rabbit "
                   "turtle dragon button pocket hammer ladder mirror pillow carpet basket "
                   "blanket bucket helmet rubber cotton marble copper velvet winter summer "
                   "autumn spring morning evening village temple church palace tower wallet "
                   "ticket letter number circle square triangle shadow thunder desert ocean "
                   "valley meadow harbor anchor compass lantern saddle feather ribbon").split()


def induction():
    return [{
        "generate": "induction",
        "id_prefix": "induction",
        "count": 24,
        "length": 10,
        "repeat": 5,
        "seed": 20240601,
        "words": INDUCTION_WORDS,
    }]


HEADERS = {
    "factual": "factual recall: country -> capital and landmark -> city; corrupted partner = "
               "another item of equal token length, distractor = its answer",
    "ioi": "indirect object identification (Wang et al. 2022): 25 templates x (ABBA, BABA); "
           "target = indirect object, distractor = subject, corrupted = ABC",
    "greater_than": "greater-than (Hanna et al. 2023), digit-tokenizer form: the next token is "
                    "the tens digit of the end year; corrupted start year ..01",
    "induction": "induction: repeated random words, generated from a seed when loaded",
}


def write(name, rows):
    path = HERE / f"{name}.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(f"# {HEADERS[name]}\n")
        f.write("# generated by probes/make-probes.py; format: probes/README.md\n")
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{path.relative_to(HERE.parent)}: {len(rows)} lines")


if __name__ == "__main__":
    write("factual", factual())
    write("ioi", ioi())
    write("greater_than", greater_than())
    write("induction", induction())
