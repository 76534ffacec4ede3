"""An ``augment.lexicons`` entry whose language no input row has."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lrl.config import ConfigError
from lrl.data.schema import NER_SCHEMA
from lrl.generate.augment.resources import build_resources
from lrl.generate.config import AugmentConfig


def _rows(lang: str) -> pa.Table:
    return pa.Table.from_pylist([{"id": f"{lang}:train:0", "lang": lang, "tokens": ["Ci", "Ndakaaru", "la"],
                                  "tags": ["O", "B-LOC", "O"], "source": "x", "op": "orig"}], schema=NER_SCHEMA)


def test_a_lexicon_of_a_language_without_rows_is_an_error(tmp_path):
    """``lexicons: {wol: wo.tsv}`` beside WikiANN ``lang: wo`` rows: the lexicon was read for no
    row, insert and synonym ran without it, and nothing said so (with ``ops: [insert]`` not even
    the synonym warning), where ``oversample.target_per_lang`` naming such a language stops."""
    lex = tmp_path / "wo.tsv"
    lex.write_text("la\tlaa\n", encoding="utf-8")
    for ops in (["insert"], ["synonym", "swap"]):
        cfg = AugmentConfig(ops=ops, lexicons={"wol": str(lex)})
        with pytest.raises(ConfigError, match=r"augment\.lexicons names \['wol'\] but no training row \(data\.ner, held-out "
                                              r"splits aside\) has that language \(the rows' languages: \['wo'\]\)"):
            build_resources(cfg, _rows("wo"), None)
    # The language's own entry is used; ops that use no synonyms leave the lexicon alone.
    assert build_resources(AugmentConfig(ops=["insert"], lexicons={"wo": str(lex)}), _rows("wo"),
                           None).synonyms_of("wo", "la") == ("laa",)
    assert build_resources(AugmentConfig(ops=["swap"], lexicons={"wol": str(lex)}), _rows("wo"), None)
