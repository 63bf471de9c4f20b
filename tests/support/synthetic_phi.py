"""A synthetic clinical PHI set with known spans, for the recall tests and the benchmark.

Realistic clinical sentences (history, referrals, billing, devices) carry every Safe Harbor identifier kind,
filled in by Faker (seeded), next to medical language that must stay (eponyms, drugs, "a 45-year-old man", bare
years). `recall_table` scores a scrubber: a gold span counts as found when every letter and digit of it lies
inside some finding, whatever type the finding has.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

#: Gold kinds -> the entity type expected (for readers; recall counts any type covering the span).
KINDS = {
    "NAME": "PERSON", "DATE": "DATE", "ADDRESS": "ADDRESS", "CITY": "LOCATION", "ZIP": "ZIP", "PHONE": "PHONE",
    "FAX": "FAX", "EMAIL": "EMAIL", "SSN": "SSN", "MRN": "MRN", "MRN_UNLABELLED": "MRN", "URL": "URL",
    "IP": "IP_ADDRESS", "AGE_90_PLUS": "AGE", "HEALTH_PLAN": "HEALTH_PLAN", "ACCOUNT": "ACCOUNT",
    "LICENSE": "LICENSE", "VEHICLE": "VEHICLE_ID", "DEVICE": "DEVICE_ID", "BIOMETRIC": "BIOMETRIC",
    "PHOTO": "PHOTO", "OTHER_ID": "ID",
}
#: Kinds the issue requires recall >= 0.98 for.
REQUIRED_KINDS = ("NAME", "DATE", "ADDRESS", "CITY", "ZIP", "PHONE", "MRN", "MRN_UNLABELLED", "SSN", "EMAIL", "URL",
                  "IP", "AGE_90_PLUS")

#: Medical phrases placed in the notes that must come out unchanged.
KEEP_PHRASES = (
    "Parkinson disease", "Graves disease", "Cushing syndrome", "Hodgkin lymphoma", "Down syndrome", "a 45-year-old man",
    "Guillain-Barré syndrome", "Crohn disease", "Hashimoto thyroiditis", "Wilson disease", "Addison disease",
    "Kawasaki disease", "Marfan syndrome", "Turner syndrome", "Bell palsy", "metformin", "lisinopril", "warfarin",
    "Lasix", "Coumadin", "in 2019", "since 2015", "120/80 mm Hg", "500 mg", "HbA1c of 7.2%", "Babinski sign",
)


@dataclass
class Note:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, kind)


def _phone(fake, rng: random.Random) -> str:
    a, b, c = fake.numerify("2##"), fake.numerify("2##"), fake.numerify("####")
    return rng.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"({a}){b}-{c}",
                       f"{a}-{b}-{c} ext. {fake.numerify('###')}"])


def _date(fake, rng: random.Random) -> str:
    d = fake.date_between(start_date="-90y", end_date="today")
    month, mon = d.strftime("%B"), d.strftime("%b")
    return rng.choice([
        f"{d.month:02d}/{d.day:02d}/{d.year}", f"{d.month}/{d.day}/{d.year % 100:02d}", f"{d.year}-{d.month:02d}-{d.day:02d}",
        f"{month} {d.day}, {d.year}", f"{mon} {d.day}", f"{d.day} {month} {d.year}", f"{d.day}-{mon}-{d.year}",
        f"{month} {d.day}th", f"{month} {d.year}", f"{d.month}-{d.day}-{d.year}",
    ])


def _slots(fake, rng: random.Random) -> dict[str, Callable[[], str]]:
    return {
        "NAME": lambda: f"{fake.first_name()} {fake.last_name()}",
        "LAST": lambda: fake.last_name(),
        "DATE": lambda: _date(fake, rng),
        "ADDRESS": lambda: f"{fake.building_number()} {fake.street_name()}"
                           + (f" {fake.secondary_address()}" if rng.random() < 0.3 else ""),
        "CITY": lambda: fake.city(),
        "STATE": lambda: rng.choice([fake.state_abbr(include_territories=False), fake.state()]),
        "ZIP": lambda: rng.choice([fake.zipcode(), fake.zipcode_plus4()]),
        "PHONE": lambda: _phone(fake, rng),
        "EMAIL": lambda: fake.email(),
        "SSN": lambda: fake.ssn(),
        "MRN": lambda: rng.choice([fake.numerify("#######"), fake.numerify("########"), fake.bothify("E#######"),
                                   fake.numerify("MR-######")]),
        "MRN_UNLABELLED": lambda: rng.choice([fake.numerify("#%######"), "#" + fake.numerify("%######"),
                                              fake.numerify("%#########")]),
        "URL": lambda: rng.choice([fake.url(), fake.uri(), f"www.{fake.domain_name()}/patients/{fake.numerify('####')}"]),
        "IP": lambda: rng.choice([fake.ipv4(), fake.ipv4_private(), fake.ipv6()]),
        "AGE_90_PLUS": lambda: str(rng.randint(90, 104)),
        "HEALTH_PLAN": lambda: fake.bothify("???#########").upper(),
        "ACCOUNT": lambda: rng.choice([fake.numerify("##########"), fake.credit_card_number(), fake.bothify("AC-########")]),
        "LICENSE": lambda: rng.choice([fake.bothify("??#######").upper(), fake.numerify("MD-######"),
                                       fake.numerify("##########")]),
        "VIN": lambda: fake.vin(),
        "PLATE": lambda: fake.license_plate(),
        "DEVICE": lambda: fake.bothify("??-####-#####").upper(),
        "BIOMETRIC": lambda: fake.bothify("FP-######"),
        "PHOTO_FILE": lambda: fake.bothify("IMG_####.jpg"),
        "PHOTO_ID": lambda: fake.bothify("PH-#####"),
        "OTHER_ID": lambda: rng.choice([fake.bothify("S##-######"), fake.bothify("ENC-########"), fake.numerify("######")]),
    }


# Each template: text with {SLOT} markers; slot -> gold kind (None: not PHI, e.g. the state).
_SLOT_KIND = {"NAME": "NAME", "LAST": "NAME", "STATE": None, "VIN": "VEHICLE", "PLATE": "VEHICLE", "PHOTO_FILE": "PHOTO",
              "PHOTO_ID": "PHOTO"}
TEMPLATES = (
    "{NAME} is a {AGE_90_PLUS}-year-old woman with Parkinson disease seen in clinic on {DATE}.",
    "Patient {NAME}, MRN {MRN}, DOB {DATE}, presented with chest pain; she takes metformin and lisinopril.",
    "Mr. {LAST} is a 45-year-old man admitted on {DATE} with Graves disease and atrial fibrillation.",
    "Home address: {ADDRESS}, {CITY}, {STATE} {ZIP}. Phone {PHONE}.",
    "She lives at {ADDRESS} in {CITY}, {STATE} {ZIP} with her daughter.",
    "Discharge summary faxed to Dr. {LAST} at fax {FAX_PHONE} on {DATE}.",
    "Contact the patient's son, {NAME}, at {PHONE} or {EMAIL} regarding Cushing syndrome follow-up.",
    "SSN {SSN} was verified at registration; Hodgkin lymphoma was diagnosed in 2019.",
    "Insurance member ID {HEALTH_PLAN}; account number {ACCOUNT} for the Down syndrome clinic visit.",
    "Prescriber DEA number {LICENSE}; warfarin was held since 2015 because of an INR of 4.1.",
    "He arrived by car, license plate {PLATE}, VIN {VIN}, after a collision on {DATE}.",
    "Pacemaker serial number {DEVICE} was interrogated; blood pressure was 120/80 mm Hg.",
    "Fingerprint ID {BIOMETRIC} is on file and a full-face photo {PHOTO_FILE} was taken at intake.",
    "Accession number {OTHER_ID} for the biopsy showing Crohn disease; HbA1c of 7.2% noted.",
    "Lab results were uploaded to {URL} from workstation {IP} by {NAME}.",
    "Records for {MRN_UNLABELLED} were reviewed with {NAME}, a {AGE_90_PLUS} yo man with Hashimoto thyroiditis.",
    "The {AGE_90_PLUS}-year-old patient {NAME} was seen on {DATE} for Guillain-Barré syndrome.",
    "Ms. {LAST} (MRN: {MRN}) called from {PHONE} about her Lasix dose of 500 mg.",
    "Referral from {NAME}, MD, {ADDRESS}, {CITY}, {STATE} {ZIP}; email {EMAIL}.",
    "Aged {AGE_90_PLUS}, she was admitted {DATE} with Wilson disease and Bell palsy.",
    "Please send the report to {EMAIL} or https://{URL_HOST}/chart; the server IP is {IP}.",
    "Social security number: {SSN}. Medicaid number {HEALTH_PLAN}. Date of birth {DATE}.",
    "Photograph {PHOTO_ID} and retina scan reference {BIOMETRIC} were stored with Kawasaki disease records.",
    "Mrs. {LAST} from {CITY}, {STATE} reports Addison disease; her phone is {PHONE}.",
    "Medical record number {MRN}; chart #{MRN_UNLABELLED_BARE} copied for {NAME} on {DATE}.",
    "Encounter ID {OTHER_ID}: Marfan syndrome screening for {NAME}, Turner syndrome excluded, Babinski sign absent.",
    "Driver's license {LICENSE} and insulin pump model {DEVICE} were documented; she takes Coumadin.",
    "Billed to card {ACCOUNT}; plan ID {HEALTH_PLAN}; patient {NAME} was seen {DATE}.",
    "Seen by Dr. {LAST} and Nurse {LAST} at {ADDRESS}, {CITY} {STATE} {ZIP}; follow up at {URL}.",
    "A {AGE_90_PLUS} year old man, {NAME}, SSN {SSN}, IP address {IP}, phone {PHONE}.",
)


def synthetic_phi_notes(n_notes: int = 300, *, seed: int = 13, sentences: int = 5) -> list[Note]:
    """`n_notes` notes of `sentences` sentences each, templates taken in a seeded shuffled cycle so every kind
    appears many times."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    slots = _slots(fake, rng)
    slots["FAX_PHONE"] = slots["PHONE"]
    slots["URL_HOST"] = lambda: fake.domain_name()
    slots["MRN_UNLABELLED_BARE"] = lambda: fake.numerify("%######")
    kinds = {**{k: k for k in KINDS}, **_SLOT_KIND, "FAX_PHONE": "FAX", "URL_HOST": "URL",
             "MRN_UNLABELLED_BARE": "MRN_UNLABELLED"}
    order: list[str] = []
    notes = []
    for _ in range(n_notes):
        note = Note(text="")
        for _ in range(sentences):
            if not order:
                order = list(TEMPLATES)
                rng.shuffle(order)
            _fill(order.pop(), note, slots, kinds)
        notes.append(note)
    return notes


