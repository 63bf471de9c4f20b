"""Misuse of publish and scrub as a new user would try it (issue 24, items 1-4 and 6), each through the real CLI.

Nothing is faked: the full and read-only disks are real tmpfs mounts (the test is skipped where mounting is not
allowed), the PHI scans are the real scrub engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from curate.io import read_rows, write_rows
from tests.conftest import run_cli
from tests.test_publish import benchmark_files, own_rows

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

NOTE = "Patient John Smith, MRN 4829101, phone 617-555-0142"
PHI_VALUES = ("John", "Smith", "4829101", "617-555-0142")
BENCH = [f"--benchmark-path={k}={v}" for k, v in benchmark_files().items()]


def snapshot(folder) -> dict[str, bytes | str]:
    """Every entry under a folder, hidden ones included: file bytes, link targets, folders."""
    out: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        out[name] = (f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "dir")
    return out


def user_project(folder):
    """A user's own project: a git repository with a README, a source file and the rows to publish."""
    folder.mkdir()
    (folder / "README.md").write_text("# mine\n")
    (folder / "main.py").write_text("print('mine')\n")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    write_rows(own_rows(), folder / "rows.jsonl")
    return folder / "rows.jsonl"


def published_rows(folder) -> str:
    """Every published row of every config and split, as JSON text."""
    import pyarrow.parquet as pq

    return json.dumps([pq.read_table(p).to_pylist() for p in sorted(folder.rglob("*.parquet"))], default=str)


# ---------------------------------------------------------------- 1. the user's folder is never deleted


