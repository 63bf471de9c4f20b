"""The PHI tagger beside the rules (issue 23): `curate scrub train` through the real CLI on a note file written here
and on a slice of the real PhysioNet deid notes, `curate scrub --model PATH`, and the checks that keep the tagger off
medicine (a replacement never starts or ends inside a word, an option letter is never a name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pycrfsuite")

NAMES = [("Halvorsen", "Ingrid"), ("Okonkwo", "Chidi"), ("Brannigan", "Maeve"), ("Castellanos", "Rafael"),
         ("Nakashima", "Yuki"), ("Wojcik", "Tomasz")]


def _notes() -> list[dict]:
    """Tiny annotated notes: a provider after "Dr", a relative after "son", a date, a hospital."""
    notes = []
    for i, (last, first) in enumerate(NAMES):
        parts = [("Seen by Dr ", None), (last, "HCPName"), (" on ", None), (f"{i + 2}/{i + 11}", "Date"),
                 (". Son ", None), (first, "RelativeProxyName"), (" visited; transfer from ", None),
                 (f"{last} Hospital", "Location"), (". BP 120/80, HR 88, on metoprolol. Plan: lasix, K repletion.", None)]
        text, spans = "", []
        for piece, category in parts:
            if category:
                spans.append([len(text), len(text) + len(piece), category, piece])
            text += piece
        notes.append({"note_id": f"{i}-1", "patient": i, "text": text, "spans": spans})
    return notes


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tests.conftest import run_cli

    tmp = tmp_path_factory.mktemp("tagger")
    src, model = tmp / "notes.jsonl", tmp / "tagger.crfsuite.gz"
    src.write_text("".join(json.dumps(n) + "\n" for n in _notes()))
    proc = run_cli("scrub", "train", "-i", src, "-o", model, "--holdout", "0", "--augment", "3",
                   "--report", tmp / "train.json")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "trained on 6 notes + 18 surrogate copies" in proc.stdout
    report = json.loads((tmp / "train.json").read_text())
    assert report["notes"] == 6 and report["set_aside_notes"] == 0 and "set_aside" not in report
    return model


def test_train_writes_a_model_that_scrub_loads(tiny_model, tmp_path, cli):
    src, out, rep = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "rep.json"
    src.write_text(json.dumps({"id": "1", "text": "Seen by Dr Fitzwilliam on 3/14. Son Lachlan visited."}) + "\n")
    proc = cli("scrub", "-i", src, "-o", out, "--model", tiny_model, "--report", rep, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    text = json.loads(out.read_text())["text"]
    assert "Fitzwilliam" not in text and "3/14" not in text, text
    assert json.loads(rep.read_text())["tagger"].startswith(str(tiny_model))


def test_scrub_refuses_a_missing_model(tmp_path, cli):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "1", "text": "Seen on 3/14."}) + "\n")
    proc = cli("scrub", "-i", src, "-o", out, "--model", tmp_path / "nope.crfsuite")
    assert proc.returncode != 0 and "no such model file" in proc.stdout + proc.stderr
    assert not out.exists()


def test_train_refuses_bad_spans_and_writes_nothing(tmp_path, cli):
    src, model = tmp_path / "notes.jsonl", tmp_path / "m.crfsuite.gz"
    src.write_text(json.dumps({"note_id": "1", "patient": 1, "text": "short", "spans": [[2, 99, "Date", "x"]]}) + "\n")
    proc = cli("scrub", "train", "-i", src, "-o", model)
    assert proc.returncode == 2, proc.stderr
    assert "notes.jsonl:1" in proc.stdout + proc.stderr and "outside the text" in proc.stdout + proc.stderr
    assert not model.exists()


def test_train_reads_brat_standoff(tmp_path):
    from curate.scrub.train import read_notes

    (tmp_path / "p7-note1.txt").write_text("Dr Halvorsen saw pt on 3/9.")
    (tmp_path / "p7-note1.ann").write_text("T1\tHCPName 3 12\tHalvorsen\nT2\tDate 23 26\t3/9\n#1\tAnnotatorNotes T1\tx\n")
    notes = read_notes(tmp_path)
    assert notes == [{"note_id": "p7-note1", "patient": "p7", "text": "Dr Halvorsen saw pt on 3/9.",
                      "spans": [[3, 12, "HCPName"], [23, 26, "Date"]]}]


def test_real_notes_slice_trains_and_reports_per_category(shared_data, tmp_path, cli):
    """`curate scrub train` on the notes of a few real patients: a patient-level split and a per-category report of
    the set-aside patients (the tagger alone, the rules, and both)."""
    path = shared_data / "phi" / "physionet-deid" / "notes.dev.jsonl"
    if not path.exists():
        pytest.skip("notes.dev.jsonl absent")
    from curate.scrub.train import set_aside

    notes, patients = [], set()
    for line in path.open():
        note = json.loads(line)
        if len(patients) < 8 or note["patient"] in patients:
            patients.add(note["patient"])
            notes.append(note)
    assert any(set_aside(str(p), 0.5) for p in patients) and not all(set_aside(str(p), 0.5) for p in patients)
    src, model, rep = tmp_path / "slice.jsonl", tmp_path / "m.crfsuite.gz", tmp_path / "train.json"
    src.write_text("".join(json.dumps(n) + "\n" for n in notes[:120]))
    proc = cli("scrub", "train", "-i", src, "-o", model, "--holdout", "0.5", "--augment", "1", "--report", rep)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    report = json.loads(rep.read_text())
    assert report["set_aside_notes"] > 0
    scores = report["set_aside"]
    assert {"rules", "tagger > 0.03", "rules+tagger > 0.03"} <= set(scores)
    both, rules = scores["rules+tagger > 0.03"], scores["rules"]
    assert both["per_category"] and both["safe_harbor_recall"] >= rules["safe_harbor_recall"]
    assert "| rules+tagger > 0.03 |" in proc.stdout


def test_tagger_findings_never_cut_a_word_nor_take_an_option_letter():
    from curate.scrub.tagger import medical_checks, widen

    text = "point to Behçet's disease; options left are C and von Willebrand disease; 0.625 is 5/8 here"
    cut = text.index("çet")
    assert widen(text, [(cut, cut + 3, "LOCATION")]) == [(9, 15, "LOCATION")]  # the whole word, never a piece
    c = text.index(" C ") + 1
    vw = text.index("von")
    found = medical_checks(text, widen(text, [(c, c + 1, "PERSON"), (vw, vw + 3, "PERSON"),
                                              (vw + 4, vw + 14, "PERSON")]))
    assert found == []  # a lone option letter, an eponym
    frac = text.index("5/8")
    assert medical_checks(text, [(frac, frac + 3, "DATE")]) == []


def test_default_engine_runs_the_shipped_tagger():
    from curate.scrub.engine import EngineConfig, Scrubber
    from curate.scrub.entities import ENTITIES

    scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))
    assert scrubber.tagger is not None
    rules_only = Scrubber.build(EngineConfig(entities=tuple(ENTITIES), tagger_model=None))
    assert rules_only.tagger is None
