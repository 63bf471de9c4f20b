"""Review against a real argilla-server, through the real `argilla` SDK over HTTP, the CLI, and a real browser.

The server is argilla-server 2.8 in its own venv (its pins clash with curate's), started once for this module on
127.0.0.1 with SQLite. Two of its dependencies cannot run here and are replaced at their narrowest boundary:
Elasticsearch/OpenSearch (cannot be installed on this machine) by an in-memory search engine registered through
argilla-server's own `SearchEngine.register` hook (it really indexes records and answers the searches the UI and
`progress()` make), and Redis by an in-process `fakeredis` server (the server only pings it and queues jobs we do not use).
Everything else (API, auth, database, task distribution, UI) is the real server.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from curate.io import read_rows
from curate.question_rows import load_questions
from review import apply_reviews, pull, push, status
from review.items import review_items
from tests.review_data import write_corpus
from tests.support.argilla.server import ArgillaServer, ensure_venv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTIONS = ("answer_correct", "reasoning_sound", "clinically_unsafe", "phi_present", "comment", "gold_correct")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        ensure_venv()
    except Exception as exc:  # no registry access on a user's machine: nothing to test against
        pytest.skip(f"cannot build the argilla-server venv: {exc}")
    with ArgillaServer(tmp_path_factory.mktemp("argilla-home")) as running:
        yield running


@pytest.fixture(scope="module")
def env(server):
    """ARGILLA_API_URL / ARGILLA_API_KEY for the code under test, restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("ARGILLA_API_URL", "ARGILLA_API_KEY")}
    os.environ.update(ARGILLA_API_URL=server.url, ARGILLA_API_KEY=server.api_key)
    yield {"ARGILLA_API_URL": server.url, "ARGILLA_API_KEY": server.api_key}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), n=30)


@pytest.fixture(scope="module")
def owner(server):
    import argilla as rg

    return rg.Argilla(api_url=server.url, api_key=server.api_key)


def make_reviewer(owner, server, username: str) -> dict:
    """An annotator in the owner's workspace, created through the SDK; returns its id, password and API key."""
    import argilla as rg

    password = f"{username}-password-1"
    user = rg.User(username=username, password=password, role="annotator", client=owner).create()
    user.add_to_workspace(owner.workspaces("argilla"))
    # The SDK does not expose another user's key; the owner may read it from the users endpoint.
    details = httpx.get(f"{server.url}/api/v1/users/{user.id}", headers={"X-Argilla-Api-Key": server.api_key}).json()
    return {"id": str(user.id), "username": username, "password": password, "api_key": details["api_key"]}


def submit(server, reviewer: dict, record_server_id, values: dict) -> None:
    """Submit one response as the reviewer, through the same endpoint the UI uses."""
    body = {"values": {name: {"value": value} for name, value in values.items()}, "status": "submitted"}
    reply = httpx.post(f"{server.url}/api/v1/records/{record_server_id}/responses", json=body,
                       headers={"X-Argilla-Api-Key": reviewer["api_key"]})
    assert reply.status_code == 201, reply.text


def answers(correct="correct", rating=4, unsafe="no", phi="no"):
    return {"answer_correct": correct, "reasoning_sound": rating, "clinically_unsafe": unsafe, "phi_present": phi}


def test_push_creates_the_review_dataset(env, corpus, owner):
    kept, qs = corpus
    result = push(kept, dataset="spot-check", questions=qs, sample=12, seed=5, reviewers_per_record=2)
    assert result.created and result.new_records == 12 and result.rows_in == 30
    ds = owner.datasets(name="spot-check")
    settings = ds.settings
    assert [f.name for f in settings.fields] == ["question", "context", "reasoning", "final_answer", "gold_answer",
                                                 "gold_check"]
    assert [q.name for q in settings.questions] == list(QUESTIONS)
    assert [q.type for q in settings.questions] == ["label_selection", "rating", "label_selection", "label_selection", "text",
                                                    "label_selection"]
    assert {m.name for m in settings.metadata} == {"source", "subject", "difficulty", "teacher", "trace_id", "question_id",
                                                   "gold_question"}
    assert settings.distribution.min_submitted == 2
    assert "Reviewing clinical reasoning traces" in settings.guidelines
    items = {it["trace_id"]: it for it in review_items(kept, load_questions(qs))}
    records = list(ds.records(with_suggestions=True))
    assert len(records) == 12
    for record in records:
        item = items[record.id]  # the record id is the trace id
        assert record.fields["reasoning"] == item["reasoning"]
        assert record.metadata["trace_id"] == record.id and record.metadata["source"] == item["source"]
        suggestion = record.suggestions["answer_correct"]
        assert suggestion.value == ("correct" if item["filter_correct"] else "incorrect")
        assert suggestion.agent == "curate-filter"
    # Every source is represented (stratified), PubMedQA records carry their abstract.
    assert {r.metadata["source"] for r in records} == {"medqa", "medmcqa", "pubmedqa"}
    assert all(r.fields["context"].startswith("Abstract") for r in records if r.metadata["source"] == "pubmedqa")


