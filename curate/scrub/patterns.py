"""Every pattern-shaped identifier in one regular expression, scanned once per text.

Each pattern is one alternative of a single compiled expression inside a look-ahead, so one `finditer` pass finds
dates, phones, ids, addresses, emails, ages over 89... at every position, overlaps included (the ZIP of "Boston, MA
02115" and the city before it). A named group `v` marks the part to report, so "MRN: 4829101" becomes "MRN: <MRN>".
Shapes that are ambiguous in clinical text (a bare "7/22" is a date, "12/10/40%" a ventilator setting, "1/2 ns" a
fluid) pass a check on their surroundings.

Case: keywords and month names match in any case (ALL-CAPS and lower-case notes are common); the few patterns
that need capitals say so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from curate.scrub.allow_list import street_suffixes

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
_TLD = r"(?:com|org|net|edu|gov|mil|biz|info|io|us|uk|ca|health)"

MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_ORD = r"(?:st|nd|rd|th)"
_MON_NUM = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:1[89]\d{2}|20\d{2})"
_SEP = r"(?P<sep>[/\-.])"
_SEP2 = r"(?P=sep)"  # the same separator twice: "3-3.65 mm" is not a date

# A value after a label: letters, digits and dashes with at least three digits, 4 to 26 characters.
_VALUE = r"(?P<v>(?=(?:[A-Za-z\-]*\d){3})[A-Za-z0-9][A-Za-z0-9\-]{2,24}[A-Za-z0-9])(?![A-Za-z0-9/])"
_GAP = r"(?:\s*(?:number|numbers|no\.?|num\.?|nr\.?|id|ID|code)(?![A-Za-z]))?\s*(?:is\s+|was\s+|of\s+)?[:#=\-]?\s*#?\s*"

_PHONE_CORE = r"(?:\+?1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?"
# Clinical phone forms: "201/324/1423", "212- 476- 8356", "(240444-1243)".
_PHONE_CLINICAL = r"\(?\d{3}\)?(?:\s?[/\-.]\s?|\s)\d{3}\s?[/\-.]\s?\d{4}|\(\d{6}-\d{4}\)"
_NAME_WORD = r"[A-Z][a-zA-Z'’\-]+"


def _labelled(labels: str) -> str:
    return rf"(?<![A-Za-z])(?i:{labels}){_GAP}{_VALUE}"


@dataclass(frozen=True)
class Pattern:
    entity: str
    regex: str
    #: (text, start, end) of the reported span -> keep it? None: always.
    check: Callable[[str, int, int], bool] | None = None
    #: "word": starts at one of `keys` (lower-case words); "digit": at a digit or the letters/sign before one;
    #: "rare": looked for in the whole text when one of `keys` (substrings) is in it.
    lead: str = "digit"
    keys: str = ""


# ---------------------------------------------------------------- checks on the surroundings

_VENT_OR_VITAL_BEFORE = re.compile(
    r"(?i:(?:\b(?:ps|psv|cpap|bipap|peep|ac|a/c|simv|imv|prvc|pc|cmv|vent|settings|rate|bp|b/p|sbp|cvp|pap|pas|"
    r"pa|map|hr|rr|pcwp|wedge|abg|vbg|gas|strength|motor|grade|gcs|murmur|sem|power|grip|pulses?|ratio|ie|i:e|"
    r"tv|ips|eps|ipap|epap|psi|fio2|o2|dose|doses|tabs?|x|of|out|nc|ftm|fm|vm|acuity|eye|strength|extremity|"
    r"extremities|side|score|scale)\b(?:\s+(?:is|was|are|were|of|initially|now|remains))*|=)\s*(?:of\s+|at\s+|on\s+)?$)")
_UNIT_AFTER = re.compile(
    r"(?i:\s*(?:%|\+|-\s*\d|x\s*\d|mm|cm|ml|cc|mg|mcg|units?|u\b|meq|l\b|lpm|ns\b|nss|normal|strength|str\b|"
    r"tab|tabs|amp|amps|pulses?|power|murmur|sem|grip|ps\b|peep|psv|cpap|fio2|rate|ratio|liters?|lnc|l/|nc\b|"
    r"bolus|boluses|and\s+\d|or\s+\d|times|doses?|of\s+(?:the|a|an|normal|\d)|\)?\s*(?:incisional\s+|chest\s+|back\s+)?"
    r"(?:pain|cp|discomfort|ha\b|headache)|(?:holo|pan|early\s+|late\s+|mid\s*)?(?:systolic|diastolic)|murmur|"
    r"patients|subjects|cases|of\s+(?:total|all|the)|on\s+the\s+(?:left|right)|in\s+the\s+(?:left|right)|rd\b|th\b|"
    r"(?:systolic\s+)?murmur|hours?|hrs?|days?|weeks?|wks?|months?|mos?|years?|yrs?|minutes?|mins?|times)|/)")
#: A time right before a bare "10/15" ("at 2300 10/15", "(7pm 10/15)") makes it a date; so does a pain score's "/10"
#: after a pain word make it none ("pain 7/10").
_TIME_BEFORE = re.compile(r"(?i:(?:\b(?:[01]?\d|2[0-3])[0-5]\d|\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a|p))\s*(?:on\s+)?\(?$)")
_SCORE_BEFORE = re.compile(r"(?i:\b(?:strength|power|motor|grip|reflex(?:es)?|murmur|gcs|glasgow)\b)")
_PAIN_BEFORE = re.compile(r"(?i:\b(?:pain|cp|discomfort|rates?|rated|c/o|score|level)\s*(?:of|at|is|was|=|:)?\s*\(?$)")
_FRACTIONS = frozenset({"1/2", "1/3", "1/4", "2/3", "3/4", "1/8", "1/5", "2/4"})
_DATE_CUE_BEFORE = re.compile(
    r"(?i:\b(?:on|since|from|until|till|by|dated?|date|dob|born|admitted|adm|admit|discharged|d/c|seen|last|lbm|"
    r"started|done|s/p|status\s+post|echo|cath|cabg|surgery|due|of|thru|through|to|post|pod|hd|day)\s*$)")


_OPERATOR_BEFORE = re.compile(r"[=^*]\s*\(?$")
_OPERATOR_AFTER = re.compile(r"\)?\s*[=^*]")


def _bare_month_day(text: str, start: int, end: int) -> bool:
    """A bare "7/22" or "10-15" is a date unless its surroundings make it a setting, a ratio or a fraction."""
    before, after = text[max(0, start - 24):start], text[end:end + 24]
    if _PAIN_BEFORE.search(before) or _SCORE_BEFORE.search(text[max(0, start - 80):start]) and \
            text[start:end].rsplit("/", 1)[-1] in ("4", "5", "6", "15"):
        return False  # muscle strength 4/5, a 3/6 murmur, GCS 6/15
    timed = bool(_TIME_BEFORE.search(before))
    if before.endswith(("/", ".", "-", "+", "x", "X", "*")) and not before.endswith("- "):
        return False
    if after.startswith(("/", "%", ".", "'s", "’s", "'S")) and not re.match(r"\.(?:\s|$)", after):
        return False
    if after[:1].isdigit():
        return False
    if _OPERATOR_BEFORE.search(before) or _OPERATOR_AFTER.match(after):
        return False  # arithmetic: "200*(5/8)^4", "x = 5/8"
    if _VENT_OR_VITAL_BEFORE.search(before):
        return False
    if _UNIT_AFTER.match(after):
        return False
    value = text[start:end]
    if value in _FRACTIONS and not _DATE_CUE_BEFORE.search(before):
        return False
    month, _, day = value.partition("/")
    if {month, day} <= {"5", "10", "15", "20"} and not timed and not _DATE_CUE_BEFORE.search(before):
        return False  # pressure support / PEEP: "5/5", "10/5"
    return True


def _full_date(text: str, start: int, end: int) -> bool:
    before, after = text[max(0, start - 3):start], text[end:end + 3]
    return not (before.endswith(("/", ".")) or after.startswith(("/", "%")) or after[:1].isdigit())


def _ordinal_day(text: str, start: int, end: int) -> bool:
    """"the 22nd", "on the 3rd": a day of the month, not "the 3rd brother", "2nd line" or "the 2nd-3rd space"."""
    after = text[end:end + 20]
    if re.match(r"\s*[\-–—]\s*\d", after):
        return False
    return not re.match(r"\s*(?:[a-z]|[A-Z]{2,}\s)", after) or bool(re.match(rf"(?i:\s*(?:of\s+)?{MONTH})", after))


def _not_modal_may(text: str, start: int, end: int) -> bool:
    """"3rd May 2019" is a date; "apical 1/3rd may remain" is not: a lower-case "may" ends no date."""
    value = text[start:end]
    return not (value.rstrip(". ").endswith("may") and not re.search(r"\d\s*$", value))


#: An exam-session tag of question-bank prose ("...is:September 2012", "(AIIMS May 2019)", ":March 2009, September
#: 2010"): a month and year right after a colon, or after "(" and the exam's acronym, alone or in a chain of them.
#: It dates an exam, not a person; a date keyword before the colon ("Admission Date:March 2013") keeps it a date.
_EXAM_TAG_BEFORE = re.compile(
    rf"(?:(?<![Dd]ate)(?<![Dd][Oo][Bb])(?<![Aa]dmitted)(?<![Dd]ischarged)\s?:|\([A-Z]{{2,8}}\s)"
    rf"(?:(?:(?i:{MONTH})\s*)?{_YEAR},?\s*)*$")
_EXAM_TAG_AFTER = re.compile(r"\s*(?:$|[,)]|\((?:[a-e],?\s*)+\))")


def _not_exam_tag(text: str, start: int, end: int) -> bool:
    return not (_EXAM_TAG_BEFORE.search(text[max(0, start - 60):start]) and _EXAM_TAG_AFTER.match(text[end:end + 12]))


_REFERENCE_LABEL = re.compile(r"(?i:\bref(?:erence)?\.?(?:\s+(?:range|interval|values?))?\s*[:=]?\s*)$")


def _not_reference_range(text: str, start: int, end: int) -> bool:
    """"Ammonia 100 µg/dL (ref: 19-60 µg/dL)": a reference range (low-high), not a reference number."""
    low, dash, high = text[start:end].partition("-")
    is_range = dash and low.isdigit() and high.isdigit() and len(low) <= 4 and int(low) < int(high)
    return not (is_range and _REFERENCE_LABEL.search(text[max(0, start - 30):start]))


def _apostrophe_year(text: str, start: int, end: int) -> bool:
    after = text[end:end + 3]
    return not re.match(r"['’]?[sS]\b", after)


def _ip_cue(text: str, start: int, end: int) -> bool:
    """A dotted quad is an IP address after a cue ("IP", "workstation", "server"), or with a 3-digit part: lab
    values are written "7.45.34.7" too."""
    before = text[max(0, start - 30):start].lower()
    return bool(re.search(r"\b(?:ip|address|host|server|workstation|computer|device|router|from|logged)\b", before)) \
        or bool(re.search(r"\d{3}", text[start:end]))


def _luhn(text: str, start: int, end: int) -> bool:
    digits = [int(c) for c in text[start:end] if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return 13 <= len(digits) <= 19 and total % 10 == 0


# ---------------------------------------------------------------- the patterns


def patterns() -> list[Pattern]:
    """All patterns. Word-led ones name the words that can start them (`keys`); the others start at a digit or at
    the letters right before one ("AB-123456"), or are rare shapes looked for only when their mark is in the text.
    At one position the first alternative that matches is kept, so the more specific come first."""
    suffixes = "|".join(sorted(map(re.escape, street_suffixes()), key=len, reverse=True))
    street_word = r"(?:[A-Z][A-Za-z'’\-]*[A-Za-z]|[A-Z]|\d+(?:st|nd|rd|th))"
    unit = r"(?:,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Room|Rm\.?|Floor|Fl\.?|Bldg\.?|#)\s*#?\s*[A-Za-z0-9\-]+)?"
    months = "jan january feb february mar march apr april may jun june jul july aug august sep sept september oct " \
             "october nov november dec december"
    w, d, r = "word", "digit", "rare"
    p = Pattern
    return [
        # ---- labelled identifiers: their label says what they are
        p("FAX", rf"(?i:\b(?:fax|facsimile)(?:\s*(?:number|no\.?|#))?\s*(?:is\s+)?[:#]?\s*)(?P<v>{_PHONE_CORE})(?!\d)",
          lead=w, keys="fax facsimile"),
        p("SSN", r"(?i:\b(?:SSN|SS#|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is\s+)?[:#]?\s*)"
                 r"(?P<v>\d{3}[\s\-]?\d{2}[\s\-]?\d{4})\b", lead=w, keys="ssn ss social"),
        p("MRN", _labelled(r"MRN|MR\s?#|MR\s+no|medical\s+record|med\.?\s+rec(?:ord)?|chart|hospital\s+(?:number|no\.?"
                           r"|#|id)|patient\s+(?:id|number|no\.?|#)|unit\s+number|record"),
          lead=w, keys="mrn mr medical med chart hospital patient unit record"),
        p("HEALTH_PLAN", _labelled(r"health\s*plan(?:\s+beneficiary)?|beneficiary|member(?:ship)?|subscriber|policy"
                                   r"|insurance(?:\s+(?:policy|member|card))?|insurer|medicaid|medicare|MBI|plan"),
          lead=w, keys="health healthplan beneficiary member membership subscriber policy insurance insurer medicaid "
                       "medicare mbi plan"),
        p("ACCOUNT", _labelled(r"(?:bank\s+|billing\s+|hospital\s+|patient\s+)?account|acct\.?|billing|invoice|IBAN"
                               r"|routing|(?:credit|debit)\s+card|card"),
          lead=w, keys="bank billing hospital patient account acct invoice iban routing credit debit card"),
        p("LICENSE", _labelled(r"(?:driver['’]?s?\s+|medical\s+|nursing\s+|professional\s+)?licen[cs]e(?!\s+plate)|DEA"
                               r"|NPI|certificate|cert\.?|certification|registration|permit|passport"
                               r"|board\s+certification"),
          lead=w, keys="driver driver's drivers medical nursing professional license licence dea npi certificate "
                       "cert certification registration permit passport board"),
        p("VEHICLE_ID", _labelled(r"VIN|vehicle\s+identification|vehicle(?:\s+(?:id|number|#))?|(?:licen[cs]e\s+)?"
                                  r"plate(?![a-z])|tag(?![a-z])"), lead=w, keys="vin vehicle license licence plate tag"),
        p("VEHICLE_ID", r"(?i:\b(?:licen[cs]e\s+)?(?:plate|tag)(?![a-z])(?:\s+(?:number|no\.?|#))?\s*(?:is\s+)?[:#]?\s*)"
                        r"(?P<v>(?=[A-Z0-9 \-]*\d)[A-Z0-9]{1,7}(?:[\s\-][A-Z0-9]{1,7})?)(?![A-Za-z0-9])",
          lead=w, keys="license licence plate tag"),
        p("DEVICE_ID", _labelled(r"serial|S/N|SN|device(?:\s+(?:id|identifier|serial))?|UDI|implant(?:\s+(?:id|serial))?"
                                 r"|pacemaker|defibrillator|ICD\s+serial|pump|model|lot|catalog(?:ue)?|IMEI"
                                 r"|MAC\s+address"),
          lead=w, keys="serial s sn device udi implant pacemaker defibrillator icd pump model lot catalog catalogue "
                       "imei mac"),
        p("BIOMETRIC", _labelled(r"finger\s*print|thumb\s*print|palm\s*print|voice\s*print|retina(?:l)?\s+scan"
                                 r"|iris\s+scan|face\s+scan|facial\s+(?:geometry|scan|template)"
                                 r"|biometric(?:\s+(?:id|template|record))?|DNA\s+profile"),
          lead=w, keys="finger fingerprint thumb thumbprint palm palmprint voice voiceprint retina retinal iris face "
                       "facial biometric dna"),
        p("PHOTO", _labelled(r"(?:full[\s\-]face\s+)?photo(?:graph)?|picture|image|headshot|mugshot|selfie"),
          lead=w, keys="full photo photograph picture image headshot mugshot selfie"),
        p("ID", _labelled(r"identifier|case|accession|specimen|encounter|visit|order|requisition|claim|reference|ref\.?"
                          r"|ticket|employee|badge|study\s+id|subject|enrollment|enrolment|confirmation"),
          _not_reference_range, lead=w,
          keys="identifier case accession specimen encounter visit order requisition claim reference ref "
               "ticket employee badge study subject enrollment enrolment confirmation"),
        p("ID", rf"\bID{_GAP}{_VALUE}", lead=w, keys="id"),  # upper-case only: "pulse id 110/min" is a typo
        p("PHONE", r"(?i:\b(?:pager|beeper|beep|pgr|page|ext|extension|cell|tel|phone|telephone|ph|call\s+back|"
                   r"callback)\s*(?:number|no\.?|#)?\s*(?:is\s+)?[:#=\-]?\s*#?\s*)(?P<v>\d{4,7}|\d{3}[\s\-.]\d{4})(?!\d)",
          lead=w, keys="pager beeper beep pgr page ext extension cell tel phone telephone ph call callback"),
        p("ZIP", rf"(?<=[\s,]){_STATE}\.?,?\s+(?P<v>\d{{5}}(?:-\d{{4}})?)\b",
          lead=w, keys=" ".join(STATE_ABBR).lower() + " " + STATE_NAMES.replace("|", " ").lower()),
        p("ZIP", r"(?i:\b(?:zip|zip\s*code|postal\s*code|zipcode)\s*[:#]?\s*)(?P<v>\d{5}(?:-\d{4})?)\b",
          lead=w, keys="zip postal zipcode"),
        p("AGE", r"(?i:\bage[ds]?(?:\s+of)?\s*:?\s*)(?P<v>9\d|1[0-4]\d)\b(?!\s*(?:%|percent))", lead=w, keys="age aged ages"),
        p("ADDRESS", r"\b(?i:P\.?\s?O\.?\s+Box)\s+\d+\b", lead=w, keys="p po"),
        p("DATE", rf"(?i:\b{MONTH}\s*{_DAY}{_ORD}?(?:,?\s*(?:{_YEAR}|['’]?\d{{2}}(?![\d:])))?)(?![\d:])",
          _not_exam_tag, lead=w, keys=months),
        p("DATE", rf"(?i:\b(?!may\b){MONTH},?\s+(?:{_YEAR}|['’]\d{{2}})\b)", _not_exam_tag, lead=w,
          keys=months),  # March 1952
        p("DATE", rf"(?i:\b(?:january|february|april|june|july|august|september|october|november|december|"
                  rf"sept|oct|nov)\b)(?=\s*(?:[,.;)]|\s(?:the\s+)?{_DAY}{_ORD}?\b))", lead=w, keys=months),
        p("DATE", rf"(?i:\b(?:the|on|since|until|by)\s+)(?P<v>{_DAY}{_ORD})\b", _ordinal_day, lead=w,
          keys="the on since until by"),
        # ---- shapes that start at a digit (or the letters or sign right before one)
        p("SSN", r"(?<![\w\-])(?P<v>\d{3}-\d{2}-\d{4})(?![\w\-])", lead=d),
        p("ACCOUNT", r"(?<![\d\-])(?:\d{4}[ \-]?){3}\d{1,7}(?![\d\-])", _luhn, lead=d),
        p("IP_ADDRESS", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                        r"(?!\d|\.\d)", _ip_cue, lead=d),
        p("PHONE", rf"(?<![\w+/.])(?P<v>{_PHONE_CORE})(?!\d)", lead=d),
        p("PHONE", rf"(?<![\w+/.])(?P<v>{_PHONE_CLINICAL})(?![\d/])", lead=d),
        p("ZIP", r"(?<![\d\-])\d{5}-\d{4}(?![\d\-])", lead=d),
        p("ZIP", r"(?<![\d\-.])(?P<v>\d{5})(?![\d\-])", _after_city, lead=d),  # "Worcester, 01608"
        p("ADDRESS", rf"(?<![\d.,/])\b\d{{1,6}}[A-Z]?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?"
                     rf"(?:{street_word}\s+){{1,4}}(?:{suffixes})\.?(?![A-Za-z]){unit}", lead=d),
        p("DATE", rf"(?<![\d/.\-])(?P<v>{_MON_NUM}{_SEP}{_DAY}{_SEP2}(?:{_YEAR}|\d{{2}}))(?![\d/\-%]|\.\d)", _full_date,
          lead=d),
        p("DATE", rf"(?<![\d/.\-])(?P<v>{_DAY}{_SEP}{_MON_NUM}{_SEP2}{_YEAR})(?![\d/\-])", _full_date, lead=d),
        p("DATE", rf"(?<![\d/.\-])(?P<v>{_YEAR}{_SEP}{_MON_NUM}{_SEP2}{_DAY})(?![\d/\-])", _full_date, lead=d),
        p("DATE", rf"(?i:\b{_DAY}{_ORD}?\s*(?:of\s+)?{MONTH}(?:,?\s*(?:{_YEAR}|['’]?\d{{2}}(?![\d:])))?)(?![\d:])",
          _not_modal_may, lead=d),
        p("DATE", rf"(?i:\b{_DAY}-{MONTH}-(?:{_YEAR}|\d{{2}}))\b", lead=d),
        p("DATE", rf"(?<![\w/.\-])(?P<v>{_MON_NUM}/(?:{_YEAR}|\d{{2}}))(?![\d/])",  # 8/87, 12/93: month/year
          lambda t, s, e: _bare_month_day(t, s, e) and int(t[s:e].split("/")[1]) > 31, lead=d),
        p("DATE", rf"(?<![\d/.\-\w])(?P<v>{_MON_NUM}/{_DAY})(?![\d\w])", _bare_month_day, lead=d),
        p("DATE", rf"(?<![\d/.\-\w])(?P<v>{_MON_NUM}-{_DAY})(?![\d\w])",  # 7-8: a range unless a date cue precedes
          lambda t, s, e: _bare_month_day(t, s, e) and bool(_DATE_CUE_BEFORE.search(t[max(0, s - 24):s])), lead=d),
        p("DATE", r"(?<![\w'’])(?P<v>['’]\d{2})(?![\w'’])", _apostrophe_year, lead=d),  # '92: with its apostrophe
        p("DATE", r"(?<![\w'’/.])(?P<v>\d{2}['’])(?![\w'’])", _apostrophe_year, lead=d),  # 74'
        p("AGE", r"\b(?P<v>9\d|1[0-4]\d)(?:\s|-)*(?i:years?|yrs?|y/o|y\.o\.?|yo|y|yr-old|year-old)(?![a-z])", lead=d),
        p("AGE", r"(?P<v>9\d|1[0-4]\d)(?=\s*(?i:s/p|m\b|f\b|male|female|man|woman|gentleman|gent|lady|white|black|"
                 r"caucasian|african|hispanic|asian|w/|with|who|admitted|presents|presented)\b)", _starts_text, lead=d),
        p("MRN", r"(?<![\w.,/$])(?P<v>#\s?\d{5,10}|\d{7,10})(?![\w,%]|\.\d|/|\s*(?i:mg|mcg|µg|μg|g|kg|ml|l|dl|units?"
                 r"|iu|u|meq|mmol|cells|copies|per)\b)", lead=d),
        p("LICENSE", r"(?<![A-Za-z0-9])(?P<v>[A-Z]{2}\d{7})(?![A-Za-z0-9])", lead=d),  # DEA number shape
        p("VEHICLE_ID", r"(?<![A-Za-z0-9])(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17}"
                        r"(?![A-Za-z0-9])", lead=d),
        p("DEVICE_ID", r"\(01\)\d{14}(?:\(\d{2}\)[A-Za-z0-9]+)*", lead=d),
        p("PHOTO", r"(?i)\b[\w\-]*\d[\w\-]*\.(?:jpe?g|png|gif|bmp|tiff?|heic|webp)\b", lead=d),
        p("ID", r"(?<![A-Za-z0-9\-])(?P<v>[A-Z]{1,4}-?(?:\d{6,12}|\d{3,}(?:-\d{2,})+))(?![A-Za-z0-9\-])", lead=d),
        # ---- names with a title or a label ("Name: John Smith"), and the city of "City, ST"
        p("PERSON", rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sister|Nurse)\.?\s+"
                    rf"(?P<v>{_NAME_WORD}(?:\s+[A-Z]\.)?(?:\s+{_NAME_WORD}){{0,2}})",
          lead=w, keys="mr mrs ms miss mx dr prof sr sister nurse"),
        p("PERSON", rf"(?i:\b(?:patient(?:['’]s)?\s+name|name|patient|pt|signed\s+by|seen\s+by|attending|physician"
                    rf"|provider|nurse|guardian|mother|father|spouse|wife|husband|son|daughter|contact|next\s+of\s+kin)"
                    rf"\s*:\s*)(?P<v>{_NAME_WORD}(?:\s+[A-Z]\.)?(?:\s+{_NAME_WORD}){{1,2}})",
          lead=w, keys="patient name pt signed seen attending physician provider nurse guardian mother father "
                       "spouse wife husband son daughter contact next"),
        # ---- rare shapes, looked for only when their mark is in the text
        p("LOCATION", rf"\b{_CITY},\s+{_ANY_STATE}", lead=r, keys=","),
        p("LOCATION", rf"\b{_CITY}\s+{_ANY_STATE}\s+\d{{5}}", lead=r, keys=" "),
        p("EMAIL", r"(?<![\w.+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,24}\b", lead=r, keys="@"),
        p("URL", r"(?i)\b(?:https?://|www\.)[^\s<>\"'()]+[^\s<>\"'().,;:!?]", lead=r, keys="http www. WWW."),
        p("URL", rf"(?<![@\w.\-])(?:[a-z0-9][a-z0-9\-]*\.)+{_TLD}(?:/[^\s<>\"'()]*[^\s<>\"'().,;:!?])?(?![\w@])",
          lead=r, keys=" ".join(f".{t}" for t in _TLD[3:-1].split("|"))),
        p("IP_ADDRESS", r"(?i)(?<![\w:])(?=[0-9a-f:]*[a-f])(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}(?![\w:])", lead=r, keys=":"),
        p("IP_ADDRESS", r"(?i)(?<![\w:])(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?(?![\w:])",
          lead=r, keys="::"),
    ]


def _after_city(text: str, start: int, end: int) -> bool:
    return bool(re.search(r"[A-Za-z]{3},\s*$", text[max(0, start - 8):start]))


def _starts_text(text: str, start: int, end: int) -> bool:
    """An age over 89 at the very start of a note or a line ("98 s/p left hip fx")."""
    return not text[:start].strip() or text[:start].rstrip(" \t").endswith("\n")


_GROUP = re.compile(r"\(\?P<(\w+)>|\(\?P=(\w+)\)")


def _local(regex: str, i: int) -> str:
    """Rename a pattern's groups so that many patterns can live in one expression; a leading global flag such as
    `(?i)` becomes a scoped one."""
    if regex.startswith("(?i)"):
        regex = f"(?i:{regex[4:]})"
    return _GROUP.sub(lambda m: f"(?P<{m.group(1)}_{i}>" if m.group(1) else f"(?P={m.group(2)}_{i})", regex)


#: The one tokenizer scrub uses: letter runs (with an inner apostrophe) and digit runs.
TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]{2,})?|\d+")
_SIGNS = "(#+'’$"


class Scanner:
    """One candidate scan over a text's tokens: a word that can start a labelled pattern, a digit run (or the sign
    or letters right before it), and the marks of the rare shapes (`@`, `www.`, `::`) are the only places where
    the patterns are tried, each place with the one expression that joins the patterns that can start there."""

    def __init__(self, pats: list[Pattern]) -> None:
        self.table: dict[str, tuple[str, str | None, Callable[[str, int, int], bool] | None]] = {}
        bodies: dict[int, str] = {}
        keyed: dict[str, list[int]] = {}
        digit, rare = [], []
        for i, pattern in enumerate(pats):
            body = _local(pattern.regex, i)
            bodies[i] = f"(?P<p{i}>{body})"
            value = f"v_{i}" if f"(?P<v_{i}>" in body else None
            self.table[f"p{i}"] = (pattern.entity, value, pattern.check)
            if pattern.lead == "word":
                for key in dict.fromkeys(pattern.keys.split()):
                    keyed.setdefault(key, []).append(i)
            elif pattern.lead == "digit":
                digit.append(i)
            else:
                rare.append(i)
        self.single = {f"p{i}": re.compile(body, re.MULTILINE) for i, body in bodies.items()}
        self.members: dict[str, list[str]] = {}

        @functools.cache
        def join(ids: tuple[int, ...]) -> re.Pattern:
            regex = re.compile("|".join(bodies[i] for i in ids), re.MULTILINE)
            self.members[regex.pattern] = [f"p{i}" for i in ids]
            return regex

        self.by_key = {key: join(tuple(ids)) for key, ids in keyed.items()}
        self.digit = join(tuple(digit))
        self.rare = [(tuple(pats[i].keys.split()), re.compile(bodies[i], re.MULTILINE)) for i in rare]

    def scan(self, text: str, tokens: list[re.Match] | None = None) -> list[tuple[int, int, str]]:
        """(start, end, entity) of every pattern finding, overlaps included."""
        found: set[tuple[int, int, str]] = set()
        tried: set[tuple[int, int]] = set()
        for token in TOKEN.finditer(text) if tokens is None else tokens:
            start = token.start()
            word = token.group()
            if word[0].isdigit():
                starts = {start}
                if start and text[start - 1] in _SIGNS:
                    starts.add(start - 1)
                back = start
                while back > 0 and start - back < 16 and (text[back - 1].isalnum() or text[back - 1] in "-_"):
                    back -= 1
                if back < start:
                    starts.add(back)
                for pos in starts:
                    self._try(self.digit, text, pos, found, tried, 0)
            else:
                regex = self.by_key.get(word.lower())
                if regex is not None:
                    self._try(regex, text, start, found, tried, id(regex))
        for keys, regex in self.rare:
            if not keys or any(key in text for key in keys):
                for match in regex.finditer(text):
                    self._keep(match, text, found)
        return sorted(found)

    def _try(self, regex: re.Pattern, text: str, pos: int, found: set, tried: set, which: int) -> None:
        if (pos, which) in tried:
            return
        tried.add((pos, which))
        match = regex.match(text, pos)
        if match is not None and not self._keep(match, text, found):
            # The first alternative that matched failed its check ("8/25" is no month/year): try the later ones.
            group = match.lastgroup
            later = self.members[regex.pattern]
            for name in later[later.index(group) + 1:]:
                match = self.single[name].match(text, pos)
                if match is not None and self._keep(match, text, found):
                    break

    def _keep(self, match: re.Match, text: str, found: set) -> bool:
        entity, value, check = self.table[match.lastgroup]
        start, end = match.span(value) if value and match.start(value) >= 0 else match.span()
        if end > start and (check is None or check(text, start, end)):
            found.add((start, end, entity))
            return True
        return False


@functools.lru_cache(maxsize=1)
def scanner() -> Scanner:
    return Scanner(patterns())
