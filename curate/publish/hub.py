"""The one place curate talks to the Hugging Face Hub for publishing. The token comes from the environment
(`HF_TOKEN`, or the login `huggingface_hub` keeps): curate never reads it into a file, a log or the card."""

from __future__ import annotations

from pathlib import Path


class PushError(ValueError):
    """The Hub refused or could not be reached."""


def push_folder(folder: Path, *, repo_id: str, private: bool = False, commit_message: str | None = None) -> str:
    """Create the dataset repo if needed and upload `folder` (README card + data/). Returns the dataset URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                          commit_message=commit_message or "curate publish")
    except Exception as exc:  # auth, network, offline mode: one clear line (the token is never part of it)
        raise PushError(f"push to https://huggingface.co/datasets/{repo_id} failed: {type(exc).__name__}: {exc} "
                        "(set HF_TOKEN, or use --local-dir to write the files without network)") from exc
    return f"https://huggingface.co/datasets/{repo_id}"