def test_push_again_never_duplicates_and_keeps_responses(env, corpus, owner, server):
    kept, qs = corpus
    ds = owner.datasets(name="spot-check")
    first = next(iter(ds.records))
    reviewer = make_reviewer(owner, server, "early-bird")
    submit(server, reviewer, first._server_id, answers())
    again = push(kept, dataset="spot-check", questions=qs, sample=12, seed=5, reviewers_per_record=2)
    assert not again.created and again.new_records == 0 and again.updated_records == 12
    grown = push(kept, dataset="spot-check", questions=qs, sample=20, seed=5, reviewers_per_record=2)
    assert grown.new_records == 8  # a larger sample with the same seed contains the smaller one
    records = list(ds.records)
    assert len(records) == 20 and len({r.id for r in records}) == 20
    kept_response = [r for r in records if r.id == first.id][0].responses
    assert [resp.value for resp in kept_response["answer_correct"]] == ["correct"]
    with pytest.raises(ValueError, match="2 reviewer"):
        push(kept, dataset="spot-check", questions=qs, sample=12, reviewers_per_record=3)


def early_bird_key(owner, server) -> str:
    user = owner.users("early-bird")
    return httpx.get(f"{server.url}/api/v1/users/{user.id}", headers={"X-Argilla-Api-Key": server.api_key}).json()["api_key"]


def test_in_memory_engine_answers_searches(env, corpus, owner, server):
    import argilla as rg

    ds = owner.datasets(name="spot-check")
    records = list(ds.records)
    target = records[3]
    marker = target.fields["reasoning"].split("Marker-")[1].rstrip(".")
    found = list(ds.records(query=rg.Query(query=f"Marker-{marker}")))
    assert [r.id for r in found] == [target.id]
    pubmedqa = list(ds.records(query=rg.Query(filter=rg.Filter(("metadata.source", "==", "pubmedqa")))))
    assert {r.id for r in pubmedqa} == {r.id for r in records if r.metadata["source"] == "pubmedqa"} and pubmedqa
    flagged = list(ds.records(query=rg.Query(filter=rg.Filter(("answer_correct.suggestion", "==", "incorrect")))))
    assert {r.id for r in flagged} == {r.id for r in records if r.suggestions["answer_correct"].value == "incorrect"}
    assert flagged  # every 4th trace is wrong
    # The SDK searches across all responses: one record has early-bird's submitted response, 19 have none.
    pending = rg.Query(filter=rg.Filter(("response.status", "==", "pending")))
    submitted = rg.Query(filter=rg.Filter(("response.status", "==", "submitted")))
    assert len(list(ds.records(query=pending))) == 19
    (answered,) = ds.records(query=submitted)
    assert answered.responses["answer_correct"][0].value == "correct"
    # The UI's queue (/me/...) is per user: the owner still has all 20 pending, 10 per page; early-bird 19.
    query = {"query": {}, "filters": {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"},
                                                "values": ["pending"]}]}}
    url = f"{server.url}/api/v1/me/datasets/{ds.id}/records/search"
    owner_page = httpx.post(url, params={"offset": 10, "limit": 10}, json=query, headers={"X-Argilla-Api-Key": server.api_key})
    assert owner_page.json()["total"] == 20 and len(owner_page.json()["items"]) == 10
    reviewer = httpx.post(url, json=query, headers={"X-Argilla-Api-Key": early_bird_key(owner, server)}).json()
    assert reviewer["total"] == 19 and answered.id not in {item["record"]["external_id"] for item in reviewer["items"]}
    progress = ds.progress()
    assert progress["total"] == 20 and progress["completed"] == 0  # one submission of the two required
    # The UI's metadata filter lists each term with its count.
    source_property = ds.settings.metadata["source"]
    metrics = httpx.get(f"{server.url}/api/v1/metadata-properties/{source_property.id}/metrics",
                        headers={"X-Argilla-Api-Key": server.api_key}).json()
    expected = {name: sum(r.metadata["source"] == name for r in records) for name in ("medqa", "medmcqa", "pubmedqa")}
    assert metrics["total"] == 20 and {v["term"]: v["count"] for v in metrics["values"]} == expected


