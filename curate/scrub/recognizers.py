"""Clinical PHI recognizers presidio lacks, as regular expressions, plus the NER recognizer with the allow-list.

Each recognizer emits one of `curate.scrub.entities.ENTITIES`. Labelled identifiers ("MRN: 4829101") report only
the value, so the placeholder keeps the label readable ("MRN: <MRN>"). Presidio is imported here, so this module is
imported only by the engine builder.
"""

from __future__ import annotations

import re

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IpRecognizer,
    SpacyRecognizer,
)

from curate.scrub.allow_list import (
    first_names,
    is_allowed_place,
    is_medical_name,
    looks_like_name,
    looks_like_place,
    street_suffixes,
)

STATE_ABBR = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH OK OR "
    "PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR AS GU MP VI FM MH PW AA AE AP"
).split()
STATE_NAMES = (
    "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|"
    "Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|"
    "Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|"
    "Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|"
    "West Virginia|Wisconsin|Wyoming"
)
# A state abbreviation only counts before a ZIP or a punctuation/end: "IN", "OR", "ME" are also words.
_STATE = rf"(?:{STATE_NAMES}|(?:{'|'.join(STATE_ABBR)})(?=\s+\d{{5}}|\s*[,.;)\n]|\s*$))"
_ANY_STATE = rf"(?:{STATE_NAMES}|{'|'.join(STATE_ABBR)})\b"
_CITY = r"(?P<v>(?:[A-Z][a-z]+\s+){0,2}[A-Z][a-z]+)"
# Top-level domains seen in clinical and patient-facing links (presidio's URL pattern cuts ".biz" to ".bi").
_TLD = r"(?:com|org|net|edu|gov|mil|biz|info|io|us|co|uk|ca|health|care|med|app|ai|me|tv)"

MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON_NUM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:1[89]\d{2}|20\d{2})"
_SEP = r"(?P<sep>[/\-.])"
_SEP2 = r"(?P=sep)"  # the same separator twice: "3-3.65 mm" is not a date

# A value after a label: letters, digits and dashes with at least three digits, 4 to 26 characters ("pulse id
# 110/min" and "ref: 19-60" are not identifiers).
_VALUE = r"(?P<v>(?=(?:[A-Za-z\-]*\d){3})[A-Za-z0-9][A-Za-z0-9\-]{2,24}[A-Za-z0-9])(?![A-Za-z0-9/])"
# Between a label and its value: "number", "no.", "#", "ID", "is", ":" in any common order.
_GAP = r"(?:\s*(?:number|numbers|no\.?|num\.?|nr\.?|id|ID|code)(?![A-Za-z]))?\s*(?:is\s+|was\s+|of\s+)?[:#=\-]?\s*#?\s*"

_PHONE_CORE = r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?"
_NAME_WORD = r"[A-Z][a-zA-Z'’\-]+"


def _labelled(labels: str) -> str:
    return rf"(?<![A-Za-z])(?i:{labels}){_GAP}{_VALUE}"


class RegexRecognizer(LocalRecognizer):
    """One entity type from a few regular expressions; a named group `v` marks the part to report."""

    def __init__(self, entity: str, patterns: list[tuple[str, float]], name: str) -> None:
        self.entity = entity
        self.compiled = [(re.compile(p, re.MULTILINE), score) for p, score in patterns]
        super().__init__(supported_entities=[entity], name=name, supported_language="en")

    def load(self) -> None:  # nothing to load: patterns compile in __init__
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        if entities and self.entity not in entities:
            return []
        results = []
        for rx, score in self.compiled:
            for match in rx.finditer(text):
                start, end = match.span("v") if "v" in rx.groupindex else match.span()
                if end > start:
                    results.append(RecognizerResult(self.entity, start, end, score))
        return results


