"""Tag schemes: BIO (IOB2), IOB1, IOBES and BILOU read as one, BIO, and entities from tags.

One rule covers reading IOB1 and repairing predictions: an I-X that does not continue an entity
of type X starts one (becomes B-X). Applied to valid BIO it changes nothing.
"""

from __future__ import annotations

# IOBES / BILOU prefixes as their BIO equivalents
PREFIXES = {"B": "B", "I": "I", "E": "I", "L": "I", "S": "B", "U": "B"}


def split_tag(tag: str) -> tuple[str, str]:
    """('B', 'PER') for B-PER, ('O', '') for O; a tag without a known prefix raises ValueError."""
    if tag == "O":
        return "O", ""
    prefix, separator, kind = tag.partition("-")
    if not separator or prefix not in PREFIXES or not kind:
        raise ValueError(f"tag {tag!r} is not O or B-/I-/E-/S-/L-/U- followed by an entity type")
    return PREFIXES[prefix], kind


def to_bio(tags: list[str]) -> list[str]:
    bio, previous = [], ""
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and previous != kind:
            prefix = "B"
        bio.append("O" if prefix == "O" else f"{prefix}-{kind}")
        previous = kind
    return bio


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of each entity in a BIO sequence (repaired first)."""
    found = []
    for index, tag in enumerate(to_bio(tags)):
        if tag.startswith("B-"):
            found.append([tag[2:], index, index + 1])
        elif tag.startswith("I-"):
            found[-1][2] = index + 1
    return [tuple(entity) for entity in found]
