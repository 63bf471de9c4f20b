"""A stage's command line, derived from its config class: one flag per option, with the option's default, choices,
range and help, so an option is declared once (in the stage's config) and the CLI never repeats it.

    app.command("dedupe")(stage_command(DedupeStage, help="...", example="curate dedupe -i kept.parquet ..."))

Every stage command also gets `-i/--input`, `-o/--output`, `--rejected`, `--report`, `--skip-invalid` (where the
stage reads rows) and one flag per named input file (`--questions`), runs the stage with a progress bar on a
terminal, and prints the report's summary.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from curate.stage import Stage, StageReport, field_extra

#: Run-level parameters every stage command has (not config options).
IO_PARAMS = ("input", "output", "rejected", "report", "skip_invalid")


def flag_of(config: type[BaseModel], name: str) -> str:
    return field_extra(config, name).get("flag") or "--" + name.replace("_", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type inside Optional, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def _range(info: FieldInfo) -> str:
    bounds = []
    for item in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                bounds.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
    return f" ({', '.join(bounds)})" if bounds else ""


def _cli_type(annotation: Any) -> tuple[Any, dict[str, Any], str]:
    """(the annotation typer sees, extra typer.Option arguments, how the value is turned back: plain|dict)."""
    base, _ = _unwrap(annotation)
    origin = typing.get_origin(base)
    if origin is Literal:  # typer shows and checks the choices
        return base, {}, "plain"
    if origin is list:
        (item,) = typing.get_args(base) or (str,)
        return list[item], {}, "plain"  # type: ignore[valid-type]
    if origin is dict:
        return list[str], {"metavar": "KEY=VALUE"}, "dict"
    if base in (int, float, str, bool, Path):
        return base, {}, "plain"
    raise TypeError(f"no command-line form for {annotation!r}: mark the option cli=False")


def config_parameters(config: type[BaseModel], skip: tuple[str, ...] = ()) -> list[tuple[inspect.Parameter, str]]:
    """One typer parameter per CLI-visible config field (with how its value converts back)."""
    params = []
    for name, info in config.model_fields.items():
        extra = field_extra(config, name)
        if name in skip or extra.get("cli") is False:
            continue
        annotation, option_args, kind = _cli_type(info.annotation)
        required = info.is_required()
        many = kind == "dict" or typing.get_origin(annotation) is list
        default: Any = ... if required else (None if many else info.get_default(call_default_factory=True))
        optional = many or (_unwrap(info.annotation)[1] and annotation is not bool)
        description = info.description or ""
        help_text = description + _range(info) + ("; repeat for several" if many and "repeat" not in description else "")
        if extra.get("metavar"):
            option_args["metavar"] = extra["metavar"]
        elif typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            option_args["metavar"] = f"<{getattr(item, '__name__', 'value')}>"
        if extra.get("argument"):
            param = typer.Argument(default, help=help_text, show_default=False)
        else:
            flag = flag_of(config, name)
            if annotation is bool and default is True:  # on by default: the flag that turns it off
                flag = f"{flag}/--no-{flag[2:]}"
            decls = [flag] + ([extra["short"]] if extra.get("short") else [])
            param = typer.Option(default, *decls, help=help_text,
                                 show_default=not (default is None or default is ... or isinstance(default, bool)),
                                 **option_args)
        params.append((inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=param,
                                         annotation=annotation | None if optional else annotation), kind))
    return params


def parse_pairs(flag: str, values: list[str] | None, metavar: str = "KEY=VALUE") -> dict[str, str] | None:
    """`--flag KEY=VALUE` given several times -> {KEY: VALUE}."""
    if values is None:
        return None
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise ValueError(f"bad {flag} {value!r}: expected {metavar}")
        out[key] = rest
    return out


def config_from_cli(config: type[BaseModel], values: dict[str, Any], kinds: dict[str, str]) -> Any:
    """The stage's config from the parsed flags; a bad value names its flag."""
    from pydantic import ValidationError

    from curate.stage import describe_errors

    options = {}
    for name, value in values.items():
        if kinds.get(name) == "dict":
            value = parse_pairs(flag_of(config, name), value, field_extra(config, name).get("metavar") or "KEY=VALUE")
        if value is None and typing.get_origin(_unwrap(config.model_fields[name].annotation)[0]) in (list, dict):
            continue  # not given: the config's default
        options[name] = value
    try:
        return config(**options)
    except ValidationError as exc:
        def name_of(loc: str) -> str:
            name = loc.split(".")[0]
            return flag_of(config, name) if name in config.model_fields else loc or "options"

        raise ValueError(describe_errors(exc, name_of=name_of)) from None