def clinical_patterns() -> dict[str, list[tuple[str, float]]]:
    """entity -> [(regex, score)]: the clinical recognizers presidio lacks."""
    suffixes = "|".join(sorted(map(re.escape, street_suffixes()), key=len, reverse=True))
    street_word = r"(?:[A-Z][A-Za-z'’.\-]*|\d+(?:st|nd|rd|th))"
    unit = r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Room|Rm\.?|Floor|Fl\.?|Bldg\.?|#)\s*#?\s*[A-Za-z0-9\-]+)?"
    return {
        "DATE": [
            (rf"\b{_MON_NUM}{_SEP}{_DAY}{_SEP2}(?:{_YEAR}|\d{{2}})(?![\d/\-])", 0.9),  # 03/14/1952, 3-14-52
            (rf"\b{_DAY}{_SEP}{_MON_NUM}{_SEP2}{_YEAR}(?![\d/\-])", 0.9),  # 14.03.1952
            (rf"\b{_YEAR}{_SEP}{_MON_NUM}{_SEP2}{_DAY}(?![\d/\-])", 0.9),  # 1952-03-14
            (rf"\b{MONTH}\s+{_DAY}(?:st|nd|rd|th)?(?:,?\s+{_YEAR})?(?!\d)", 0.85),  # March 14(, 1952)
            (rf"\b{_DAY}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH},?(?:\s+{_YEAR})?(?!\d)", 0.85),  # 14(th) (of) March (1952)
            (rf"\b{_DAY}-{MONTH}-(?:{_YEAR}|\d{{2}})\b", 0.9),  # 14-Mar-1952
            (rf"\b{MONTH},?\s+{_YEAR}\b", 0.8),  # March 1952: the month is a date element
            (rf"(?i:\b(?:on|since|dated|DOB:?|born|admitted|discharged|seen|until)\s+)(?P<v>{_MON_NUM}/{_DAY})(?![\d/])", 0.7),
        ],
        "AGE": [
            (r"\b(?P<v>9\d|1[0-4]\d)(?:\s|-)*(?i:years?|yrs?|y/o|y\.o\.|yo)(?![a-z])", 0.9),  # 92-year-old, 95 yo
            (r"(?i:\bage[ds]?(?:\s+of)?\s*:?\s*)(?P<v>9\d|1[0-4]\d)\b(?!\s*(?:%|percent))", 0.9),  # aged 91, age: 97
        ],
        "ZIP": [
            (rf"(?<=[\s,]){_STATE}\.?,?\s+(?P<v>\d{{5}}(?:-\d{{4}})?)\b", 0.9),  # MA 02115 / Texas 75001-1234
            (r"(?i:\b(?:zip|zip\s*code|postal\s*code|zipcode)\s*[:#]?\s*)(?P<v>\d{5}(?:-\d{4})?)\b", 0.9),
            (r"(?<![\d\-])\d{5}-\d{4}(?![\d\-])", 0.6),  # ZIP+4 anywhere
        ],
        "ADDRESS": [
            (rf"\b\d{{1,6}}[A-Z]?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?(?:{street_word}\s+){{1,4}}"
             rf"(?:{suffixes})\.?(?![A-Za-z]){unit}", 0.85),
            (r"\b(?i:P\.?\s?O\.?\s+Box)\s+\d+\b", 0.9),
        ],
        "LOCATION": [  # the city of "City, ST", "City, Texas", "City ST 02115" (NER finds most others)
            (rf"\b{_CITY},\s+{_ANY_STATE}", 0.75),
            (rf"\b{_CITY}\s+{_ANY_STATE}\s+\d{{5}}", 0.75),
        ],
        "URL": [
            (r"(?i)\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]", 0.8),
            (rf"(?i)(?<![@\w.\-])(?:[a-z0-9\-]+\.)+{_TLD}(?:/[^\s<>\"'()]*[^\s<>\"'().,;:!?])?(?![\w@])", 0.6),
        ],
        "PHONE": [(rf"(?<![\w+])(?P<v>{_PHONE_CORE})(?!\d)", 0.75)],
        "FAX": [(rf"(?i:\b(?:fax|facsimile)(?:\s*(?:number|no\.?|#))?\s*(?:is\s+)?[:#]?\s*)(?P<v>{_PHONE_CORE})(?!\d)", 0.95)],
        "SSN": [
            (r"(?<![\w\-])(?P<v>\d{3}-\d{2}-\d{4})(?![\w\-])", 0.85),
            (r"(?i:\b(?:SSN|SS#|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is\s+)?[:#]?\s*)(?P<v>\d{3}[\s\-]?\d{2}[\s\-]?\d{4})\b",
             0.95),
        ],
        "MRN": [
            (_labelled(r"MRN|MR\s?#|MR\s+no|medical\s+record|med\.?\s+rec(?:ord)?|chart|hospital\s+(?:number|no\.?|#|id)"
                       r"|patient\s+(?:id|number|no\.?|#)|unit\s+number|record"), 0.95),
            # Unlabelled: "#4829101", or a bare 7-10 digit number that is not a quantity with a unit.
            (r"(?<![\w.,/$])(?P<v>#\s?\d{5,10}|\d{7,10})(?![\w,%]|\.\d|/|\s*(?i:mg|mcg|µg|μg|g|kg|ml|l|dl|units?|iu|u|"
             r"meq|mmol|cells|copies|per)\b)", 0.6),
        ],
        "HEALTH_PLAN": [
            (_labelled(r"health\s*plan(?:\s+beneficiary)?|beneficiary|member(?:ship)?|subscriber|policy|insurance"
                       r"(?:\s+(?:policy|member|card))?|insurer|medicaid|medicare|MBI|plan"), 0.9),
        ],
        "ACCOUNT": [
            (_labelled(r"(?:bank\s+|billing\s+|hospital\s+|patient\s+)?account|acct\.?|billing|invoice|IBAN|routing"
                       r"|(?:credit|debit)\s+card|card"), 0.9),
        ],
        "LICENSE": [
            (_labelled(r"(?:driver['’]?s?\s+|medical\s+|nursing\s+|professional\s+)?licen[cs]e(?!\s+plate)|DEA|NPI"
                       r"|certificate|cert\.?|certification|registration|permit|passport|board\s+certification"), 0.9),
            (r"(?<![A-Za-z0-9])(?P<v>[A-Z]{2}\d{7})(?![A-Za-z0-9])", 0.5),  # DEA number shape
        ],
        "VEHICLE_ID": [
            (_labelled(r"VIN|vehicle\s+identification|vehicle(?:\s+(?:id|number|#))?|(?:licen[cs]e\s+)?plate|tag"), 0.9),
            (r"(?i:\b(?:licen[cs]e\s+)?(?:plate|tag)(?:\s+(?:number|no\.?|#))?\s*(?:is\s+)?[:#]?\s*)"
             r"(?P<v>(?=[A-Z0-9 \-]*\d)[A-Z0-9]{1,7}(?:[\s\-][A-Z0-9]{1,7})?)(?![A-Za-z0-9])", 0.9),  # plate "LDW 012"
            # A VIN: 17 characters without I, O, Q, mixing letters and digits.
            (r"(?<![A-Za-z0-9])(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17}(?![A-Za-z0-9])", 0.8),
        ],
        "DEVICE_ID": [
            (_labelled(r"serial|S/N|SN|device(?:\s+(?:id|identifier|serial))?|UDI|implant(?:\s+(?:id|serial))?|pacemaker"
                       r"|defibrillator|ICD\s+serial|pump|model|lot|catalog(?:ue)?|IMEI|MAC\s+address"), 0.9),
            (r"\(01\)\d{14}(?:\(\d{2}\)[A-Za-z0-9]+)*", 0.9),  # GS1 UDI
        ],
        "BIOMETRIC": [
            (_labelled(r"finger\s*print|thumb\s*print|palm\s*print|voice\s*print|retina(?:l)?\s+scan|iris\s+scan|face\s+scan"
                       r"|facial\s+(?:geometry|scan|template)|biometric(?:\s+(?:id|template|record))?|DNA\s+profile"), 0.9),
        ],
        "PHOTO": [
            (_labelled(r"(?:full[\s\-]face\s+)?photo(?:graph)?|picture|image|headshot|mugshot|selfie"), 0.85),
            (r"(?i)\b[\w\-]*\d[\w\-]*\.(?:jpe?g|png|gif|bmp|tiff?|heic|webp)\b", 0.85),  # IMG_2231.jpg
        ],
        "ID": [
            (_labelled(r"identifier|case|accession|specimen|encounter|visit|order|requisition|claim|reference|ref\.?"
                       r"|ticket|employee|badge|study\s+id|subject|enrollment|enrolment|confirmation"), 0.85),
            (rf"\bID{_GAP}{_VALUE}", 0.85),  # upper-case only: "pulse id 110/min" is a typo, not an identifier
            (r"(?<![A-Za-z0-9\-])(?P<v>[A-Z]{1,4}-?(?:\d{6,12}|\d{3,}(?:-\d{2,})+))(?![A-Za-z0-9\-])", 0.6),  # AB-123456
        ],
        "PERSON": [  # titled and labelled names; NER finds the rest
            (rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sister|Nurse)\.?\s+"
             rf"(?P<v>{_NAME_WORD}(?:\s+[A-Z]\.)?(?:\s+{_NAME_WORD}){{0,2}})", 0.9),
            (rf"(?i:\b(?:patient(?:['’]s)?\s+name|name|patient|pt|signed\s+by|seen\s+by|attending|physician|provider|nurse"
             rf"|guardian|mother|father|spouse|wife|husband|son|daughter|contact|next\s+of\s+kin)\s*:\s*)"
             rf"(?P<v>{_NAME_WORD}(?:\s+[A-Z]\.)?(?:\s+{_NAME_WORD}){{1,2}})", 0.9),
        ],
    }


