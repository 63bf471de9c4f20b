"""scrub on clinical text as it is written: any case, bare dates, names after relation words and titles, units and
hospitals, clinical phone forms, and the medicine that must survive. Hand-written sentences (none copied from any
corpus), plus the real PhysioNet notes' held-out patients when ../shared/data is present.
"""

from __future__ import annotations

import json
import os

import pytest

from curate.scrub import scrub_rows
from curate.scrub.engine import EngineConfig, Scrubber
from curate.scrub.entities import ENTITIES

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))


def scrub(scrubber, text: str) -> str:
    return scrubber.scrub_texts([text])[0][0]


# Each of these was mangled by the scrubber before (the issue's false redactions): the text must come out as is.
UNCHANGED = [
    "LATEST PLATELETS 58,000, WILL RECHECK IN AM.",
    "pt febrile 101.7 PO. Pt given tylenol with effect.",
    "Weaned to CPAP/PSV 12/10/40% this afternoon, tolerating well.",
    "Received 1/2 ns at 100cc/hr overnight.",
    "ABG 7.45/34/88 on current settings, lactate down.",
    "Lab value 7.45.34.7 recorded by the analyzer.",
    "SKIN WARM.CO 5.2 CI 2.8 after the bolus.",
    "CT shows old infarct.med team aware of the result.",
    "ID- Max temp 100.2, cultures pending.",
    "See Carevue for vital signs and drips.",
    # Real-benchmark style text the context rules changed in the first round (MedQA/MedMCQA-like sentences written
    # for this test): lower-case words after a title, strength and murmur grades, "according to", anatomy after "at".
    "At that time, the doctor empirically started him on a proton pump inhibitor.",
    "Muscle strength in the lower extremity is initially 3/5 but increases to 5/5 after repeated tapping.",
    "A 2/6 systolic murmur is heard at the apex; his GCS is 6/15.",
    "According to ACOG, labour starts after 3-4 cm cervical dilation.",
    "Radiograph shows a radiopaque mass at apex of the tooth.",
    "Her vitals rapidly returned to normal while giving her history.",
    "During resorption, apical 1/3rd may remain unresorbed.",
    "Drooling of saliva since last 4-6 hours.",
    "Palatine process began to fuse at 8 weeks.",
    "Curve of Wilson",
    "Thayer-Martin agar",
    "The surgeon ligates the splenic artery at its origin.",
    "PLACED ON BEDPAN 6-8 TIMES, CONTINUE TO DIURESE.",
    "RESP: Pt sating 98-99% on 2L NP.",
    "C. IgG and C3 at GBM (membranous); A. Mesangial proliferation is seen in the other.",
    # question-bank prose: exam-session tags and generic hospital words (MedMCQA and MedQA forms)
    "Drug causing toxic optic neuropathy is:March 2009",
    "Peau d'Orange of breast is due to:September 2005, 2010, March 2007",
    "Which nerve supplies the muscle? (AIIMS May 2015, May 2014)",
    "She is subsequently taken to the nearest hospital.",
    "She is moved to an isolated hospital room.",
    "Which enzyme is found in the endoplasmic reticulum (ER)?",
    # teacher reasoning (the demo's real DeepSeek-R1 / QwQ traces): option letters, eponyms, acronyms, arithmetic
    "This is a relative afferent pupillary defect, also known as a Marcus Gunn pupil.",
    "So the answer is C. Von Willebrand disease prolongs the aPTT.",
    "That is a possible answer.  D. Allosteric alteration of heme groups.",
    "The most likely diagnosis is MS. Therefore, the physician should act.",
    "The comorbid MD/AUD group had higher rates than the AUD-only group.",
    "So 200*(5/8)^4 is the amount left.",
    "Ammonia 100 µg/dL (ref: 19-60 µg/dL)",
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_medicine_is_not_redacted(scrubber, text):
    assert scrub(scrubber, text) == text


# Hard cases of every miss kind, written for this test: (text, the values that must be gone).
HARD = [
    ("DR OKONKWO-BRANNIGAN OF RENAL TEAM IN TO SEE PT.", ["OKONKWO", "BRANNIGAN"]),
    ("spoke with dr wojcik re: plan, dr wojcik aware of k 5.9", ["wojcik"]),
    ("son ferdie lives in towson and calls daily.", ["ferdie", "towson"]),
    ("PER T. HALVORSEN NP, HOLD HEPARIN.", ["HALVORSEN"]),
    ("mrs. szymanska resting comfortably.", ["szymanska"]),
    ("Daughter Oluwaseun called for an update; wife Siobhan at bedside.", ["Oluwaseun", "Siobhan"]),
    ("INR 3.4, K. DEVERAUX AWARE.", ["DEVERAUX"]),
    ("Maribel Quintanilla, RN", ["Maribel", "Quintanilla"]),
    ("transferred from st agatha hospital 4/17 for cath.", ["agatha", "4/17"]),
    ("PT TRANSFERRED TO KELLNERVILLE MEMORIAL HOSPITAL ON 11/2.", ["KELLNERVILLE", "11/2"]),
    ("Echo 3/9 showed EF 35%; cath planned 3/12.", ["3/9", "3/12"]),
    ("s/p cabg '07, admitted 9/14/19 with chf.", ["'07", "9/14/19"]),
    ("Oriented: knows it is the 14th of March.", ["14th", "March"]),
    ("FAMILY CALL BACK 410/555/2987 OR (617555-0199).", ["410/555/2987", "617555", "0199"]),
    ("94 s/p fall at home, found down by neighbor.", ["94"]),
    ("A retired machinist from Duluth, Worcester, 01608.", ["Duluth", "01608"]),
    # second round: relations in brackets and after the name, in-laws, towns of several words, a time before a date
    ("Lucinda (daughter) called twice overnight.", ["Lucinda"]),
    ("husband (jerzy) asking about d/c plans.", ["jerzy"]),
    ("Gave update to daughter-in-law Wilhelmina.", ["Wilhelmina"]),
    ("pt lives in glen burnie with wife.", ["glen", "burnie"]),
    ("Came via ambulance from St. Agnes.", ["Agnes"]),
    ("Discussed transfer to the Kessler Institute.", ["Kessler"]),
    ("HCT 26.5 (7pm 10/15) down from 28; arrived to CCU at 2300 10/15.", ["10/15"]),
    ("Daughters in to visit today, spoke with Dr. peruzzi.", ["peruzzi"]),
    # an exam tag's shape with a date keyword before the colon is a date
    ("Admission Date:March 2013", ["March 2013"]),
    ("Spoke with J. Marsh about the plan; Ms. Kowalczyk aware.", ["Marsh", "Kowalczyk"]),
    ("REF: 4471-22 on the requisition.", ["4471"]),
    ("Pt transferred from Calvert hospital overnight.", ["Calvert"]),
]


@pytest.mark.parametrize("text,values", HARD)
def test_clinical_phi_is_found(scrubber, text, values):
    out = scrub(scrubber, text)
    for value in values:
        assert value not in out, (value, out)


def test_surrogate_policy_is_natural_consistent_and_seeded():
    text = ("Dr Halvorsen saw pt 3/9. dr halvorsen aware of k. Echo 3/19. Call 410-555-2987. "
            "Transfer to Kellnerville Memorial Hospital.")
    rows = [{"id": "a", "text": text}]
    first, _, summary = scrub_rows([dict(r) for r in rows], policy="surrogate", seed=7, workers=1)
    again, _, _ = scrub_rows([dict(r) for r in rows], policy="surrogate", seed=7, workers=1)
    other, _, _ = scrub_rows([dict(r) for r in rows], policy="surrogate", seed=8, workers=1)
    out = first[0]["text"]
    assert out == again[0]["text"] and out != other[0]["text"]  # seeded, deterministic
    assert "<" not in out and "Halvorsen" not in out and "halvorsen" not in out and "3/9" not in out
    assert "410-555-2987" not in out and "Kellnerville" not in out
    # the same original gets the same surrogate (case kept): "Dr X ... dr x"
    name = out.split()[1]
    assert name.lower() in out.lower().split("dr ", 2)[2]
    # one date offset per text: the 10-day interval survives
    import datetime as dt
    import re
    dates = re.findall(r"\b(\d{1,2})/(\d{1,2})\b", out)
    assert len(dates) == 2
    a, b = (dt.date(2000, int(m), int(d)) for m, d in dates)
    assert (b - a).days == 10
    assert first[0]["phi_found"]["DATE"] == 2 and summary.columns["text"].rows_changed == 1


def test_surrogates_are_consistent_across_the_columns_of_a_row():
    # The question and the completion of one row name the same doctor and dates: one fake name, one date offset.
    rows = [{"id": "r1", "question": "Dr Halvorsen saw the patient on 3/9. What next?",
             "completion": "<think>Halvorsen saw her 3/9 and again 3/19.</think> Call Dr Halvorsen."},
            {"id": "r2", "question": "Dr Halvorsen saw the patient on 3/9. What next?", "completion": "No idea."}]
    out, _, _ = scrub_rows([dict(r) for r in rows], policy="surrogate", seed=3, workers=1)
    again, _, _ = scrub_rows([dict(r) for r in rows], policy="surrogate", seed=3, workers=1)
    assert out == again
    question, completion = out[0]["question"], out[0]["completion"]
    assert "Halvorsen" not in question + completion and "3/9" not in question + completion
    fake = question.split()[1]
    assert completion.count(fake) == 2, (question, completion)
    import re
    first_date = re.search(r"\d{1,2}/\d{1,2}", question).group()
    assert first_date in completion.split(" and ")[0]  # the same 3/9 -> the same shifted date in both columns
    # surrogates depend on the whole row: the same question in another row may get other fakes, but deterministically
    assert out[1]["question"] == again[1]["question"]


def test_report_counts_changes_per_text_column():
    rows = [{"id": "1", "question": "Dr Wojcik saw pt 3/9.", "completion": "no phi here"},
            {"id": "2", "question": "A 45-year-old man.", "completion": "son ferdie called."}]
    kept, _, summary = scrub_rows(rows, workers=1)
    columns = {k: v.model_dump() for k, v in summary.columns.items()}
    assert columns == {"question": {"rows_changed": 1, "chars_changed": len("Wojcik") + len("3/9")},
                                  "completion": {"rows_changed": 1, "chars_changed": len("ferdie")}}
    assert kept[0]["phi_found"] == {"PERSON": 1, "DATE": 1}


@pytest.fixture(scope="module")
def held_out_score(shared_data):
    """The PhysioNet deid notes of the patients curate.scrub.score.held_out keeps aside (never looked at while
    tuning the rules), scrubbed by the rules alone (`model="none"`) and scored by curate.scrub.score (the README's
    token convention). The shipped tagger model was trained on every development note, these patients included, so
    a figure with it here would not be a held-out figure; rules + tagger on patients it never saw is measured by
    bench/scrub.py with the model of `curate scrub train --holdout 0.25` (bench/RESULTS.md)."""
    from curate.scrub.score import held_out, score

    path = shared_data / "phi" / "physionet-deid" / "notes.dev.jsonl"
    if not path.exists():
        pytest.skip("notes.dev.jsonl absent")
    notes = [n for n in map(json.loads, path.open()) if held_out(n["patient"])]
    rows = [{"note_id": n["note_id"], "text": n["text"]} for n in notes]
    kept, _, _ = scrub_rows(rows, workers=2, model="none")
    result = score(notes, [r["text"] for r in kept])
    print("\n", result.summary())
    assert len(notes) > 200
    return result


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_notes_held_out_patients_no_worse_than_measured(held_out_score):
    """A regression guard at the figures measured on the held-out patients (bench/RESULTS.md ## scrub: 0.819 Safe
    Harbor, 0.812 provider names, 0.29% other tokens changed); the issue's targets are the test below."""
    from curate.scrub.score import PROVIDER, SAFE_HARBOR

    assert held_out_score.recall(SAFE_HARBOR) >= 0.81
    assert held_out_score.recall(PROVIDER) >= 0.80
    assert held_out_score.changed_share <= 0.005


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.xfail(strict=True, reason="issue 13 targets not met on the held-out patients: Safe Harbor recall 0.819 "
                                       "(target 0.97), provider names 0.812 (target 0.95); see bench/RESULTS.md")
def test_real_notes_held_out_patients_meet_the_issue_targets(held_out_score):
    from curate.scrub.score import PROVIDER, SAFE_HARBOR

    assert held_out_score.recall(SAFE_HARBOR) >= 0.97
    assert held_out_score.recall(PROVIDER) >= 0.95
