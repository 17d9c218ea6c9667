"""`leadscore` command line: argument parsing only; the work is in the stage modules (pipeline.stages).

Exit codes: 0 ok, 1 internal error, 2 bad params or usage, 3 bad input data, 4 model missing or
mismatched, 5 MLflow registry unreachable or damaged, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from pipeline import __version__
from pipeline.config import DEFAULT_PARAMS, Settings, load_settings, read_settings, settings_yaml
from pipeline.errors import LeadscoreError
from pipeline.runtime import keep_freed_memory, lean_memory

log = logging.getLogger("leadscore")


def _stage(name: str) -> Callable[..., Any]:
    """The stage's ``run`` function, imported only when asked for (MLflow is slow to import)."""
    import importlib

    module = importlib.import_module(f"pipeline.stages.{name}")
    runner: Callable[..., Any] = module.run
    return runner


STAGES = {
    "generate": "write the synthetic CRM export to paths.raw (source.kind: synthetic)",
    "ingest": "validate the export into paths.interim; quarantine unusable rows with their reason",
    "features": "build the point-in-time feature matrix and feature spec in paths.features",
    "train": "train LightGBM on a time split, calibrate it, save models/, register it in MLflow",
    "evaluate": "holdout metrics vs baselines, the gates, promote to champion or not, model card, plots",
    "score": "score every open deal with the champion: probability, score, grade, top reasons -> paths.scores",
}
SCORE_HELP = STAGES["score"] + """

With --input and --output: score any feature matrix (CSV or Parquet) in chunks, with memory flat
in the file's size, a progress bar on a terminal, and the output written atomically, in input
order. Rows that cannot be scored go to <output>.quarantine.csv with their reason; the drift
report (PSI per feature and of the score) to <output>.drift.json.

  leadscore score --input data/features/features.parquet --output scores.parquet
  leadscore score --input big.parquet --output scores.csv --engine dask --scheduler tcp://host:8786

With --export and --output: the nightly job. Tonight's raw CRM export (the folder of its files) is
read with the mapping, and its features built with the settings, the champion was trained with
(stored with the model: params.yaml edits since don't change them), as of --scored-at (default: the
export's own date, midnight after its latest date). Only open records are scored; closed ones are
counted and skipped; quarantined rows go to <output>.quarantine.csv with their reason. Every run is
appended to the score history (paths.history) with the change since each lead's last run and why.

  leadscore score --export /exports/crm/tonight --output scores/tonight.csv --scored-at 2026-01-05T02:00:00Z
"""
EXPLAIN_HELP = "print one scored lead's card: score, grade, reasons, what would raise it, checklist, next step"
ROLLBACK_HELP = ("give the champion alias back to the previous champion (or to --to VERSION) in the MLflow "
                 "registry; then `dvc repro -f score` (or `leadscore score`) rescores with it")
RUN_HELP = ("run every stage in order without DVC: generate (only for source.kind synthetic), ingest, features, "
            "train, evaluate, score")
INSPECT_HELP = "profile an unseen CRM export (CSV or Parquet) and draft the source: section of params.yaml for it"
SERVE_HELP = ("the lead board as a web app for the sales team: filters, search, lead cards with their history, "
              "and the reps' verdicts and overrides stored in the feedback database (docs/reps.md)")
USERS_HELP = ("the users of the feedback database (`leadscore serve` signs them in): reps, who see the leads "
              "of their CRM owner value, and managers, who see every lead (docs/feedback.md)")
