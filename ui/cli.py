"""The ``concierge`` command line.

Light commands (``--help``, ``inventory``, ``convert``) import only the data layer, so they start in well under a
second; commands that need models import them inside their handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from data.errors import DataError
from data.settings import Settings, SettingsError, load_settings

EXIT_DATA_ERROR = 2


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _policy(args: argparse.Namespace):
    from data.load import Policy

    return Policy.STRICT if args.strict else Policy.LENIENT


def _load_data(settings: Settings, args: argparse.Namespace, *, need_interactions: bool = True):
    """Load the catalog and interactions the settings name, reporting skipped rows on stderr.

    A ``--catalog`` given without ``--interactions`` means a catalog alone: the bundled interactions belong to
    the bundled catalog. Then interactions are ``None``, or an error where the command needs them.
    """
    from data.load import load_catalog, load_interactions

    catalog, report = load_catalog(settings.paths.catalog, policy=_policy(args), settings=settings.data)
    reports = [report]
    interactions = None
    if getattr(args, "catalog", None) is not None and getattr(args, "interactions", None) is None:
        if need_interactions:
            raise SettingsError(f"'{args.command}' needs --interactions for the catalog {args.catalog}")
    else:
        interactions, report = load_interactions(
            settings.paths.interactions, catalog, policy=_policy(args), settings=settings.data
        )
        reports.append(report)
    for report in reports:
        if report.rows_skipped or report.notes:
            _say(report.summary())
    return catalog, interactions


def _inventory(settings: Settings, args: argparse.Namespace) -> int:
    from data.inventory import build_inventory, format_inventory

    catalog, interactions = _load_data(settings, args, need_interactions=False)
    inventory = build_inventory(catalog, interactions)
    print(json.dumps(inventory.to_json(), indent=2) if args.json else format_inventory(inventory))
    return 0


def _convert(settings: Settings, args: argparse.Namespace) -> int:
    from data.convert import read_lcrec
    from data.load import write_interactions, write_items

    converted = read_lcrec(Path(args.items), Path(args.interactions), strict=args.strict)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_items = write_items(converted.items, out / "items.jsonl")
    n_events = write_interactions(converted.interactions, out / "interactions.jsonl")
    for issue in converted.issues:
        _say(f"skipped: {issue}")
    print(
        f"Wrote {n_items:,} items and {n_events:,} interactions to {out}"
        + (f"; skipped {len(converted.issues):,} records (listed above)" if converted.issues else "")
    )
    return 0


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.evaluation import format_table, report_to_json, run_evaluation

    catalog, interactions = _load_data(settings, args)
    _say(f"Evaluating on {len(catalog):,} items and {len(interactions):,} interactions ...")
    report = run_evaluation(
        catalog,
        interactions,
        settings.eval,
        answers=tuple(args.answers),
        systems=args.systems.split(",") if args.systems else None,
        max_episodes=args.episodes,
    )
    print(json.dumps(report_to_json(report), indent=2) if args.json else format_table(report))
    return 0


def _with_llm(settings: Settings, args: argparse.Namespace) -> Settings:
    overrides = {key: value for key, value in (("provider", args.provider), ("model", args.model)) if value}
    return replace(settings, llm=replace(settings.llm, **overrides)) if overrides else settings


def _describe(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.describe import Redo, describe_catalog
    from data.descriptions import DescriptionsLockedError

    catalog, _ = _load_data(settings, args, need_interactions=False)
    try:
        report = describe_catalog(
            _with_llm(settings, args),
            catalog,
            limit=args.limit,
            progress=not args.quiet,
            redo=Redo(args.redo),
        )
    except DescriptionsLockedError as error:
        _say(f"error: {error}")
        return 1
    print(report.summary())
    return 0


def _index(settings: Settings, args: argparse.Namespace) -> int:
    from data.descriptions import descriptions_for_retrieval, load_descriptions
    from retrieval.index import RetrievalError, build_index
    from retrieval.lexical import LexicalIndex

    catalog, _ = _load_data(settings, args, need_interactions=False)
    descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
    _say(f"Indexing {len(catalog):,} items and {len(descriptions):,} generated descriptions ...")
    try:
        report = build_index(settings, catalog, descriptions, rebuild=args.rebuild, progress=not args.quiet)
    except RetrievalError as error:
        _say(f"error: {error}")
        return 1
    LexicalIndex.load_or_build(settings.paths.artifacts / "lexical", catalog, descriptions)
    print(report.summary())
    print(f"lexical index: {settings.paths.artifacts / 'lexical'}")
    return 0


def _build(settings: Settings, args: argparse.Namespace) -> int:
    return _describe(settings, args) or _index(settings, args)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from ui.demo import run_demo

    return run_demo(settings, strict=args.strict, open_server=not args.check)


def _answers(text: str) -> list[int]:
    """``"3"`` means K = 3 only; ``"0-5"`` a range; ``"0,2,4"`` a list."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            values = list(range(low, high + 1))
        else:
            values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--answers expects K, K-K or K,K,...; got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"--answers needs counts >= 0; got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="concierge", description="Concierge: a conversational shopping assistant for new shoppers."
    )
    parser.add_argument(
        "--config", type=Path, help="settings file (TOML); default: concierge.toml if present"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--catalog", type=Path, help="catalog file (.jsonl, .csv, .parquet); default: sample"
        )
        command.add_argument(
            "--interactions", type=Path, help="interactions file; default: the bundled sample"
        )
        command.add_argument(
            "--strict", action="store_true", help="stop at the first bad row (exit status 2)"
        )
        return command

    inventory = data_command("inventory", "health report of a catalog and its interactions")
    inventory.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inventory.set_defaults(handler=_inventory)

    evaluate = data_command("eval", "run every ranking system on the cold-start benchmark")
    evaluate.add_argument(
        "--answers", type=_answers, default=list(range(6)), help="answered questions K: 3, 0-5 or 0,2,4"
    )
    evaluate.add_argument("--systems", help="comma-separated system names (default: all registered)")
    evaluate.add_argument("--episodes", type=int, help="cap on the number of test episodes")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of a table")
    evaluate.set_defaults(handler=_eval)

    def quiet(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--quiet", action="store_true", help="no progress bars")
        return command

    def llm_options(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument(
            "--provider", choices=("none", "local", "openai"), help="language model provider"
        )
        command.add_argument("--model", help="local: 'auto' or a model package; openai: the model name")
        command.add_argument("--limit", type=int, help="describe at most this many items now")
        command.add_argument(
            "--redo",
            choices=("stale", "other-models", "all"),
            default="stale",
            help="which stored descriptions to write again: those of changed items (default), also those the "
            "current model did not write, or all",
        )
        return command

    describe = llm_options(
        quiet(data_command("describe", "write descriptions for items whose own text is thin"))
    )
    describe.set_defaults(handler=_describe)
    index = quiet(data_command("index", "build or update the vector and lexical indexes"))
    index.add_argument("--rebuild", action="store_true", help="throw the index away and build it anew")
    index.set_defaults(handler=_index)
    build = llm_options(quiet(data_command("build", "describe thin items, then build or update the indexes")))
    build.add_argument("--rebuild", action="store_true", help="throw the index away and build it anew")
    build.set_defaults(handler=_build)

    demo = data_command("demo", "build what is missing for the bundled sample and start the assistant")
    demo.add_argument("--check", action="store_true", help="prepare and report, but do not start the server")
    demo.set_defaults(handler=_demo)

    convert = commands.add_parser("convert", help="convert a public data-set layout to the standard format")
    layouts = convert.add_subparsers(dest="layout", required=True, metavar="LAYOUT")
    lcrec = layouts.add_parser("lcrec", help="LC-Rec Amazon layout (*.item.json + *.inter.json)")
    lcrec.add_argument("items", help="the *.item.json file")
    lcrec.add_argument("interactions", help="the *.inter.json file")
    lcrec.add_argument("out_dir", help="folder for items.jsonl and interactions.jsonl")
    lcrec.add_argument("--strict", action="store_true", help="stop at the first bad record (exit status 2)")
    lcrec.set_defaults(handler=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = {
            key: value
            for key, value in (
                ("catalog", getattr(args, "catalog", None)),
                ("interactions", getattr(args, "interactions", None)),
            )
            if value is not None
        }
        settings = load_settings(args.config, paths=paths)
        return args.handler(settings, args)
    except (DataError, SettingsError) as error:
        _say(f"error: {error}")
        return EXIT_DATA_ERROR


if __name__ == "__main__":
    sys.exit(main())
