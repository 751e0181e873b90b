"""``chainrule generate``: write text with a trained language model."""

from __future__ import annotations

from pathlib import Path

import click

from chainrule.cli._run_folder import load_weights, read_config, read_vocabulary
from chainrule.cli._types import positive_float
from chainrule.runs import build_language_model


@click.command("generate", short_help="Write text with a trained language model.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--prompt", default="the", show_default=True,
              help="The words to start from (words the model does not know become <unk>).")
@click.option("--words", type=click.IntRange(min=1, max=100_000), default=30,
              show_default=True, help="How many words (a character model: characters) "
                                      "to write after the prompt.")
@click.option("--temperature", type=positive_float(), default=1.0,
              show_default=True,
              help="Below 1: safer, more repetitive text; above 1: more surprising text.")
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="Draw only from the K most likely next words.")
@click.option("--greedy", is_flag=True, help="Always take the most likely next word.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed the sampling (same seed, same text).")
def command(run_dir: Path, prompt: str, words: int, temperature: float, top_k: int | None,
            greedy: bool, seed: int | None) -> None:
    """Continue PROMPT with a language model trained by `chainrule train --out RUN_DIR`.

    Each next word is drawn from the model's softmax (divided by --temperature, cut to
    the --top-k most likely), or is the most likely one with --greedy. <unk> is never
    written; <eos> (the end of a sentence) starts a new line.

    \b
    Examples:
      chainrule generate runs/ptb --prompt "the meaning of life is" --words 30
      chainrule generate runs/ptb --prompt "the stock market" --greedy
      chainrule generate runs/ptb --temperature 0.8 --top-k 40 --seed 1
    """
    from chainrule.datasets import EOS
    from chainrule.nn import generate

    config = read_config(run_dir)
    if not config.is_language_model:
        raise click.BadParameter(f"{run_dir} holds a {config.model} network, not a language "
                                 "model (train one with --dataset ptb)",
                                 param_hint="RUN_DIR")
    vocabulary = read_vocabulary(run_dir)
    tokens = list(prompt) if config.chars else prompt.split()
    if not tokens:
        raise click.BadParameter("give at least one word", param_hint="--prompt")
    try:
        prompt_ids = vocabulary.encode(tokens)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--prompt") from None
    net = build_language_model(config, len(vocabulary))
    load_weights(net, run_dir, config)
    skip = [vocabulary.word_to_id[vocabulary.unk]] if vocabulary.unk else []
    new_ids = generate(net, prompt_ids.tolist(), words, temperature=temperature, top_k=top_k,
                       greedy=greedy, skip=skip, seed=seed)
    known = [w if w in vocabulary else vocabulary.unk for w in tokens]
    words = known + [vocabulary.id_to_word[i] for i in new_ids]
    if config.chars:  # a character model writes its own spaces and line breaks
        click.echo("".join(words))
        return
    text = " ".join(words)
    click.echo(text.replace(f" {EOS} ", "\n").replace(f" {EOS}", "").strip())