class NameListRecognizer(LocalRecognizer):
    """A listed first name followed by one or two capitalised words ("April Barnes", "Tonya J. Pierce"): the names
    the small NER model misses. Medical phrases ("Addison Disease") are skipped by the same allow-list rules."""

    # A lookahead, so that "Patient Amanda Jones" is also tried from "Amanda".
    PATTERN = re.compile(r"\b(?=(?P<span>(?P<first>[A-Z][a-z]{2,14})(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z][a-zA-Z'’\-]*){1,2}))")

    def __init__(self) -> None:
        self.names = first_names()
        super().__init__(supported_entities=["PERSON"], name="NameListRecognizer", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        if entities and "PERSON" not in entities:
            return []
        results = []
        for match in self.PATTERN.finditer(text):
            if match.group("first") not in self.names:
                continue
            start, end = match.span("span")
            span, after = match.group("span"), text[end:end + 40]
            before = text[max(0, start - 40):start]
            if is_medical_name(span, after) or is_allowed_place(span, after) or not looks_like_name(span, text, before):
                continue
            results.append(RecognizerResult("PERSON", start, end, 0.7))
        return results


class ClinicalNerRecognizer(SpacyRecognizer):
    """spaCy NER for names and places, minus medical language: eponyms, drugs and terms on the allow-list, places
    Safe Harbor allows (states, countries, regions), names with no word on the Census name lists, and one-word places
    without a place cue (the small model tags capitalised medical words as both)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON", "LOCATION"], name="ClinicalNerRecognizer")

    def analyze(self, text: str, entities, nlp_artifacts=None):
        kept = []
        for result in super().analyze(text, entities, nlp_artifacts):
            span, after = text[result.start:result.end], text[result.end:result.end + 40]
            before = text[max(0, result.start - 40):result.start]
            if not any(c.isalpha() for c in span) or _is_acronym(span):
                continue
            if result.entity_type == "PERSON" and (is_medical_name(span, after) or not looks_like_name(span, text, before)):
                continue
            if result.entity_type == "LOCATION" and (is_allowed_place(span, after) or not looks_like_place(span, before)):
                continue
            kept.append(result)
        return kept


def _is_acronym(span: str) -> bool:
    # "ECG", "HIV", "ST": NER sometimes tags short all-caps tokens; names and cities are not written so.
    letters = [c for c in span if c.isalpha()]
    return len(letters) <= 5 and all(c.isupper() for c in letters)


def build_recognizers(entities: list[str], *, with_ner: bool) -> list:
    """The recognizers for the wanted entity types: presidio's own where they are good (email, IP, card numbers),
    ours elsewhere. Presidio's URL recognizer is left out: it cuts ".biz" links short and reads "H.influenza" and
    "fracture.Reason" as links; ours needs a scheme, "www." or a known top-level domain."""
    recognizers: list = []
    for entity, patterns in clinical_patterns().items():
        if entity in entities:
            recognizers.append(RegexRecognizer(entity, patterns, name=f"Clinical{entity.title().replace('_', '')}"))
    if "EMAIL" in entities:
        recognizers.append(EmailRecognizer(supported_entity="EMAIL"))
    if "IP_ADDRESS" in entities:
        recognizers.append(IpRecognizer(supported_entity="IP_ADDRESS"))
    if "ACCOUNT" in entities:
        recognizers.append(CreditCardRecognizer(supported_entity="ACCOUNT"))
    if "PERSON" in entities:
        recognizers.append(NameListRecognizer())
    if with_ner and ({"PERSON", "LOCATION"} & set(entities)):
        recognizers.append(ClinicalNerRecognizer())
    return recognizers
