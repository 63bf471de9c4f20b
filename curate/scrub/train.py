"""`curate scrub train`: the PHI tagger (curate.scrub.tagger) trained on annotated notes.

Input: notes with gold spans, either JSONL in the shared span format ({"note_id", "patient", "text", "spans":
[[start, end, category, value], ...]}, categories of ../shared/data/phi/README.md) or a folder of BRAT standoff pairs
(name.txt + name.ann; the patient is the file name's part before the first "-" or "_"). The patients are split
(a salted hash, `holdout` of them set aside); the tagger is trained on the rest, each note also copied `augment`
times with every gold span replaced by a surrogate (names of many origins from Faker's locales, random case, dates in
clinical forms, facilities, phones), and scored on the set-aside patients per category, alone and beside the rules,
at several thresholds. `holdout 0` trains on every note (the shipped model) and scores nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

from curate.scrub.tagger import FEATURE_VERSION, LABELS, OUTSIDE, features, labels, tokens

#: The thresholds the report scores (the scrub option `tagger_threshold` picks one).
REPORT_THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
SPLIT_SALT = "curate-scrub-train:"
#: crfsuite's L-BFGS settings: L1 (c1) keeps the model small (most features get weight 0), L2 (c2) smooths.
CRF_PARAMS = {"c1": 0.1, "c2": 0.01, "max_iterations": 150, "feature.possible_transitions": True}


class TrainError(ValueError):
    """Bad training input (a located message)."""


# ---------------------------------------------------------------- reading notes


def read_notes(path: Path) -> list[dict]:
    """Notes with gold spans from a JSONL file or a folder of BRAT standoff (.txt + .ann) files."""
    if path.is_dir():
        return read_brat(path)
    notes = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                note = json.loads(line)
                text, spans = note["text"], note.get("spans", [])
                for span in spans:
                    start, end = int(span[0]), int(span[1])
                    if not isinstance(span[2], str):
                        raise ValueError(f"span {span[:3]}: the category is not text")
                    if not 0 <= start < end <= len(text):
                        raise ValueError(f"span {span[:3]} outside the text ({len(text)} chars)")
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise TrainError(f"{path}:{n}: not a note with spans ({exc})") from None
            notes.append({"note_id": str(note.get("note_id", n)), "patient": str(note.get("patient", n)),
                          "text": text, "spans": [[int(s[0]), int(s[1]), str(s[2])] for s in spans]})
    if not notes:
        raise TrainError(f"{path}: no notes")
    return notes


def read_brat(folder: Path) -> list[dict]:
    """BRAT standoff: `T1<TAB>Category start end[;start end]<TAB>text` lines of name.ann over name.txt."""
    notes = []
    for txt in sorted(folder.glob("*.txt")):
        ann = txt.with_suffix(".ann")
        if not ann.exists():
            raise TrainError(f"{txt}: no {ann.name} beside it")
        text, spans = txt.read_text(encoding="utf-8"), []
        for n, line in enumerate(ann.read_text(encoding="utf-8").splitlines(), 1):
            if not line.startswith("T"):
                continue  # relations, notes, attributes
            try:
                _, kind, _ = line.split("\t", 2)
                category, ranges = kind.split(" ", 1)
                for piece in ranges.split(";"):
                    start, end = map(int, piece.split())
                    if not 0 <= start < end <= len(text):
                        raise ValueError(f"span {start}-{end} outside the text")
                    spans.append([start, end, category])
            except ValueError as exc:
                raise TrainError(f"{ann}:{n}: not a BRAT text-bound annotation ({exc})") from None
        stem = txt.stem
        patient = stem.replace("_", "-").split("-")[0]
        notes.append({"note_id": stem, "patient": patient, "text": text, "spans": spans})
    if not notes:
        raise TrainError(f"{folder}: no .txt/.ann pairs")
    return notes


def set_aside(patient: str, share: float) -> bool:
    return share > 0 and hashlib.sha256(f"{SPLIT_SALT}{patient}".encode()).digest()[0] < share * 256


# ---------------------------------------------------------------- surrogate augmentation

_MONTHS = "January February March April May June July August September October November December".split()
_FACILITY = ("{} Hospital", "{} Medical Center", "{} General", "St. {}", "{} Memorial Hospital", "{} Rehab",
             "{} Nursing Home", "{}", "{}", "{}")


def _case(fake: str, original: str, rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice([fake.upper(), fake.lower(), fake.title()])
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 1:
        return fake.upper()
    if letters and all(c.islower() for c in letters):
        return fake.lower()
    return fake


def _date(rng: random.Random) -> str:
    m, d, y = rng.randint(1, 12), rng.randint(1, 28), rng.randint(1950, 2030)
    month = _MONTHS[m - 1]
    forms = [f"{m}/{d}", f"{m}/{d}/{y % 100:02d}", f"{m:02d}/{d:02d}/{y}", f"{m}-{d}", f"{month} {d}",
             f"{month[:3]} {d}", f"{d} {month}", f"{month} {d}, {y}", f"{m}/{d}-{m}/{d + 1}", f"{m}/{d}/{y}",
             f"{month} of {y}", f"{d}th of {month}", f"{y}-{m:02d}-{d:02d}", f"{m}.{d}.{y % 100:02d}"]
    return rng.choice(forms)


def surrogate(category: str, original: str, rng: random.Random, pools: dict) -> str:
    """A fake value of a gold category, in the case of the original."""
    entity = LABELS[category]
    if entity == "PERSON":
        words = original.split()
        if category == "PTNameInitial" or (len(words) == 1 and len(original.strip(".")) == 1):
            return rng.choice("ABCDEFGHIJKLMNOPRSTW")
        pick = [rng.choice(pools["given"]) for _ in words[:-1]] + [rng.choice(pools["family"])]
        if len(words) == 1 and rng.random() < 0.4:
            pick = [rng.choice(pools["given"])]
        if rng.random() < 0.08:
            pick[-1] += "-" + rng.choice(pools["family"]).title()
        return _case(" ".join(w.title() for w in pick), original, rng)
    if entity == "LOCATION":
        return _case(rng.choice(_FACILITY).format(rng.choice(pools["place"]).title()), original, rng)
    if entity == "DATE":
        return _date(rng)
    if entity == "PHONE":
        a, b, c = rng.randint(200, 999), rng.randint(200, 999), rng.randint(0, 9999)
        return rng.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{b}-{c:04d}", f"x{c:04d}", f"{a}.{b}.{c:04d}"])
    if entity == "AGE":
        return str(rng.randint(90, 105))
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(4, 9)))


def augmented(note: dict, rng: random.Random, pools: dict) -> dict:
    """The note with every gold span of a known category replaced by a surrogate (spans moved to match)."""
    text, parts, spans, last, shift = note["text"], [], [], 0, 0
    for start, end, category, *_ in sorted(note["spans"], key=lambda s: (s[0], s[1])):
        if start < last:
            continue  # overlapping gold spans: keep the first
        parts.append(text[last:start])
        if category in LABELS:
            fake = surrogate(category, text[start:end], rng, pools)
        else:
            fake = text[start:end]
        new_start = start + shift
        parts.append(fake)
        spans.append([new_start, new_start + len(fake), category])
        shift += len(fake) - (end - start)
        last = end
    parts.append(text[last:])
    return {**note, "text": "".join(parts), "spans": spans}


def _pools() -> dict:
    from curate.scrub import allow_list as a

    return {"given": sorted(a.given_names()), "family": sorted(a.family_names()),
            "place": sorted(a.cities() | {t for t in a.towns() if len(t) > 3})}


# ---------------------------------------------------------------- training and scoring


def train_model(notes: list[dict], output: Path, *, augment: int = 4, seed: int = 0,
                log: Callable[[str], None] = print) -> dict:
    """Train the CRF on `notes` (+ `augment` surrogate copies of each) and write the model (gzip) to `output`."""
    import pycrfsuite

    rng, pools = random.Random(seed), _pools()
    trainer = pycrfsuite.Trainer(verbose=False)
    count = 0
    for note in notes:
        for copy in [note] + [augmented(note, rng, pools) for _ in range(augment)]:
            spans = tokens(copy["text"])
            if spans:
                trainer.append(features(copy["text"], spans), labels(copy["text"], spans, copy["spans"]))
                count += 1
    trainer.set_params(CRF_PARAMS)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tmp = output.with_name(output.name + ".tmp")
    trainer.train(str(tmp))
    raw = tmp.read_bytes()
    tmp.unlink()
    part = output.with_name(output.name + ".part")
    part.write_bytes(gzip.compress(raw, mtime=0))
    part.replace(output)
    seconds = time.perf_counter() - start
    log(f"trained on {len(notes)} notes + {len(notes) * augment} surrogate copies ({count} sequences) in "
        f"{seconds:.0f} s -> {output} ({output.stat().st_size / 1024:.0f} KB)")
    return {"notes": len(notes), "sequences": count, "seconds": round(seconds, 1), "feature_version": FEATURE_VERSION,
            "params": CRF_PARAMS, "augment": augment, "seed": seed}


def evaluate(model: Path, notes: list[dict], thresholds=REPORT_THRESHOLDS, rules: bool = True) -> dict:
    """Per-category recall and other tokens changed on `notes`: the tagger alone and beside the rules (the default
    engine's findings), at each threshold."""
    from curate.scrub.engine import EngineConfig, Scrubber, merge_findings, replace_spans
    from curate.scrub.entities import ENTITIES, placeholder
    from curate.scrub.score import score
    from curate.scrub.tagger import Tagger, select

    tagger = Tagger.load(model)
    texts = [n["text"] for n in notes]
    probs = [tagger.probabilities(t) for t in texts]
    rule_findings = [[] for _ in texts]
    if rules:
        scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES), tagger_model=None))
        rule_findings = scrubber.find(texts)
    out = {}
    for threshold in thresholds:
        for name, use_rules in (("tagger", False), ("rules+tagger", True)) if rules else (("tagger", False),):
            scrubbed = []
            for text, (spans, p, kinds), found in zip(texts, probs, rule_findings):
                mine = [(s, e, k, 0.6) for s, e, k in select(text, spans, p, kinds, threshold)]
                merged = merge_findings([_F(*f) for f in mine + (list(found) if use_rules else [])])
                scrubbed.append(replace_spans(text, merged, lambda span, entity: placeholder(entity)))
            out[f"{name} > {threshold}"] = score(notes, scrubbed).summary()
    if rules:
        scrubbed = [replace_spans(t, f, lambda span, entity: placeholder(entity)) for t, f in zip(texts, rule_findings)]
        out["rules"] = score(notes, scrubbed).summary()
    return out