PARAMS_HELP = ("print the settings in effect, every key, as YAML: the params file layered over the defaults "
               "(e.g. an example's source: section over params.yaml's values)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadscore", description="Predictive lead scoring with reasons a sales rep can read.")
    parser.add_argument("--version", action="version", version=f"leadscore {__version__}")
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    flags.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    flags.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    common = argparse.ArgumentParser(add_help=False, parents=[flags])
    common.add_argument("--params", default=str(DEFAULT_PARAMS), metavar="FILE",
                        help="params file to read (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in STAGES.items():
        if name != "score":
            sub.add_parser(name, parents=[common], help=help_text, description=help_text)
    features = sub.choices["features"]
    features.add_argument("--engine", choices=("local", "dask"), default="local",
                          help="local (this process) or dask (the intent features on a Dask cluster; same matrix)")
    features.add_argument("--scheduler", metavar="ADDRESS", help="--engine dask: an existing scheduler, e.g. "
                          "tcp://10.0.0.5:8786, whose workers see the interim files at the same path (default: a "
                          "LocalCluster on this machine)")
    features.add_argument("--workers", type=int, metavar="N", help="--engine dask: LocalCluster workers (default 2)")
    score = sub.add_parser("score", parents=[common], help=STAGES["score"], description=SCORE_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    score.add_argument("--input", metavar="PATH", help="a feature matrix to score (CSV, Parquet, or a folder of "
                       "Parquet files), streamed in chunks; without it, the DVC stage's open deals")
    score.add_argument("--export", metavar="DIR", help="a raw CRM export (the folder of its files), read with the "
                       "champion's own mapping and feature settings; its open leads are scored")
    score.add_argument("--output", metavar="PATH", help="where to write the scores (.csv or .parquet), atomically")
    score.add_argument("--model", metavar="VERSION", help="registry version number or alias, or a folder with "
                       "model.txt and model_meta.json (default: the champion)")
    score.add_argument("--scored-at", metavar="TIMESTAMP", help="the scored_at stamp, e.g. 2026-01-31T02:00:00Z "
                       "(--input default: now; --export: the instant the features are taken as of, default the "
                       "export's own date); a rerun with the same stamp writes byte-identical output")
    score.add_argument("--no-explain", action="store_true",
                       help="scores, grades, next steps and the checklist only: no reasons (skips SHAP)")
    score.add_argument("--chunk-rows", type=int, metavar="N", help="rows per chunk (default: score.chunk_rows)")
    score.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="local (one process, streaming) or dask (partitions on a Dask cluster)")
    score.add_argument("--scheduler", metavar="ADDRESS", help="--engine dask: an existing scheduler, e.g. "
                       "tcp://10.0.0.5:8786 (default: a LocalCluster on this machine)")
    score.add_argument("--workers", type=int, metavar="N", help="--engine dask: LocalCluster workers (default 2)")
    sub.add_parser("run", parents=[common], help=RUN_HELP, description=RUN_HELP)
    explain = sub.add_parser("explain", parents=[common], help=EXPLAIN_HELP, description=EXPLAIN_HELP)
    explain.add_argument("lead_id", metavar="LEAD_ID", help="the record id, as in the scores file")
    explain.add_argument("--scores", metavar="PATH", help="a scores .parquet written by `score --export` "
                         "(default: the score stage's paths.scores/scores.parquet)")
    explain.add_argument("--runs", type=int, default=5, metavar="N", help="history runs to show (default 5; 0: none)")
    rollback = sub.add_parser("rollback", parents=[common], help=ROLLBACK_HELP, description=ROLLBACK_HELP)
    rollback.add_argument("--to", metavar="VERSION", help="the registry version to make champion "
                          "(default: the one that held the alias before the current champion)")
    sub.add_parser("params", parents=[common], help=PARAMS_HELP, description=PARAMS_HELP)
    serve = sub.add_parser("serve", parents=[common], help=SERVE_HELP, description=SERVE_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine "
                       "only; any other address requires every user to sign in)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    serve.add_argument("--scores", metavar="PATH", help="a scores .parquet (default: the score stage's "
                       "paths.scores/scores.parquet)")
    serve.add_argument("--sign-in", action="store_true", help="require sign-in on this machine too")
    users = sub.add_parser("users", help=USERS_HELP, description=USERS_HELP)
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add_user = users_sub.add_parser("add", parents=[common], help="add a user (the password is asked for, twice)")
    add_user.add_argument("name", metavar="NAME", help="the sign-in name (letters, digits, . _ @ -)")
    add_user.add_argument("--owner", required=True, help="the CRM owner value of this rep's leads, as in the "
                          "scores' owner column (e.g. 'Ana Lima')")
    add_user.add_argument("--manager", action="store_true", help="a manager, who sees and may change every lead")
    add_user.add_argument("--password-stdin", action="store_true", help="read the password from the first line "
                          "of standard input instead of asking (for scripts)")
    users_sub.add_parser("list", parents=[common], help="list the users: name, role, CRM owner, added")
    inspect = sub.add_parser("inspect", parents=[flags], help=INSPECT_HELP, description=INSPECT_HELP)
    inspect.add_argument("file", metavar="FILE", help="the CRM export to profile (CSV or Parquet)")
    inspect.add_argument("--output", metavar="PATH",
                         help="where to write the draft (default: <file stem>.source.yaml in this folder)")
    inspect.add_argument("--delimiter", help="CSV delimiter (default: detected among , ; tab |)")
    inspect.add_argument("--encoding", help="file encoding (default: detected: utf-8, utf-8-sig, cp1252, latin-1)")
    return parser


TABLE_OUTPUTS = (".csv", ".csv.gz", ".parquet", ".pq")  # what `score --output` writes (.csv.gz: gzip-compressed)
YAML_OUTPUTS = (".yaml", ".yml")


def _check_paths(*, output: str | None, inputs: dict[str, str | None], suffixes: tuple[str, ...]) -> None:
    """The path checks of every command that writes a file, before any work: each input a regular file
    or folder (not a FIFO or device), and the output a writable file of a known type that is none of
    the inputs under any spelling (pipeline.io.files.check_output_path)."""
    from pathlib import Path

    from pipeline.io.files import check_input_file, check_output_path

    given = {flag: Path(path) for flag, path in inputs.items() if path}
    for flag, path in given.items():
        check_input_file(path, flag=flag)
    if output:
        check_output_path(Path(output), flag="--output", inputs=given.values(), suffixes=suffixes)


def _check_scores_set(path: Any, *, refuse: bool) -> None:
    """Refuse (or warn about) a scores file whose set of outputs is mixed: a run killed while publishing."""
    from pipeline.contracts.files import SCORES_MANIFEST
    from pipeline.io.files import check_set, read_json
    from pipeline.scoring.batch import MANIFEST_SUFFIX, side_path

    for manifest in (path.parent / SCORES_MANIFEST, side_path(path, MANIFEST_SUFFIX)):
        try:
            named = path.name in read_json(manifest).get("members", {})
        except (OSError, ValueError, AttributeError):
            named = manifest.exists()  # unreadable: check_set says so
        if not named:
            continue
        if refuse:
            check_set(manifest)
        else:
            from pipeline.io.files import verify_set

            for problem in verify_set(manifest):
                log.warning("%s: %s; rerun the command that wrote it", manifest, problem)


def _inspect(args: argparse.Namespace) -> None:
    from pathlib import Path

    from pipeline.data.inspect import run

    _check_paths(output=args.output, inputs={"inspect": args.file}, suffixes=YAML_OUTPUTS)
    run(Path(args.file), output=Path(args.output) if args.output else None, delimiter=args.delimiter,
        encoding=args.encoding)


def _explain(settings: Settings, lead_id: str, *, scores_path: str | None = None, runs: int = 5) -> None:
    from pathlib import Path

    import pandas as pd
    from rich.console import Console

    from pipeline.contracts.files import SCORES_PARQUET
    from pipeline.errors import ConfigError, DataError
    from pipeline.reporting.lead_card import lead_card
    from pipeline.scoring.history import History

    if runs < 0:
        raise ConfigError("explain: --runs must be 0 or more")
    path = Path(scores_path) if scores_path else settings.paths.scores / SCORES_PARQUET
    if not str(path).lower().endswith(".parquet"):
        raise ConfigError(f"explain: --scores {path} must be a .parquet scores file (the CSV has no reasons' detail)")
    if not path.exists():
        raise DataError(f"missing {path}; run `leadscore score` (or `make run`) first")
    _check_scores_set(path, refuse=True)
    scores = pd.read_parquet(path)
    found = scores[scores["record_id"].astype(str) == lead_id]
    if found.empty:
        examples = ", ".join(scores["record_id"].astype(str).head(3))
        raise DataError(f"no scored lead has id {lead_id!r} in {path} ({len(scores)} open leads scored"
                        + (f"; ids look like {examples}" if examples else "") + "). Closed deals are not scored.")
    row = found.iloc[0]
    history = None
    if runs and settings.history.enabled:
        from pipeline.mlops.tracking import registered_name

        history = History(settings.paths.history, registered_name(settings.registry, settings.source)).lead(
            lead_id, last=runs)
    Console().print(lead_card(row, history=history))


def _rollback(settings: Settings, to_version: str | None) -> None:
    from pipeline.mlops.registry import rollback
    from pipeline.mlops.tracking import Store

    store = Store.of(settings.registry, source=settings.source, mlflow_db=settings.paths.mlflow_db)
    new, old, warnings = rollback(store, to_version)
    for warning in warnings:
        log.warning("%s", warning)
    again = "again" if new.was_champion else "now (it never was before)"
    print(f"{store.model_name}: version {new.version} is the champion {again}; version {old.version} is kept as "
          "previous_champion. Rescore: dvc repro -f score")


def _score(settings: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path

    from pipeline.errors import ConfigError

    if args.export:
        _score_export(settings, args)
        return
    if not (args.input or args.output):  # the DVC stage: its options come from params.yaml
        given = [flag for flag, value in (("--model", args.model), ("--scored-at", args.scored_at),
                                          ("--no-explain", args.no_explain), ("--chunk-rows", args.chunk_rows),
                                          ("--engine", args.engine != "local"), ("--scheduler", args.scheduler),
                                          ("--workers", args.workers)) if value]
        if given:
            raise ConfigError(f"score: {', '.join(given)} only apply with --input and --output "
                              "(without them, `leadscore score` is the DVC stage, set by params.yaml)")
        _stage("score")(settings)
        return
    if not (args.input and args.output):
        raise ConfigError("score: --input and --output go together (without both, it is the DVC stage)")
    _check_paths(output=args.output, inputs={"--input": args.input}, suffixes=TABLE_OUTPUTS)
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise ConfigError("score: --chunk-rows must be at least 1")
    if args.scored_at is not None:
        from datetime import datetime

        try:
            datetime.fromisoformat(args.scored_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"score: --scored-at {args.scored_at!r} is not an ISO timestamp "
                              "(e.g. 2026-01-31T02:00:00Z)") from exc
    if args.engine == "dask" and args.chunk_rows is not None:
        raise ConfigError("score: --chunk-rows applies to --engine local; Dask partitions are the input's "
                          "row groups (Parquet) or 64 MB blocks (CSV)")
    from pipeline.stages.score import run_batch

    summary = run_batch(settings, input_path=Path(args.input), output_path=Path(args.output), model_name=args.model,
                        chunk_rows=args.chunk_rows, scored_at=args.scored_at,
                        explain=False if args.no_explain else None, engine=args.engine, scheduler=args.scheduler,
                        workers=args.workers, progress=sys.stderr.isatty() and not args.quiet)
    print(f"scored {summary.rows_out:,} of {summary.rows_in:,} rows -> {summary.output}"
          + (f"; {summary.quarantined:,} quarantined -> {summary.quarantine_path}" if summary.quarantined else "")
          + (f"; drift report -> {summary.drift_path}" if summary.drift_path else ""))


def _score_export(settings: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path

    from pipeline.errors import ConfigError

    if args.input or not args.output:
        raise ConfigError("score: --export needs --output (where the scores go) and takes no --input")
    given = [flag for flag, value in (("--no-explain", args.no_explain), ("--chunk-rows", args.chunk_rows),
                                      ("--engine", args.engine != "local"), ("--scheduler", args.scheduler),
                                      ("--workers", args.workers)) if value]
    if given:
        raise ConfigError(f"score: {', '.join(given)} do not apply with --export (it scores here, in chunks of "
                          "score.chunk_rows, with reasons)")
    _check_paths(output=args.output, inputs={"--export": args.export}, suffixes=TABLE_OUTPUTS)
    from pipeline.stages.score import run_export

    summary = run_export(settings, export_dir=Path(args.export), output_path=Path(args.output),
                         model_name=args.model, scored_at=args.scored_at,
                         progress=sys.stderr.isatty() and not args.quiet)
    print(f"scored {summary.scored:,} open leads as of {summary.scored_at} -> {summary.output}; "
          f"{summary.closed_skipped:,} closed skipped"
          + (f"; {summary.quarantined:,} quarantined -> {summary.quarantine_path}" if summary.quarantined else "")
          + (f"; history -> {summary.history_path}" if summary.history_path else ""))


def _users(settings: Settings, args: argparse.Namespace) -> None:
    import getpass

    from pipeline.errors import ConfigError
    from pipeline.feedback import FeedbackStore

    store = FeedbackStore.from_settings(settings)
    if args.users_command == "list":
        for user in store.users():
            print(f"{user.name}\t{user.role}\t{user.owner}\t{user.created_at:%Y-%m-%d}")
        return
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("users add: the two passwords differ; nothing was saved")
    user = store.add_user(args.name, password=password, owner=args.owner, role="manager" if args.manager else "rep")
    print(f"added {user.role} {user.name} (CRM owner {user.owner!r}) to {store.shown_url}")


def _run_all(settings: Settings) -> None:
    for name in STAGES:
        if name == "generate" and settings.source.kind != "synthetic":
            continue
        log.info("stage %s", name)
        _stage(name)(settings)


def _features(settings: Settings, args: argparse.Namespace) -> None:
    from pipeline.errors import ConfigError

    if args.engine != "dask" and (args.scheduler or args.workers is not None):
        raise ConfigError("features: --scheduler and --workers apply to --engine dask")
    if args.scheduler and args.workers is not None:
        raise ConfigError("features: --workers sizes a LocalCluster; an existing --scheduler has its own workers")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("features: --workers must be at least 1")
    _stage("features")(settings, engine=args.engine, scheduler=args.scheduler, workers=args.workers)


def _configure_logging(*, verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(verbose=args.verbose, quiet=args.quiet)
    if args.command in ("ingest", "generate", "evaluate"):
        # Their limit is the peak, not page faults: keeping freed memory raised ingest's from 2.3 to
        # 3.0 GB at 1M leads for no gain in time, generate's from 2.1 to 2.6 GB (11.6 GB at 5M leads),
        # evaluate's, whose four backtest trainings each leave their freed memory behind, to 12.9 GB at
        # 5M; jemalloc returns Arrow's freed buffers sooner.
        lean_memory()
    else:
        keep_freed_memory()  # one batch command per process: reuse memory rather than fault it in again
    started = time.perf_counter()
    try:
        if args.command == "inspect":
            _inspect(args)
        elif args.command == "params":
            print(settings_yaml(read_settings(args.params)), end="")
        elif args.command == "run":
            _run_all(load_settings(args.params))
        elif args.command == "explain":
            _explain(load_settings(args.params), args.lead_id, scores_path=args.scores, runs=args.runs)
        elif args.command == "rollback":
            _rollback(load_settings(args.params), args.to)
        elif args.command == "score":
            _score(load_settings(args.params), args)
        elif args.command == "users":
            _users(load_settings(args.params), args)
        elif args.command == "serve":
            from pathlib import Path

            from pipeline.contracts.files import SCORES_PARQUET
            from pipeline.serve.run import serve

            settings = load_settings(args.params)
            _check_scores_set(Path(args.scores) if args.scores else settings.paths.scores / SCORES_PARQUET,
                              refuse=False)
            serve(settings, host=args.host, port=args.port, scores=Path(args.scores) if args.scores else None,
                  sign_in=args.sign_in)
        elif args.command == "features":
            _features(load_settings(args.params), args)
        else:
            settings = load_settings(args.params)
            _stage(args.command)(settings)
    except LeadscoreError as exc:
        print(f"leadscore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"leadscore {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`leadscore inspect FILE | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug, not bad input: say so plainly
        if args.debug:
            traceback.print_exc()
        print(f"leadscore {args.command}: internal error: {type(exc).__name__}: {exc}"
              + ("" if args.debug else " (rerun with --debug for the traceback)"), file=sys.stderr)
        return 1
    log.info("%s done in %.1f s", args.command, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