def test_a_users_folder_survives_every_local_dir_form(cli, tmp_path):
    project = tmp_path / "proj"
    rows = user_project(project)
    (tmp_path / "link").symlink_to(project)
    before = snapshot(project)
    assert ".git/HEAD" in before
    forms = [(tmp_path, "proj"), (tmp_path, "proj/"), (tmp_path, str(project)), (project, "."), (project, "../proj"),
             (tmp_path, "link"), (tmp_path, "link/")]
    for cwd, local_dir in forms:
        proc = cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", local_dir, "--evaluation-set", cwd=cwd)
        assert proc.returncode == 2, (local_dir, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and f"--local-dir {Path(local_dir)}:" in proc.stderr, proc.stderr
        assert snapshot(project) == before, local_dir
        assert (tmp_path / "link").is_symlink()
        assert not [p for p in (*tmp_path.iterdir(), *project.iterdir()) if p.name.startswith(".publish-")]
    # the input elsewhere: the folder is refused because curate did not write it, not because it holds the input
    outside = tmp_path / "rows.jsonl"
    write_rows(own_rows(), outside)
    proc = cli("publish", "-i", outside, "--repo-id", "me/x", "--local-dir", project, *BENCH)
    assert proc.returncode == 2 and "not a folder curate published" in proc.stderr, proc.stderr
    assert snapshot(project) == before


def test_an_earlier_publish_is_replaced_only_while_unchanged(cli, tmp_path):
    rows = tmp_path / "rows.jsonl"
    write_rows(own_rows(), rows)
    out = tmp_path / "out"
    cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", out, *BENCH, check=True)
    manifest = json.loads((out / ".curate-publish.json").read_text())
    assert sorted(manifest["files"]) == ["README.md", "data/train-00000-of-00001.parquet",
                                         "lineage/train-00000-of-00001.parquet",
                                         "prompt_completion/train-00000-of-00001.parquet"]
    cli("publish", "-i", rows, "--repo-id", "me/y", "--local-dir", out, *BENCH, check=True)  # replaced
    assert "me/y" in (out / "README.md").read_text()
    # once someone adds a file (a git repository to push with) or edits one, it is theirs: refused, kept
    subprocess.run(["git", "init", "-q", str(out)], check=True)
    (out / "README.md").write_text((out / "README.md").read_text() + "\nmy notes\n")
    before = snapshot(out)
    proc = cli("publish", "-i", rows, "--repo-id", "me/z", "--local-dir", out, *BENCH)
    assert proc.returncode == 2 and "changed since curate wrote it" in proc.stderr, proc.stderr
    assert ".git/ (added)" in proc.stderr and "README.md (changed)" in proc.stderr
    assert snapshot(out) == before
    # the current folder, even an earlier publish, is refused: it cannot be swapped away from under the shell
    fresh = tmp_path / "fresh"
    cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", fresh, *BENCH, check=True)
    before = snapshot(fresh)
    proc = cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", ".", *BENCH, cwd=fresh)
    assert proc.returncode == 2 and "is the current folder" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(fresh) == before and not list(tmp_path.glob(".publish-*"))


def test_a_symlinked_local_dir_stays_a_link_and_its_target_is_replaced(cli, tmp_path):
    rows = tmp_path / "rows.jsonl"
    write_rows(own_rows(), rows)
    real, link = tmp_path / "real", tmp_path / "link"
    cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", real, *BENCH, check=True)
    link.symlink_to(real)
    write_rows(own_rows(4), rows)
    cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", link, *BENCH, check=True)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert len(read_rows(real / "data" / "train-00000-of-00001.parquet")) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".publish-")]


# ---------------------------------------------------------------- 6. a full or read-only disk, before any work


@contextlib.contextmanager
def tmpfs(folder, *options: str):
    """A real tmpfs mounted at `folder` (skipped where this process may not mount one)."""
    folder.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), f"curate-test-{uuid.uuid4().hex[:8]}",
                           str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_local_dir_on_a_full_or_read_only_disk_is_one_line_before_the_scan(cli, tmp_path, disk):
    rows = own_rows()
    rows[1]["reasoning"] += f" {NOTE}."  # the PHI scan would refuse these rows: the folder is checked first
    src = tmp_path / "rows.jsonl"
    write_rows(rows, src)
    options = ("size=4m",) if disk == "full" else ("size=4m", "ro")
    with tmpfs(tmp_path / "disk", *options) as mount:
        if disk == "full":
            with open(mount / "filler", "wb") as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
        proc = cli("publish", "-i", src, "--repo-id", "me/x", "--local-dir", mount / "out", *BENCH)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        reason = "No space left on device" if disk == "full" else "Read-only file system"
        assert f"cannot write {mount / 'out'}: " in proc.stderr and reason in proc.stderr, proc.stderr
        assert "PHI" not in proc.stderr + proc.stdout
        assert sorted(p.name for p in mount.iterdir()) == (["filler"] if disk == "full" else [])


# ---------------------------------------------------------------- 2. the gate reads every published string


def test_the_gate_scans_every_published_string_whatever_the_column(cli, tmp_path):
    rows = own_rows()
    rows[1]["meta"] = {"ward": "B", "notes": [NOTE]}
    rows[2]["ward_note"] = NOTE  # a team's own column, named to be published
    rows[3]["review"] = {"verdict": "accepted", "reviewers": ["dr.alice"], "n_reviewers": 1, "comments": [NOTE]}
    src = tmp_path / "rows.jsonl"
    write_rows(rows, src)
    proc = cli("publish", "-i", src, "--repo-id", "me/x", "--local-dir", tmp_path / "out", *BENCH)
    assert proc.returncode == 2 and "2 of 6 rows with PHI found" in proc.stderr, proc.stderr
    assert "ward-1, ward-3" in proc.stderr  # ward_note is not published unless named, so not scanned either
    proc = cli("publish", "-i", src, "--repo-id", "me/x", "--local-dir", tmp_path / "out", "--extra-column",
               "ward_note", *BENCH)
    assert proc.returncode == 2 and "3 of 6 rows with PHI found" in proc.stderr, proc.stderr
    assert "ward-1, ward-2, ward-3" in proc.stderr and "MRN" in proc.stderr
    assert not any(value in proc.stderr + proc.stdout for value in PHI_VALUES)
    assert not (tmp_path / "out").exists()


