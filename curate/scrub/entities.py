"""The PHI entity types scrub finds: one name per HIPAA Safe Harbor identifier kind, used as the placeholder text.

Kept free of heavy imports: the CLI validates `--entities` against this list without loading presidio.
"""

from __future__ import annotations

#: entity type -> the Safe Harbor identifier kind it covers. The placeholder written in place of a finding is
#: `<TYPE>`. Order is the order of the report.
ENTITIES: dict[str, str] = {
    "PERSON": "names",
    "ADDRESS": "street address",
    "LOCATION": "city and other geographic units smaller than a state",
    "ZIP": "ZIP code",
    "DATE": "all elements of dates except the year",
    "AGE": "ages over 89",
    "PHONE": "telephone numbers",
    "FAX": "fax numbers",
    "EMAIL": "email addresses",
    "SSN": "social security numbers",
    "MRN": "medical record numbers",
    "HEALTH_PLAN": "health plan beneficiary numbers",
    "ACCOUNT": "account numbers (bank, billing, card)",
    "LICENSE": "certificate and licence numbers",
    "VEHICLE_ID": "vehicle identifiers and licence plates",
    "DEVICE_ID": "device identifiers and serial numbers",
    "URL": "web addresses",
    "IP_ADDRESS": "IP addresses",
    "BIOMETRIC": "biometric identifiers (finger, voice, retina prints)",
    "PHOTO": "full-face photographs and comparable images",
    "ID": "any other unique identifying number or code",
}

#: The text columns scrub looks at (when present in a row). `options` is a {letter: text} object.
TEXT_FIELDS = ("question", "context", "options", "reasoning", "completion", "reasoning_content", "text")


def placeholder(entity: str) -> str:
    return f"<{entity}>"


def check_entities(entities: list[str] | None) -> list[str]:
    """The entity types to look for (all when None); unknown names raise a ValueError listing the known ones."""
    if not entities:
        return list(ENTITIES)
    wanted = [e.strip().upper() for item in entities for e in item.split(",") if e.strip()]
    unknown = [e for e in wanted if e not in ENTITIES]
    if unknown:
        raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITIES)}")
    return [e for e in ENTITIES if e in wanted]