def test_reviewers_status_pull_and_agreement(env, corpus, owner, server, tmp_path):
    kept, qs = corpus
    push(kept, dataset="agreement", questions=qs, sample=6, seed=1, reviewers_per_record=2)
    ds = owner.datasets(name="agreement")
    records = sorted(ds.records, key=lambda r: r.id)
    alice, bob = make_reviewer(owner, server, "alice"), make_reviewer(owner, server, "bob")
    # Four records reviewed by both: alice [c, i, c, c], bob [c, i, i, c]; a fifth by alice only; one untouched.
    plan = [("correct", "correct"), ("incorrect", "incorrect"), ("correct", "incorrect"), ("correct", "correct")]
    for record, (a, b) in zip(records, plan):
        submit(server, alice, record._server_id, answers(a))
        submit(server, bob, record._server_id, answers(b, rating=2 if b == "incorrect" else 5))
    submit(server, alice, records[4]._server_id, {**answers(), "comment": "fine"})

    progress = status("agreement")
    assert progress["total"] == 6 and progress["completed"] == 4 and progress["pending"] == 2
    assert progress["users"]["alice"]["completed"]["submitted"] == 4
    assert progress["users"]["alice"]["pending"]["submitted"] == 1
    assert progress["reviewers_per_record"] == 2

    reviews = tmp_path / "reviews.parquet"
    pulled = pull("agreement", reviews)
    rows = read_rows(reviews)
    assert len(rows) == 9 and pulled.reviewers == {"alice": 5, "bob": 4}
    assert {r["trace_id"] for r in rows} == {r.id for r in records[:5]}
    assert [r["comment"] for r in rows if r["trace_id"] == records[4].id] == ["fine"]

    result = apply_reviews(kept, reviews, tmp_path / "out.parquet", rejected=tmp_path / "rejected.parquet", questions=qs)
    agreement = result.agreement["answer_correct"].model_dump()
    # By hand: Cohen p_o 3/4, p_e (3*2 + 1*2)/16 = 1/2 -> 0.5; Fleiss P 0.75, P_e (25 + 9)/64 -> 0.4667.
    assert agreement["items"] == 4
    assert agreement["cohen_kappa"][0]["kappa"] == pytest.approx(0.5)
    assert agreement["fleiss_kappa"] == pytest.approx(0.46667, abs=1e-4)
    # Rejected: both said incorrect (record 2) and the 1-1 tie (record 3).
    assert {r["trace_id"] for r in read_rows(tmp_path / "rejected.parquet")} == {records[1].id, records[2].id}
    assert result.rows_out == 28 and result.reviewers["bob"]["problem_found"] == 2


