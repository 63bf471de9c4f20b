"""Test support shipped with curate: a replay OpenAI-compatible server and a tiny local model, used by the test suite,
the benchmarks and the pipeline's end-to-end test. Nothing here is imported by the CLI."""