class _F:
    __slots__ = ("start", "end", "entity_type", "score")

    def __init__(self, start, end, entity_type, score):
        self.start, self.end, self.entity_type, self.score = start, end, entity_type, score


def train(input_path: Path, output: Path, *, holdout: float = 0.25, augment: int = 4, seed: int = 0,
          report: Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Read, split by patient, train, score the set-aside patients; returns (and writes) the report."""
    from curate.scrub.score import PROVIDER, SAFE_HARBOR

    if not 0 <= holdout < 1:
        raise TrainError(f"--holdout must be in [0, 1), got {holdout}")
    notes = read_notes(input_path)
    aside = [n for n in notes if set_aside(n["patient"], holdout)]
    train_notes = [n for n in notes if not set_aside(n["patient"], holdout)]
    if not train_notes:
        raise TrainError(f"{input_path}: every patient was set aside; lower --holdout")
    patients = len({n["patient"] for n in notes})
    log(f"{len(notes)} notes of {patients} patients: training on {len(train_notes)}, "
        f"{len(aside)} notes of {len({n['patient'] for n in aside})} patients set aside")
    summary = {"input": str(input_path), "holdout": holdout, "notes": len(notes), "patients": patients,
               "set_aside_notes": len(aside), "training": train_model(train_notes, output, augment=augment, seed=seed,
                                                                      log=log)}
    if aside:
        scores = evaluate(output, aside)
        summary["set_aside"] = scores
        log("| detector | Safe Harbor recall | provider names | other tokens changed | per category |")
        log("|---|---:|---:|---:|---|")
        for name, s in scores.items():
            cats = ", ".join(f"{c} {k}/{n}" for c, (k, n) in s["per_category"].items()
                             if c in (*SAFE_HARBOR, *PROVIDER))
            log(f"| {name} | {s['safe_harbor_recall']:.3f} | {s['provider_recall']:.3f} | "
                f"{s['non_phi_changed']:.2%} | {cats} |")
    if report is not None:
        report.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


__all__ = ["OUTSIDE", "TrainError", "read_notes", "train", "train_model", "evaluate"]