def test_only_curates_columns_are_published_and_reviewers_are_pseudonymous(cli, tmp_path):
    rows = own_rows()
    for i, row in enumerate(rows):
        row["ward_secret"] = NOTE  # not named: not published, so not a finding either
        row["review"] = {"verdict": "accepted", "reviewers": ["dr.alice", "bob.jones"][: 1 + i % 2], "n_reviewers":
                         1 + i % 2, "comments": []}
    src = tmp_path / "rows.jsonl"
    write_rows(rows, src)
    out = tmp_path / "out"
    proc = cli("publish", "-i", src, "--repo-id", "me/x", "--local-dir", out, "--report", tmp_path / "r.json", *BENCH)
    assert proc.returncode == 0, proc.stderr
    assert "not published" in proc.stdout + proc.stderr and "ward_secret" in proc.stdout + proc.stderr
    text = published_rows(out) + (out / "README.md").read_text()
    assert "ward_secret" not in text and not any(value in text for value in PHI_VALUES)
    assert "dr.alice" not in text and "bob.jones" not in text and '"reviewer 2"' in text
    assert json.loads((tmp_path / "r.json").read_text())["left_out"] == ["ward_secret"]
    assert "PHI found in **0** of 6 rows" in (out / "README.md").read_text()


# ---------------------------------------------------------------- 4. the gold letter is the question file's


def test_a_gold_letter_edited_to_match_a_wrong_answer_is_refused(cli, tmp_path):
    rows = own_rows()
    questions = [{"id": r["question_id"], "source": r["source"], "split": r["split"], "question": r["question"],
                  "options": r["options"], "answer": r["gold"], "meta": {}} for r in rows]
    wrong = "A" if rows[2]["gold"] != "A" else "B"
    rows[2]["gold"] = rows[2]["answer"] = wrong  # the row agrees with itself; the question file does not
    rows[2]["text"] = rows[2]["text"][: -len("X</answer>")] + f"{wrong}</answer>"
    src, qfile = tmp_path / "rows.jsonl", tmp_path / "q.jsonl"
    write_rows(rows, src)
    write_rows(questions, qfile)
    proc = cli("publish", "-i", src, "--questions", qfile, "--repo-id", "me/x", "--local-dir", tmp_path / "o", *BENCH)
    assert proc.returncode == 2, proc.stderr
    assert "gold differs from the question file" in proc.stderr and "ward-2" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_gold_letter_not_among_the_options_is_refused(cli, tmp_path):
    rows = own_rows()
    rows[1]["gold"] = rows[1]["answer"] = "Z"
    rows[1]["text"] = rows[1]["text"][: -len("X</answer>")] + "Z</answer>"
    src = tmp_path / "rows.jsonl"
    write_rows(rows, src)
    proc = cli("publish", "-i", src, "--repo-id", "me/x", "--local-dir", tmp_path / "o", *BENCH)
    assert proc.returncode == 2 and "gold is not one of the options" in proc.stderr and "ward-1" in proc.stderr
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- 3. scrub scans the columns it was not told about