def _fill(template: str, note: Note, slots: dict[str, Callable[[], str]], kinds: dict[str, str | None]) -> None:
    if note.text:
        note.text += " "
    pos = 0
    for match in re.finditer(r"\{(\w+)\}", template):
        note.text += template[pos:match.start()]
        value = slots[match.group(1)]()
        kind = kinds[match.group(1)]
        if kind is not None:
            note.spans.append((len(note.text), len(note.text) + len(value), kind))
        note.text += value
        pos = match.end()
    note.text += template[pos:]


def covered(text: str, start: int, end: int, findings: list[tuple[int, int, str, float]]) -> bool:
    """Every letter and digit of text[start:end] lies inside some finding."""
    mask = bytearray(end - start)
    for f_start, f_end, *_ in findings:
        for i in range(max(f_start, start), min(f_end, end)):
            mask[i - start] = 1
    return all(mask[i] or not text[start + i].isalnum() for i in range(end - start))


def recall_table(notes: list[Note], findings: list[list[tuple[int, int, str, float]]]) -> dict[str, dict[str, float]]:
    """kind -> {n, found, recall}; plus "_keep": how many medical phrases a finding touched (should be 0)."""
    total, found = Counter(), Counter()
    for note, spans in zip(notes, findings):
        for start, end, kind in note.spans:
            total[kind] += 1
            found[kind] += covered(note.text, start, end, spans)
    table = {k: {"n": total[k], "found": found[k], "recall": found[k] / total[k]} for k in KINDS if total[k]}
    touched = seen = 0
    for note, spans in zip(notes, findings):
        for phrase in KEEP_PHRASES:
            for m in re.finditer(re.escape(phrase), note.text):
                seen += 1
                touched += any(s < m.end() and m.start() < e for s, e, *_ in spans)
    table["_keep"] = {"n": seen, "found": touched, "recall": (touched / seen) if seen else 0.0}
    return table


def format_table(table: dict[str, dict[str, float]]) -> str:
    lines = ["| kind | entity | n | found | recall |", "|---|---|---:|---:|---:|"]
    for kind, row in table.items():
        if kind == "_keep":
            continue
        lines.append(f"| {kind} | {KINDS[kind]} | {row['n']} | {row['found']} | {row['recall']:.3f} |")
    keep = table.get("_keep")
    if keep:
        lines.append(f"| medical phrases touched (must be 0) | - | {keep['n']} | {keep['found']} | - |")
    return "\n".join(lines)