def test_gold_suspect_questions_go_first_and_their_verdict_comes_back(env, corpus, owner, server, tmp_path):
    """The filter's gold audit -> push (the suspects first, asking whether the key is right) -> a clinician answers
    in Argilla -> pull -> apply removes the rows of the question whose key is wrong."""
    from curate.filter import FilterStage
    from curate.io import write_rows
    from tests.test_filter_gold import _question, _trace

    suspect, sound = _question("1"), _question("2")
    write_rows([suspect, sound], tmp_path / "q.parquet")
    write_rows([_trace(suspect, i, x) for i, x in enumerate("CCCB")] + [_trace(sound, i, "B") for i in range(4)],
               tmp_path / "t.parquet")
    FilterStage(workers=1).run(tmp_path / "t.parquet", tmp_path / "kept.parquet", rejected=tmp_path / "r.parquet",
                               questions=tmp_path / "q.parquet")
    result = push(tmp_path / "kept.parquet", dataset="gold-check", gold_suspects=tmp_path / "r.parquet", sample=2,
                  stratify="")
    assert result.gold_records == 1 and result.rows_out == 2 and result.new_records == 3
    ds = owner.datasets(name="gold-check")
    records = list(ds.records)
    first = records[0]  # logged first
    assert first.id == f"{suspect.id}#0" and first.metadata["gold_question"] == "yes"
    assert "3 of 4 teacher samples chose **C**" in first.fields["gold_check"]
    assert all(r.metadata["gold_question"] == "no" and "gold_check" not in r.fields for r in records[1:])
    clinician = make_reviewer(owner, server, "gold-reviewer")
    submit(server, clinician, first._server_id, {**answers("correct"), "gold_correct": "no"})
    submit(server, clinician, records[1]._server_id, answers())
    pull("gold-check", tmp_path / "reviews.parquet")
    pulled = {r["trace_id"]: r for r in read_rows(tmp_path / "reviews.parquet")}
    assert pulled[first.id]["gold_correct"] == "no" and pulled[first.id]["question_id"] == suspect.id
    assert pulled[records[1].id]["gold_correct"] is None
    report = apply_reviews(tmp_path / "kept.parquet", tmp_path / "reviews.parquet", tmp_path / "out.parquet",
                           rejected=tmp_path / "rej.parquet")
    assert report.gold_review.key_wrong == [suspect.id] and report.reviewed_rows == 1
    assert [r["question_id"] for r in read_rows(tmp_path / "rej.parquet")] == [suspect.id]
    assert {r["question_id"] for r in read_rows(tmp_path / "out.parquet")} == {sound.id}


def test_cli_push_status_pull(env, corpus, tmp_path, cli):
    kept, qs = corpus
    proc = cli("review", "push", "-i", kept, "--questions", qs, "--dataset", "cli-check", "--sample", "5",
               "--stratify", "source", "--report", tmp_path / "push.json")
    assert proc.returncode == 0, proc.stderr
    assert "created dataset cli-check" in proc.stderr and "5 of 30 traces pushed" in proc.stderr
    proc = cli("review", "status", "--dataset", "cli-check")
    assert proc.returncode == 0, proc.stderr
    assert "0 of 5 records completed" in proc.stdout
    proc = cli("review", "pull", "--dataset", "cli-check", "-o", tmp_path / "reviews.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert read_rows(tmp_path / "reviews.jsonl") == []
    missing = cli("review", "pull", "--dataset", "no-such-dataset", "-o", tmp_path / "x.jsonl")
    assert missing.returncode == 2 and "no Argilla dataset 'no-such-dataset'" in missing.stderr


def test_cli_key_errors_never_show_the_key(env, corpus, cli, tmp_path):
    kept, qs = corpus
    no_key = cli("review", "status", "--dataset", "cli-check", env={"ARGILLA_API_KEY": ""})
    assert no_key.returncode == 2 and "set ARGILLA_API_KEY" in no_key.stderr
    bad_key = "wrong-key-" + "7" * 20
    wrong = cli("review", "push", "-i", kept, "--questions", qs, "--dataset", "x", env={"ARGILLA_API_KEY": bad_key})
    assert wrong.returncode == 2 and "cannot use the Argilla server" in wrong.stderr
    assert bad_key not in wrong.stderr + wrong.stdout


COMMENT = "Aspirin alone is not adequate stroke prevention here."
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def choose(page, option_id: str) -> None:
    """Select an option in the Argilla form. The UI pre-selects suggestions (the filter's verdict), and clicking a
    selected option deselects it: click only when it is not selected yet, then check that it is."""
    from playwright.sync_api import expect

    box = page.locator(f"#{option_id}")
    if not box.is_checked():
        page.locator(f"label[for={option_id}]").click()
    expect(box).to_be_checked()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/setup.d/review.sh installs it)")