def test_scrub_scans_a_column_it_does_not_know_and_leaves_identifiers_alone(cli, tmp_path):
    ids = {"trace_id": "9f8e7d6c5b4a3210", "question_id": "pubmedqa:test:27643961", "prompt_hash": "0123abcd",
           "teacher": "Qwen/QwQ-32B", "gold": "A"}
    rows = [{"id": "n1", "note": NOTE},
            {**ids, "meta": {"pmid": "27643961", "native_id": "c68dea51-2e4e-4276-89b2-30b2337be400",
                             "meshes": ["Young Adult"], "seen_by": ["Dr. John Smith"]}}]
    src, out, rep = tmp_path / "notes.jsonl", tmp_path / "clean.jsonl", tmp_path / "r.json"
    write_rows(rows, src)
    proc = cli("scrub", "-i", src, "-o", out, "--report", rep, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    note, other = read_rows(out)
    assert note["note"] == "Patient <PERSON>, MRN <MRN>, phone <PHONE>" and note["scrub_columns"] == ["note"]
    assert {k: other[k] for k in ids} == ids  # identifiers and codes: not text, untouched
    assert other["meta"] == {**rows[1]["meta"], "seen_by": ["Dr. <PERSON>"]}
    report = json.loads(rep.read_text())
    assert report["rows_with_phi"] == 2 and report["columns_scanned"] == ["note", "meta"]
    assert report["columns_not_scanned"] == []
    # --columns chooses; the text columns left out are named, never passed silently
    proc = cli("scrub", "-i", src, "-o", out, "--report", rep, "--workers", "1", "--columns", "meta")
    assert proc.returncode == 0, proc.stderr
    assert "not scanned" in proc.stdout + proc.stderr and "note" in proc.stdout + proc.stderr
    assert json.loads(rep.read_text())["columns_not_scanned"] == ["note"]
    assert read_rows(out)[0]["note"] == NOTE


def test_surrogate_scrubbed_columns_pass_by_their_hash_and_later_text_is_scanned(tmp_path):
    """Surrogate values look like PHI to any scan: the gate checks what scrub wrote by its hash over the columns it
    scanned (`scrub_columns`), and scans what was added after (a clinician's comment) like any other text."""
    from curate.publish import PublishRefused, publish
    from curate.scrub import run_scrub

    rows = own_rows()
    rows[1]["meta"] = {"notes": [NOTE]}
    rows[2]["reasoning"] += f" {NOTE}."
    src, scrubbed = tmp_path / "rows.jsonl", tmp_path / "scrubbed.jsonl"
    write_rows(rows, src)
    run_scrub(src, scrubbed, policy="surrogate", seed=1, workers=1)
    clean = read_rows(scrubbed)
    assert "John Smith" not in json.dumps(clean) and clean[1]["scrub_columns"][-1] == "meta"
    folder = publish(scrubbed, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())
    assert "PHI found in **0** of 6 rows" in (folder / "README.md").read_text()
    clean[3]["review"] = {"verdict": "accepted", "reviewers": ["r"], "n_reviewers": 1, "comments": [NOTE]}
    clean[1]["meta"] = {"notes": [NOTE]}  # changed after scrub: no longer what scrub wrote
    write_rows(clean, scrubbed)
    with pytest.raises(PublishRefused, match=r"2 of 6 rows with PHI .*text changed since surrogate scrub.*ward-1, ward-3"):
        publish(scrubbed, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())


def test_a_run_replaces_its_own_publish_folder_from_before_the_marker_but_not_an_edited_one(tmp_path):
    """A run directory's publish folder written by a curate without `.curate-publish.json`: the run's manifest keeps
    its sha256, so `curate run` may replace it while it is unchanged (a user who upgrades and runs the demo again);
    once a file in it was edited, it is refused like any folder curate cannot vouch for."""
    from tests.pipeline_support import config_text, copy_demo

    files = copy_demo(tmp_path / "demo")
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(config_text({"medqa": files["medqa"]}, run_dir, scrub=False, limits={"medqa": 8}))
    assert run_cli("run", config).returncode == 0
    (run_dir / "publish" / ".curate-publish.json").unlink()  # as an earlier curate left it
    again = run_cli("run", config, "--from", "publish")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (run_dir / "publish" / ".curate-publish.json").exists()
    (run_dir / "publish" / ".curate-publish.json").unlink()
    card = run_dir / "publish" / "README.md"
    card.write_text(card.read_text() + "\nmy notes\n")
    refused = run_cli("run", config, "--from", "publish")
    assert refused.returncode != 0 and "not a folder curate published" in " ".join(refused.stderr.split())
    assert card.read_text().endswith("my notes\n")
