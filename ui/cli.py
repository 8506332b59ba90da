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
from data.settings import PathSettings, Settings, SettingsError, load_settings

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


def _paraphrases(settings: Settings, catalog) -> dict[str, str]:
    from data.paraphrases import load_paraphrases, paraphrases_for

    return paraphrases_for(catalog, load_paraphrases(settings.paths.paraphrases))


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.evaluation import format_table, plot_report, report_to_json, run_evaluation
    from ranking.blend import BlendError
    from ranking.cross_encoder import RerankerModelError

    catalog, interactions = _load_data(settings, args)
    paraphrases = _paraphrases(settings, catalog) if args.shopper == "paraphrased" else None
    _say(f"Evaluating on {len(catalog):,} items and {len(interactions):,} interactions ...")
    if args.conversation:
        return _eval_conversation(settings, args, catalog, interactions, paraphrases)
    try:
        report = run_evaluation(
            catalog,
            interactions,
            settings,
            answers=tuple(args.answers),
            systems=args.systems.split(",") if args.systems else None,
            max_episodes=args.episodes,
            vocabulary=args.shopper,
            order=args.order,
            feedback=args.feedback,
            paraphrases=paraphrases,
            validation=args.validation,
        )
    except (RerankerModelError, BlendError) as error:
        _say(f"error: {error}")
        return 1
    print(json.dumps(report_to_json(report), indent=2) if args.json else format_table(report))
    if args.plot:
        _say(f"HR@{report.settings.slate_size} against K drawn in {plot_report(report, args.plot)}")
    return 0


def _eval_conversation(
    settings: Settings, args: argparse.Namespace, catalog, interactions, paraphrases
) -> int:
    from assistant.conversation_eval import conversation_json, format_conversation, run_conversations
    from ranking.blend import BlendError
    from ranking.cross_encoder import RerankerModelError
    from retrieval.errors import RetrievalError

    try:
        report = run_conversations(
            settings,
            catalog,
            interactions,
            vocabulary=args.shopper,
            max_episodes=args.episodes,
            paraphrases=paraphrases,
            validation=args.validation,
        )
    except (RerankerModelError, BlendError, RetrievalError) as error:
        _say(f"error: {error}")
        return 1
    print(json.dumps(conversation_json(report), indent=2) if args.json else format_conversation(report))
    return 0


