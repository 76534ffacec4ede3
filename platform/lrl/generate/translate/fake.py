"""A deterministic stand-in translator: exact label-projection checks without a model.

Words are transformed one by one (identity, reversed letters, upper case) so the expected output
of every sentence is known; markers pass through unchanged unless the options drop, move, glue or
garble them, which is how tests exercise the repair paths. Randomness is seeded per sentence
(seed + text), so a sentence gets the same "translation" in every batch, worker and run.
"""

from __future__ import annotations

import random
import re
import zlib

from lrl.generate.mt_config import FakeMTConfig

_MARKER = re.compile(r"^(?:[\[\]]|</?e\d+>)$")
_GARBLE = str.maketrans("[]<>", "{}«»")
_FLIP = {"[": "]", "]": "["}


class FakeTranslator:
    """Translate a list of strings deterministically (see the module docstring)."""

    def __init__(self, cfg: FakeMTConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or FakeMTConfig()
        self.seed = seed

    def word(self, w: str) -> str:
        if self.cfg.mode == "reverse":
            return w[::-1]
        if self.cfg.mode == "upper":
            return w.upper()
        return w

    def translate(self, texts: list[str], src: str | None = None) -> list[str]:
        return [self.one(t) for t in texts]

    def one(self, text: str) -> str:
        rng = random.Random(zlib.crc32(f"{self.seed}\x00{text}".encode()))
        toks = [t if _MARKER.match(t) else self.word(t) for t in text.split()]
        if self.cfg.reorder:
            # Reversing the order turns every open marker into a close one: flip them back.
            toks = [_flip(t) if _MARKER.match(t) else t for t in reversed(toks)]
        out: list[str] = []
        i = 0
        c = self.cfg
        while i < len(toks):
            tok = toks[i]
            if not _MARKER.match(tok):
                out.append(tok)
                i += 1
                continue
            if c.drop_marker_rate and rng.random() < c.drop_marker_rate:
                i += 1
                continue
            if c.move_marker_rate and i + 1 < len(toks) and rng.random() < c.move_marker_rate:
                # The marker lands after its right neighbour and is not perturbed again.
                out.extend([toks[i + 1], tok])
                i += 2
                continue
            if c.garble_marker_rate and rng.random() < c.garble_marker_rate:
                tok = tok.translate(_GARBLE)
            if c.glue_marker_rate and rng.random() < c.glue_marker_rate:
                opening = tok.startswith("[") or (tok.startswith("<") and not tok.startswith("</"))
                if opening and i + 1 < len(toks):
                    toks[i + 1] = tok + toks[i + 1]
                    i += 1
                    continue
                if not opening and out:
                    out[-1] = out[-1] + tok
                    i += 1
                    continue
            out.append(tok)
            i += 1
        return " ".join(out)


def _flip(tok: str) -> str:
    if tok in _FLIP:
        return _FLIP[tok]
    return tok.replace("</", "<") if tok.startswith("</") else tok.replace("<", "</", 1)
