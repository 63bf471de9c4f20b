"""`curate verify` against real judges on loopback: the replay server (a real OpenAI-compatible HTTP server) answers
each judge request with an output the test scripted for that trace (well-formed verdicts, malformed JSON, verdicts
that fail the schema, refusals, plain multiple-choice answers, quotes of steps the trace does not have), or with real
teacher completions (a garbage judge). The rows are the real filter's output over the demo's recorded real traces.
Nothing is mocked; the CLI runs in a subprocess and SIGKILL is a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.filter.reasons import (
    JUDGE_CLINICAL_ERROR,
    JUDGE_ERROR,
    JUDGE_MISQUOTE,
    JUDGE_REFUSAL,
    JUDGE_UNPARSABLE,
    JUDGE_UNSAFE,
    JUDGE_UNSUPPORTED,
    JUDGE_WRONG_STEP,
    REASONS,
)
from curate.generate.backends import GenerateError
from curate.generate.replay import replay_server
from curate.io import read_rows
from curate.records import JudgeResult, JudgeVerdict, VerifyResult
from curate.stage import StageFailed
from curate.verify import VerifyStage, response_format, run_verify
from curate.verify.verdict import Rules, judge_result, parse_output, passes
from tests.conftest import REPO_ROOT, run_cli
from tests.verify_support import DEMO_RECORDING, NEVER_PASS, filtered_rows, output, write_filtered, write_judge

JUDGE = "judge-a"

EXPECTED = {"malformed": JUDGE_UNPARSABLE, "schema_string_bool": JUDGE_UNPARSABLE, "schema_extra_key": JUDGE_UNPARSABLE,
            "schema_missing": JUDGE_UNPARSABLE, "schema_bad_step": JUDGE_UNPARSABLE, "no_steps": JUDGE_UNPARSABLE,
            "misquote": JUDGE_MISQUOTE, "prose": JUDGE_UNPARSABLE, "refusal": JUDGE_REFUSAL,
            "multiple_choice": JUDGE_UNPARSABLE, "unsupported": JUDGE_UNSUPPORTED, "wrong_step": JUDGE_WRONG_STEP,
            "unsafe": JUDGE_UNSAFE, "clinical": JUDGE_CLINICAL_ERROR}


def _verify(tmp_path: Path, url: str | list[str], *, judges: list[str] | None = None, name: str = "out", **options):
    options.setdefault("retry_base", 0.01)
    return run_verify(tmp_path / "kept.parquet", tmp_path / f"{name}.parquet", rejected=tmp_path / f"{name}.rej.parquet",
                      report=tmp_path / f"{name}.json", judges=judges or [JUDGE],
                      base_urls=[url] if isinstance(url, str) else url, **options)


# ---------------------------------------------------------------- parsing, one output at a time


@pytest.mark.parametrize("kind", ["agree", "fenced", "think"])
def test_well_formed_verdicts_parse(kind):
    row = filtered_rows(1)[0]
    parsed = parse_output(output(kind, row), row["reasoning"])
    assert parsed.verdict is not None and parsed.reason is None and parsed.verdict.supports_answer


@pytest.mark.parametrize("kind", [k for k, code in EXPECTED.items() if code in (JUDGE_UNPARSABLE, JUDGE_MISQUOTE,
                                                                                  JUDGE_REFUSAL)])
def test_outputs_that_are_no_verdict_are_named(kind):
    row = filtered_rows(1)[0]
    parsed = parse_output(output(kind, row), row["reasoning"])
    assert parsed.verdict is None and parsed.reason == EXPECTED[kind] and parsed.detail
    result = judge_result(parsed, Rules(), judge=JUDGE, prompt_name="p", prompt_hash="h", raw=output(kind, row),
                          finish_reason="stop", usage={})
    assert not result.passed and result.reasons == [EXPECTED[kind]] and result.raw


def test_strict_means_no_coercion_and_a_cut_output_says_so():
    row = filtered_rows(1)[0]
    assert "supports_answer" in parse_output(output("schema_string_bool", row), row["reasoning"]).detail
    cut = parse_output(output("malformed", row), row["reasoning"], finish_reason="length")
    assert cut.reason == JUDGE_UNPARSABLE and "max-tokens" in cut.detail
    assert parse_output("", row["reasoning"]).reason == JUDGE_UNPARSABLE
    assert parse_output("<think>\nstill thinking", row["reasoning"]).reason == JUDGE_UNPARSABLE
    # a quote may leave words out with an ellipsis, or differ in case and spacing; not in content
    steps = json.loads(output("agree", row))["steps"]
    first = steps[0]["step"].split()
    elided = " ".join(first[:3]) + " ... " + " ".join(first[-3:])
    body = {**json.loads(output("agree", row)), "steps": [{"step": elided.upper(), "verdict": "supported", "why": ""}]}
    assert parse_output(json.dumps(body), row["reasoning"]).verdict is not None
    assert parse_output(json.dumps(body), "some other reasoning entirely", quote_similarity=0.9).reason == JUDGE_MISQUOTE
    assert parse_output(json.dumps(body), "some other reasoning entirely", quote_similarity=0).verdict is not None


def test_rules_say_which_findings_reject():
    row = filtered_rows(1)[0]
    unsupported_step = json.loads(output("agree", row))
    unsupported_step["steps"][0]["verdict"] = "unsupported"
    verdict = JudgeVerdict.model_validate(unsupported_step)
    parsed = parse_output(json.dumps(unsupported_step), row["reasoning"])
    lenient = judge_result(parsed, Rules(), judge=JUDGE, prompt_name="p", prompt_hash="h", raw=None, finish_reason=None,
                           usage={})
    strict = judge_result(parsed, Rules(reject_unsupported_steps=True), judge=JUDGE, prompt_name="p", prompt_hash="h",
                          raw=None, finish_reason=None, usage={})
    assert verdict.steps[0].verdict == "unsupported" and lenient.passed and not strict.passed
    assert strict.reasons == ["judge_unsupported_step"]
    wrong = parse_output(output("wrong_step", row), row["reasoning"])
    assert judge_result(wrong, Rules(reject_wrong_steps=False), judge=JUDGE, prompt_name="p", prompt_hash="h",
                        raw=None, finish_reason=None, usage={}).passed


def test_the_rule_over_several_judges():
    def result(ok: bool) -> JudgeResult:
        return JudgeResult(judge=JUDGE, prompt_name="p", prompt_hash="h", passed=ok,
                           reasons=[] if ok else [JUDGE_WRONG_STEP])

    votes = [result(True), result(False), result(False)]
    assert passes(votes, "any") and not passes(votes, "majority") and not passes(votes, "all")
    assert passes([result(True), result(True), result(False)], "majority")
    assert not passes([result(True), result(False)], "majority")  # a tie is not a majority
    with pytest.raises(ValueError, match="unknown rule"):
        passes(votes, "most")


def test_every_verify_reason_is_in_the_one_registry():
    from curate.filter.reasons import FILTER_REASONS, VERIFY_REASONS

    assert set(EXPECTED.values()) | {JUDGE_ERROR} <= set(VERIFY_REASONS) and not set(VERIFY_REASONS) & set(FILTER_REASONS)
    assert all(REASONS[code] for code in VERIFY_REASONS)


# ---------------------------------------------------------------- the stage against a real judge server


def test_no_bad_output_ever_passes_and_every_row_carries_its_verdict(tmp_path):
    kinds = ["agree", "fenced", "think", *NEVER_PASS]
    rows = write_filtered(tmp_path / "kept.parquet", len(kinds))
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: kinds[i])
    with replay_server(traces=recording, models=[JUDGE]) as server:
        report = _verify(tmp_path, server.url)
        log = server.log()
    assert all(e["matched"] for e in log) and len(log) == len(kinds)  # each request got its trace's answer
    assert {e["response_format"] for e in log} == {"json_schema"}  # asked for the verdict schema
    kept = read_rows(tmp_path / "out.parquet")
    rejected = {r["trace_id"]: r for r in read_rows(tmp_path / "out.rej.parquet")}
    by_kind = dict(zip(kinds, rows))
    assert [r["trace_id"] for r in kept] == [by_kind[k]["trace_id"] for k in ("agree", "fenced", "think")]
    for kind in NEVER_PASS:
        row = rejected[by_kind[kind]["trace_id"]]
        assert row["reasons"] == [EXPECTED[kind]], kind
        assert row["rejected_by"] == "verify" and row["verify"]["passed"] is False and row["detail"]
    from prompts import get_prompt

    prompt = get_prompt("judge_reasoning")
    for row in [*kept, *rejected.values()]:
        VerifyResult.model_validate(row["verify"])
        (judged,) = row["verify"]["judges"]
        assert (judged["judge"], judged["prompt_name"], judged["prompt_hash"]) == (JUDGE, prompt.name, prompt.hash)
        assert judged["usage"]["completion_tokens"] > 0
    assert kept[0]["verify"]["judges"][0]["verdict"]["steps"][0]["step"] in kept[0]["reasoning"]
    assert report.verified == 3 and report.rows_in == len(kinds) and report.rejected == len(NEVER_PASS)
    assert report.judges[0].outcomes["passed"] == 3 and report.judges[0].structured
    assert report.tokens_per_1k_rows and report.prompt_tokens > 0
    assert json.loads((tmp_path / "out.json").read_text())["verified"] == 3


def test_the_judge_never_sees_the_teacher():
    row = filtered_rows(1)[0]
    from prompts import get_prompt

    text = json.dumps(get_prompt("judge_reasoning").render(row))
    assert row["teacher"] not in text and row["reasoning"].strip()[:200] in json.loads(text)[1]["content"]
    assert f"Answer key: {row['gold']}" in text


def test_a_garbage_judge_keeps_nothing(tmp_path):
    """The judge answers with real teacher completions (multiple-choice reasoning, never a verdict)."""
    rows = write_filtered(tmp_path / "kept.parquet", 30)
    with replay_server(traces=DEMO_RECORDING, models=[JUDGE]) as server:
        report = _verify(tmp_path, server.url)
    assert report.rows_out == 0 and report.rejected == len(rows) == report.reasons[JUDGE_UNPARSABLE]
    assert any("kept 0 of" in w for w in report.warnings)
    assert not read_rows(tmp_path / "out.parquet")


def test_a_judge_that_agrees_with_everything_keeps_exactly_the_filters_rows(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet")
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        report = _verify(tmp_path, server.url, concurrency=8)
    out = read_rows(tmp_path / "out.parquet")
    assert report.rejected == 0 and report.rows_out == report.rows_in == len(rows) > 50
    assert [{k: v for k, v in r.items() if k != "verify"} for r in out] == read_rows(tmp_path / "kept.parquet")
    assert report.per_source.keys() == {r["source"] for r in rows}


def test_several_judges_the_rule_and_their_agreement(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet", 12)
    a = write_judge(tmp_path / "a.jsonl.gz", rows, "agree")
    b = write_judge(tmp_path / "b.jsonl.gz", rows, lambda i, row: "wrong_step" if i < 4 else "agree")
    c = write_judge(tmp_path / "c.jsonl.gz", rows, lambda i, row: "refusal" if i % 2 else "agree")
    with replay_server(traces=a, models=["a"]) as sa, replay_server(traces=b, models=["b"]) as sb, \
            replay_server(traces=c, models=["c"]) as sc:
        judges = [f"a@{sa.url}", f"b@{sb.url}", f"c@{sc.url}"]
        reports = {rule: _verify(tmp_path, "http://127.0.0.1:9/v1", judges=judges, rule=rule, name=rule)
                   for rule in ("any", "majority", "all")}
    kept = {rule: {r["trace_id"] for r in read_rows(tmp_path / f"{rule}.parquet")} for rule in reports}
    ids = [r["trace_id"] for r in rows]
    a_ok, b_ok, c_ok = set(ids), set(ids[4:]), set(ids[::2])
    assert kept["any"] == a_ok
    assert kept["majority"] == {t for t in ids if (t in a_ok) + (t in b_ok) + (t in c_ok) >= 2}
    assert kept["all"] == a_ok & b_ok & c_ok
    # agreement: the review stage's statistics over the judges' decisions
    from review.stats import cohen_kappa, fleiss_kappa

    agreement = reports["all"].agreement["passed"]
    decisions = [[t in a_ok, t in b_ok, t in c_ok] for t in ids]
    assert agreement.items == len(ids) and agreement.fleiss_kappa == pytest.approx(fleiss_kappa(decisions))
    pair = next(p for p in agreement.cohen_kappa if p["raters"] == ["a", "b"])
    assert pair["kappa"] == pytest.approx(cohen_kappa([d[0] for d in decisions], [d[1] for d in decisions]))
    assert reports["all"].agreement["reasoning_sound"].items == len(ids)  # rows with two verdicts or more
    rejected = {r["trace_id"]: r for r in read_rows(tmp_path / "all.rej.parquet")}
    assert rejected[ids[0]]["reasons"] == [JUDGE_WRONG_STEP] and rejected[ids[1]]["reasons"] == [JUDGE_WRONG_STEP,
                                                                                                JUDGE_REFUSAL]
    assert [j.model for j in reports["all"].judges] == ["a", "b", "c"]


def test_flag_mode_keeps_every_row_with_its_verdict(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet", 6)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: "unsafe" if i < 2 else "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        report = _verify(tmp_path, server.url, mode="flag")
    out = read_rows(tmp_path / "out.parquet")
    assert len(out) == 6 and report.flagged == 2 and report.verified == 4 and report.rejected == 0
    assert [r["verify"]["clinically_unsafe"] for r in out] == [True, True, False, False, False, False]
    assert all(r["verify"]["reasoning_sound"] for r in out)


def test_structured_output_can_be_turned_off_and_a_refusing_server_fails_loudly(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet", 4)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, "agree")
    with replay_server(traces=recording, models=[JUDGE], response_format="reject") as server:
        with pytest.raises(GenerateError, match="response_format is not supported") as failed:
            _verify(tmp_path, server.url)
        assert "--no-structured" in failed.value.hint and failed.value.exit_code == 3
        assert not (tmp_path / "out.parquet").exists()  # nothing was judged: nothing written
        server.reset()
        report = _verify(tmp_path, server.url, structured=False)
        assert {e["response_format"] for e in server.log()} == {None} and report.verified == 4


def test_failed_requests_are_unfinished_rows_and_a_rerun_asks_only_those(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet", 8)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, "agree")
    with replay_server(traces=recording, models=[JUDGE], faults={"server_error": 0.5}, seed=3) as server:
        with pytest.raises(StageFailed, match="run the same command again"):
            _verify(tmp_path, server.url, max_retries=0)
        failed = [r["trace_id"] for r in read_rows(tmp_path / "out.rej.parquet")]
        assert 0 < len(failed) < 8
        server.configure(faults={})
        server.reset()
        report = _verify(tmp_path, server.url, max_retries=0)
        assert len(server.log()) == len(failed)  # the rest came from the cache
    assert report.verified == 8 and report.judges[0].from_cache == 8 - len(failed)


def test_shard_and_the_questions_file(tmp_path):
    rows = write_filtered(tmp_path / "full.parquet", 10)
    from curate.io import write_rows
    from curate.records import QuestionColumns

    bare = [{k: v for k, v in r.items() if k not in QuestionColumns.model_fields} for r in rows]
    write_rows(bare, tmp_path / "kept.parquet")
    questions = tmp_path / "q.parquet"
    write_rows([{"id": r["question_id"], "source": r["source"], "split": r["split"], "question": r["question"],
                 "options": r["options"], "answer": r["gold"], "context": r["context"]}
                for r in {r["question_id"]: r for r in rows}.values()], questions)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        with pytest.raises(Exception, match="no question text"):
            _verify(tmp_path, server.url)
        halves = [_verify(tmp_path, server.url, shard=f"{i}/2", questions=questions, name=f"s{i}") for i in (0, 1)]
        assert all(e["matched"] for e in server.log())
    ids = [r["trace_id"] for i in (0, 1) for r in read_rows(tmp_path / f"s{i}.parquet")]
    assert sorted(ids) == sorted(r["trace_id"] for r in rows) and all(h.rows_in for h in halves)


def test_response_format_is_the_verdict_schema():
    schema = response_format()["json_schema"]["schema"]
    assert schema == JudgeVerdict.model_json_schema() and schema["additionalProperties"] is False
    assert set(schema["required"]) == set(JudgeVerdict.model_fields)


# ---------------------------------------------------------------- the command line


def test_cli_verify_and_its_errors(tmp_path):
    rows = write_filtered(tmp_path / "kept.jsonl", 5)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: "wrong_step" if i == 0 else "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        proc = run_cli("verify", "-i", tmp_path / "kept.jsonl", "-o", tmp_path / "v.jsonl", "--rejected",
                       tmp_path / "r.jsonl", "--report", tmp_path / "v.json", "--judge", JUDGE, "--base-url", server.url)
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout + proc.stderr
        assert "4 of 5 rows verified" in shown and "judge_wrong_step" in shown
        missing = run_cli("verify", "-i", tmp_path / "kept.jsonl", "-o", tmp_path / "x.jsonl", "--base-url", server.url)
        assert missing.returncode == 2 and "--judge" in missing.stderr
        bad = dict(rows[1], reasoning=None)
        (tmp_path / "bad.jsonl").write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n")
        proc = run_cli("verify", "-i", tmp_path / "bad.jsonl", "-o", tmp_path / "y.jsonl", "--judge", JUDGE,
                       "--base-url", server.url)
        assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr and "field 'reasoning'" in proc.stderr
        assert not (tmp_path / "y.jsonl").exists()
        wrong = run_cli("verify", "-i", tmp_path / "kept.jsonl", "-o", tmp_path / "z.jsonl", "--judge", "nope",
                        "--base-url", server.url)
        assert wrong.returncode == 3 and "nope" in wrong.stderr
    assert json.loads((tmp_path / "v.json").read_text())["judges"][0]["model"] == JUDGE


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_same_output_and_asks_nothing_twice(tmp_path):
    rows = write_filtered(tmp_path / "kept.parquet", 24)
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: "wrong_step" if i % 5 == 0 else "agree")
    args = ["-i", str(tmp_path / "kept.parquet"), "--judge", JUDGE, "--concurrency", "4"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with replay_server(traces=recording, models=[JUDGE], latency=0.02) as server:
        run_cli("verify", *args, "-o", tmp_path / "clean.parquet", "--cache", tmp_path / "clean-cache", "--base-url",
                server.url, check=True)
        server.reset()
        server.configure(hold_after=10, hang_s=60)
        out, cache = tmp_path / "out.parquet", tmp_path / "cache"
        command = [sys.executable, "-m", "curate", "verify", *args, "-o", str(out), "--cache", str(cache), "--base-url",
                   server.url]
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while True:
                stats = server.stats()
                if stats["held"] >= 1 and stats["answering"] == 0 and _cache_lines(cache) == stats["finished"] >= 10:
                    break
                assert proc.poll() is None and time.monotonic() < deadline, "the run ended or stalled before the kill"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(30)
        assert not out.exists() and 10 <= _cache_lines(cache) < 24
        server.configure(hold_after=None)
        server.release()
        run_cli("verify", *args, "-o", out, "--cache", cache, "--base-url", server.url, check=True)
        log = server.log()
    finished = [e["key"] for e in log if e["finished"]]
    assert len(finished) == 24 == len(set(finished))  # every verdict paid for once over both runs
    assert read_rows(out) == read_rows(tmp_path / "clean.parquet")


def _cache_lines(folder: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in folder.glob("*.jsonl")) if folder.exists() else 0


def test_stage_declares_its_parts():
    from curate.records import JSON_COLUMNS, VerifyColumns

    assert VerifyStage.Columns is VerifyColumns and "verify" in JSON_COLUMNS


# ---------------------------------------------------------------- in `curate run`


def test_verify_is_an_optional_step_between_filter_and_dedupe(tmp_path):
    from curate.pipeline.rundir import RunDir
    from curate.pipeline.stages import stage_named
    from curate.publish.card import gold_audit_section, verification_section
    from tests.pipeline_support import config_text, copy_demo, parse, run

    files = copy_demo(tmp_path / "src")
    limits = {"medqa": 6, "medmcqa": 4, "pubmedqa": 3}
    text = config_text(files, tmp_path / "run", publish=False, limits=limits)
    manifest, ran = run(parse(text), until="dedupe")
    assert "verify" not in ran and manifest["stages"]["verify"]["status"] == "skipped"  # no [verify]: not run
    assert stage_named("dedupe").input == "verify"

    rows = filtered_rows()
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: "wrong_step" if i % 3 == 0 else "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        verify = (f'\n[verify]\njudges = ["{JUDGE}"]\nbase_urls = ["{server.url}"]\nconcurrency = 4\n'
                  f'[prices."{JUDGE}"]\ncost_per_1k_input = 1.0\ncost_per_1k_output = 2.0\n')
        manifest, ran = run(parse(text + verify), until="dedupe")
    assert ran == ["verify", "dedupe"]  # the filter's output is reused; dedupe's input changed
    stages = manifest["stages"]
    assert stages["verify"]["status"] == "done" and stages["dedupe"]["inputs"] == {
        "verified.parquet": stages["verify"]["output"]["sha256"]}
    counts = stages["verify"]["counts"]
    assert counts["rows_in"] == stages["filter"]["counts"]["rows_out"] == counts["rows_out"] + counts["rejected"]
    assert counts["rejected"] and counts["rows_out"]
    assert (tmp_path / "run" / "verify-cache").is_dir()
    run_dir = RunDir.open(tmp_path / "run")
    report = run_dir.report("verify")
    assert report.rows_out == stages["dedupe"]["counts"]["rows_in"]
    section = verification_section(run_dir)
    assert f"**{report.verified}** of {report.rows_in} rows were verified" in section
    assert f"`{report.judges[0].prompt_hash}`" in section and "Verification cost:" in section
    cost = report.judges[0].prompt_tokens / 1000 + 2 * report.judges[0].completion_tokens / 1000
    assert f"{cost:.2f}" in section
    assert gold_audit_section(run_dir).startswith("## Gold-label audit")


def test_skip_invalid_turns_rows_the_judge_cannot_be_shown_into_rejected_rows(tmp_path):
    rows = filtered_rows(3)
    rows[1] = {**rows[1], "reasoning": "  "}
    from curate.io import write_rows

    write_rows(rows, tmp_path / "kept.parquet")
    recording = write_judge(tmp_path / "judge.jsonl.gz", [rows[0], rows[2]], "agree")
    with replay_server(traces=recording, models=[JUDGE]) as server:
        with pytest.raises(Exception, match="no reasoning to judge"):
            _verify(tmp_path, server.url)
        assert server.log() == []  # refused before any request was paid for
        report = _verify(tmp_path, server.url, skip_invalid=True)
    assert report.rows_in == 3 and report.verified == 2 and report.reasons == {"invalid_input": 1}