def test_clinician_reviews_in_the_browser_and_pull_returns_it(env, corpus, owner, server, tmp_path, cli):
    """A reviewer logs into the real Argilla UI in headless Chromium, answers every question, submits; the CLI's
    `review pull` returns exactly that response."""
    playwright = pytest.importorskip("playwright.sync_api")
    kept, qs = corpus
    proc = cli("review", "push", "-i", kept, "--questions", qs, "--dataset", "ui-check", "--sample", "3")
    assert proc.returncode == 0, proc.stderr
    clinician = make_reviewer(owner, server, "dr-lee")
    ds = owner.datasets(name="ui-check")
    reasoning_by_id = {r.id: r.fields["reasoning"] for r in ds.records}

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{server.url}/sign-in")
            page.locator("input[type=text]").fill(clinician["username"])
            page.locator("input[type=password]").fill(clinician["password"])
            page.keyboard.press("Enter")
            page.get_by_text("ui-check").first.click()  # the home page lists the datasets the reviewer can see
            page.get_by_text("Reasoning (teacher model)").wait_for()
            shown = page.locator("body").inner_text()
            (trace_id,) = [tid for tid, text in reasoning_by_id.items() if text in shown]
            for option in ("answer_correct_incorrect", "reasoning_sound_2", "clinically_unsafe_yes", "phi_present_no"):
                choose(page, option)
            page.locator("[aria-label='Question: comment'] [contenteditable=true]").fill(COMMENT)
            screenshot = tmp_path / "review-screen.png"
            page.screenshot(path=str(screenshot), full_page=True)
            page.get_by_role("button", name="Submit").click()
            # Submitted: the UI moves on to the next record and its progress bar counts one submission (the user's
            # progress comes from the search engine).
            marker = reasoning_by_id[trace_id].split("Marker-")[1]
            page.wait_for_function("m => !document.body.innerText.includes(m)", arg=marker)
            page.wait_for_function("() => /Submitted\\s*1\\b/.test(document.body.innerText)")
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    assert reasoning_by_id[trace_id].split(" Marker")[0] in shown  # the review screen shows the reasoning

    reviews = tmp_path / "reviews.jsonl"
    proc = cli("review", "pull", "--dataset", "ui-check", "-o", reviews)
    assert proc.returncode == 0, proc.stderr
    assert "1 submitted responses on 1 of 3 records" in proc.stderr
    (row,) = read_rows(reviews)
    assert row["trace_id"] == trace_id and row["reviewer"] == "dr-lee"
    assert (row["answer_correct"], row["reasoning_sound"], row["clinically_unsafe"], row["phi_present"]) == (
        "incorrect", 2, "yes", "no")
    assert row["comment"] == COMMENT


@pytest.mark.shared_data
def test_push_real_teacher_traces(env, owner, shared_data, tmp_path):
    """Real teacher output (../shared/data traces: R1/QwQ/GPT reasoning on MedQA, MedMCQA, PubMedQA) goes through
    push intact: every dataset is sampled, and a record shows exactly the trace's reasoning and both answers."""
    import gzip
    import json

    from curate.io import write_rows

    rows = []
    with gzip.open(shared_data / "traces" / "dev_traces.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)
            if t["model"] not in ("DeepSeek-R1", "gpt-4o"):
                continue
            rows.append({"trace_id": t["trace_id"], "question_id": f"{t['dataset']}:{t['split']}:{t['qid']}",
                         "source": t["dataset"], "teacher": t["model"], "question": t["question"],
                         "options": t["options"], "gold": t["gold"], "reasoning": t["reasoning"] or t["response"],
                         "answer": t["source_pred"], "correct": t["source_correct"]})
    path = tmp_path / "real.jsonl"
    write_rows(rows, path)
    result = push(path, dataset="real-traces", sample=24, stratify="source", seed=2)
    assert result.rows_in == len(rows) and result.rows_out == 24
    assert {s.stratum: s.sampled for s in result.strata} == {"medmcqa": 8, "medqa": 8, "pubmedqa": 8}
    by_id = {r["trace_id"]: r for r in rows}
    records = list(owner.datasets(name="real-traces").records)
    assert len(records) == 24
    for record in records:
        row = by_id[record.id]
        assert record.fields["reasoning"] == row["reasoning"]
        assert record.fields["gold_answer"].startswith(f"**{row['gold']}.**")
        assert record.metadata["teacher"] == row["teacher"]