def _train_reranker(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.train_ranking import train_ranking

    catalog, interactions = _load_data(settings, args)
    paraphrases = _paraphrases(settings, catalog)
    if not paraphrases:
        _say(
            f"no stored paraphrases in {settings.paths.paraphrases}: training on the vague and specific shoppers"
        )
    command = "concierge train-reranker" + (" --blend-only" if args.blend_only else "")
    report = train_ranking(
        settings,
        catalog,
        interactions,
        paraphrases=paraphrases,
        progress=not args.quiet,
        skip_reranker=args.blend_only,
        command=command,
    )
    print(report.summary())
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


def _paraphrase(settings: Settings, args: argparse.Namespace) -> int:
    from assistant.llm import ModelUnavailableError
    from assistant.paraphrase import benchmark_targets, paraphrase_catalog
    from data.paraphrases import ParaphrasesLockedError

    catalog, interactions = _load_data(settings, args, need_interactions=args.targets_first)
    order = None
    if args.targets_first:
        order = benchmark_targets(catalog, interactions, settings)
        _say(
            f"{len(order):,} items first (test targets, the reranker's training items, validation targets), "
            "then the rest of the catalog"
        )
    try:
        report = paraphrase_catalog(
            _with_llm(settings, args),
            catalog,
            order=order,
            limit=args.limit,
            progress=not args.quiet,
            redo=args.redo,
        )
    except (ModelUnavailableError, ParaphrasesLockedError) as error:
        _say(f"error: {error}")
        return 1
    print(report.summary())
    return 0


def _index(settings: Settings, args: argparse.Namespace) -> int:
    from data.descriptions import descriptions_for_retrieval, load_descriptions
    from retrieval.errors import RetrievalError
    from retrieval.index import build_index
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


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from ui.serve import run_serve

    overrides = {key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None}
    if overrides:
        settings = replace(settings, server=replace(settings.server, **overrides))
    return run_serve(settings, strict=args.strict)


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from ui.chat import run_chat

    return run_chat(settings, args.script, args.json)


def _hash_password(settings: Settings, args: argparse.Namespace) -> int:
    """Print the hash of a console password read from stdin (typed twice at a terminal, never echoed)."""
    import getpass

    from ui.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Console password: ")
        if getpass.getpass("The same again: ") != password:
            _say("error: the two passwords differ; nothing was printed")
            return EXIT_DATA_ERROR
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        hashed = hash_password(password)
    except ValueError as error:
        _say(f"error: {error}")
        return EXIT_DATA_ERROR
    print(hashed)
    _say(
        "Set it as [server] console_password_hash in concierge.toml (or CONCIERGE_SERVER_CONSOLE_PASSWORD_HASH), "
        "with console_user, for the console at /console."
    )
    return 0


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
            "--artifacts",
            type=Path,
            help="folder for indexes and trained models (default: settings paths.artifacts, ./artifacts)",
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
    evaluate.add_argument(
        "--shopper",
        choices=("vague", "specific", "paraphrased"),
        default="vague",
        help="how simulated shoppers word their need (default: vague)",
    )
    evaluate.add_argument(
        "--order",
        choices=("need-first", "facets-first"),
        default="need-first",
        help="which questions shoppers answer first (default: need-first)",
    )
    evaluate.add_argument(
        "--feedback",
        type=int,
        default=0,
        help="how many of their own earlier items shoppers have liked before the slate (default: 0)",
    )
    evaluate.add_argument("--plot", type=Path, help="draw HR@10 against K, one line per system, into a PNG")
    evaluate.add_argument(
        "--conversation",
        action="store_true",
        help="the conversation benchmark: the engine, a fixed question order and no questions talk to shoppers",
    )
    evaluate.add_argument(
        "--validation",
        action="store_true",
        help="the validation shoppers instead of the test shoppers (to choose settings on)",
    )
    evaluate.set_defaults(handler=_eval)

    def quiet(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument("--quiet", action="store_true", help="no progress bars")
        return command

    def model_options(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument(
            "--provider", choices=("none", "local", "openai"), help="language model provider"
        )
        command.add_argument("--model", help="local: 'auto' or a model package; openai: the model name")
        return command

    def llm_options(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        model_options(command)
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
    paraphrase = model_options(
        quiet(data_command("paraphrase", "write a shopper's paraphrase of every item, for the benchmark"))
    )
    paraphrase.add_argument("--limit", type=int, help="paraphrase at most this many items now")
    paraphrase.add_argument(
        "--redo", action="store_true", help="write every item again, current records included"
    )
    paraphrase.add_argument(
        "--targets-first",
        action="store_true",
        help="first the test targets, the reranker's training items and the validation targets, then the rest",
    )
    paraphrase.set_defaults(handler=_paraphrase)
    index = quiet(data_command("index", "build or update the vector and lexical indexes"))
    index.add_argument("--rebuild", action="store_true", help="throw the index away and build it anew")
    index.set_defaults(handler=_index)
    build = llm_options(quiet(data_command("build", "describe thin items, then build or update the indexes")))
    build.add_argument("--rebuild", action="store_true", help="throw the index away and build it anew")
    build.set_defaults(handler=_build)

    train = quiet(
        data_command(
            "train-reranker",
            "fine-tune the cross-encoder on train users and fit the blends on validation episodes",
        )
    )
    train.add_argument(
        "--blend-only", action="store_true", help="keep the trained cross-encoder; only fit the blends again"
    )
    train.set_defaults(handler=_train_reranker)

    demo = data_command("demo", "build what is missing for the bundled sample and start the assistant")
    demo.add_argument("--check", action="store_true", help="prepare and report, but do not start the server")
    demo.set_defaults(handler=_demo)

    serve = data_command(
        "serve",
        "serve the shopper chat at / and the JSON API at /v1 (build the indexes first: concierge build)",
    )
    serve.add_argument("--host", help="address to listen on (default: settings server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: settings server.port, 7860)")
    serve.set_defaults(handler=_serve)

    chat = data_command("chat", "talk to the assistant in the terminal, or replay a conversation")
    chat.add_argument("--script", type=Path, help="a text file of shopper messages, one per line")
    chat.add_argument("--json", action="store_true", help="print every turn as JSON (with --script)")
    chat.set_defaults(handler=_chat)

    hashing = commands.add_parser(
        "hash-password",
        help="print the hash of a console password read from stdin, for [server] console_password_hash",
        description="Print the scrypt hash of a password for the agent console's login ([server] "
        "console_password_hash). The password is read from stdin (one line), or asked twice at a terminal.",
    )
    # Settings are not read: this is how a settings file with a broken hash gets a good one.
    hashing.set_defaults(handler=_hash_password, without_settings=True)

    convert = commands.add_parser("convert", help="convert a public data-set layout to the standard format")
    layouts = convert.add_subparsers(dest="layout", required=True, metavar="LAYOUT")
    lcrec = layouts.add_parser("lcrec", help="LC-Rec Amazon layout (*.item.json + *.inter.json)")
    lcrec.add_argument("items", help="the *.item.json file")
    lcrec.add_argument("interactions", help="the *.inter.json file")
    lcrec.add_argument("out_dir", help="folder for items.jsonl and interactions.jsonl")
    lcrec.add_argument("--strict", action="store_true", help="stop at the first bad record (exit status 2)")
    lcrec.set_defaults(handler=_convert)
    return parser


def _beside_catalog(settings: Settings, args: argparse.Namespace) -> Settings:
    """With ``--catalog``, generated descriptions and paraphrases are read and written beside that catalog
    (unless a settings file or variable names them): the bundled sample's belong to the bundled catalog."""
    if getattr(args, "catalog", None) is None:
        return settings
    defaults = PathSettings()
    folder = Path(args.catalog).parent
    moved = {
        name: folder / getattr(defaults, name).name
        for name in ("descriptions", "paraphrases")
        if getattr(settings.paths, name) == getattr(defaults, name)
    }
    return replace(settings, paths=replace(settings.paths, **moved)) if moved else settings


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = {
            key: value
            for key, value in (
                ("catalog", getattr(args, "catalog", None)),
                ("interactions", getattr(args, "interactions", None)),
                ("artifacts", getattr(args, "artifacts", None)),
            )
            if value is not None
        }
        settings = (
            Settings()
            if getattr(args, "without_settings", False)
            else load_settings(args.config, paths=paths)
        )
        return args.handler(_beside_catalog(settings, args), args)
    except (DataError, SettingsError) as error:
        _say(f"error: {error}")
        return EXIT_DATA_ERROR


if __name__ == "__main__":
    sys.exit(main())