def stage_command(stage: type[Stage[Any, Any]], *, help: str, rejected_help: str | None = "write rejected rows (with "
                  "reason codes) here", input_help: str = "stage file (.parquet or .jsonl)", output_help: str = "kept rows",
                  output_decls: tuple[str, ...] = ("-o", "--output"), output_required: bool = True,
                  skip_config: tuple[str, ...] = (), show: Callable[[StageReport, Path | None], None] | None = None,
                  errors: Callable[[], Any] | None = None) -> Callable[..., None]:
    """The typer command of a stage. `show(report, output)` replaces the default summary; `errors()` is a context
    manager for the stage's own failures (around `user_errors`)."""
    config_params = config_parameters(stage.Config, skip_config)
    kinds = {p.name: kind for p, kind in config_params}
    kw = inspect.Parameter.KEYWORD_ONLY
    params = []
    if stage.reads_input:
        params.append(inspect.Parameter("input", kw, annotation=Path,
                                        default=typer.Option(..., "-i", "--input", help=input_help)))
    params.append(inspect.Parameter("output", kw, annotation=Path if output_required else Path | None,
                                    default=typer.Option(... if output_required else None, *output_decls,
                                                         help=output_help)))
    for name, spec in stage.files.items():
        params.append(inspect.Parameter(name, kw, annotation=Path if spec.required else Path | None,
                                        default=typer.Option(... if spec.required else None,
                                                             spec.flag or "--" + name.replace("_", "-"), help=spec.help)))
    if rejected_help is not None:
        params.append(inspect.Parameter("rejected", kw, annotation=Path | None,
                                        default=typer.Option(None, "--rejected", help=rejected_help)))
    params.append(inspect.Parameter("report", kw, annotation=Path | None,
                                    default=typer.Option(None, "--report", help="write the stage report (JSON) here")))
    if stage.reads_input:
        params.append(inspect.Parameter("skip_invalid", kw, annotation=bool, default=typer.Option(
            False, "--skip-invalid", help="reject bad rows (reason invalid_input) instead of stopping")))
    params += [p for p, _ in config_params]

    def command(**kwargs: Any) -> None:
        import contextlib

        from curate.commands.common import user_errors
        from curate.progress import stage_progress

        files = {name: kwargs.pop(name) for name in stage.files}
        io = {name: kwargs.pop(name, None) for name in IO_PARAMS}
        with user_errors(), (errors or contextlib.nullcontext)():
            config = config_from_cli(stage.Config, {k: v for k, v in kwargs.items() if k in kinds}, kinds)
            with stage_progress(stage.name) as progress:
                result = stage(config).run(io["input"], io["output"], rejected=io["rejected"], report=io["report"],
                                           progress=progress, skip_invalid=bool(io["skip_invalid"]), **files)
        (show or print_report)(result, io["output"])

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = help
    command.__name__ = stage.name
    return command


def print_report(report: StageReport, output: Path | None = None) -> None:
    """The one-screen summary of a stage: what it did, why rows were rejected, per source, its own figures, warnings."""
    from rich.markup import escape
    from rich.table import Table

    from curate.console import console

    console.print(escape(report.summary()) + (f" -> {escape(str(output))}" if output else ""), highlight=False,
                  soft_wrap=True)
    for line in report.details():
        console.print("  " + escape(line), highlight=False, soft_wrap=True)
    if report.reasons:
        table = Table(title="rejected, per primary reason", title_justify="left")
        table.add_column("reason")
        table.add_column("rows", justify="right")
        table.add_column("also", justify="right")
        for reason, count in report.reasons.items():
            table.add_row(reason, str(count), "")
        for reason, count in report.other_reasons.items():
            table.add_row(reason, "", str(count))
        console.print(table)
    if len(report.per_source) > 1 or report.rejected:
        table = Table(title="per source", title_justify="left")
        for column in ("source", "in", "kept", "top reasons"):
            table.add_column(column, justify="left" if column in ("source", "top reasons") else "right")
        for source, counts in report.per_source.items():
            top = ", ".join(f"{r} {c}" for r, c in sorted(counts.reasons.items(), key=lambda kv: -kv[1])[:3])
            table.add_row(source, str(counts.rows_in), str(counts.rows_out), top)
        console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
