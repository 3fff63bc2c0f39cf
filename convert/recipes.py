"""Convert a known, already-downloaded fairseq model archive with its known best generation defaults.

Example::

    python convert/recipes.py wmt19-en-de ~/data/wmt19.en-de.joined-dict.ensemble wmt19-en-de
    python convert/recipes.py wmt16-en-de-dist-6-1 ~/data wmt16-en-de-dist-6-1   # finds the archive by name
    python convert/recipes.py wmt19-lm-de ~/data/wmt19.de wmt19-lm-de              # a WMT19 transformer_lm
    python convert/recipes.py --list

ARCHIVE is the extracted archive folder, a folder that contains it under its
usual name, or the .tar.gz/.tar.bz2 itself. Dictionaries and BPE codes are taken
from the archive (or its data-bin/); the allenai archives ship them in a
companion archive, looked up next to ARCHIVE or given with --files-from. The
known best length penalty (from the fairseq/allenai papers and the Hugging Face
ports) is written into generation_config.json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from fsmt_port.cli import run_cli
from fsmt_port.fairseq.convert import convert
from fsmt_port.errors import ConfigError, MissingFileError


@dataclass(frozen=True)
class Recipe:
    archive: str  # folder name once extracted
    checkpoint: str
    src: str
    tgt: str
    length_penalty: float
    companion: str | None = None  # archive that ships the dictionaries / bpecodes, if not this one
    url: str = ""


FAIRSEQ = "https://dl.fbaipublicfiles.com/fairseq/models/"
ALLENAI = "https://github.com/jungokasai/deep-shallow"
RECIPES = {
    "wmt19-en-de": Recipe("wmt19.en-de.joined-dict.ensemble", "model4.pt", "en", "de", 1.0,
                          url=FAIRSEQ + "wmt19.en-de.joined-dict.ensemble.tar.gz"),
    "wmt19-de-en": Recipe("wmt19.de-en.joined-dict.ensemble", "model4.pt", "de", "en", 1.1,
                          url=FAIRSEQ + "wmt19.de-en.joined-dict.ensemble.tar.gz"),
    "wmt19-en-ru": Recipe("wmt19.en-ru.ensemble", "model4.pt", "en", "ru", 1.15,
                          url=FAIRSEQ + "wmt19.en-ru.ensemble.tar.gz"),
    "wmt19-ru-en": Recipe("wmt19.ru-en.ensemble", "model4.pt", "ru", "en", 1.1,
                          url=FAIRSEQ + "wmt19.ru-en.ensemble.tar.gz"),
    "wmt16-en-de-12-1": Recipe("trans_ende_12-1_0.2", "checkpoint_top5_average.pt", "en", "de", 0.8,
                               companion="wmt16.en-de.deep-shallow", url=ALLENAI),
    "wmt16-en-de-dist-12-1": Recipe("trans_ende-dist_12-1_0.2", "checkpoint_top5_average.pt", "en", "de", 0.6,
                                    companion="wmt16.en-de.deep-shallow.dist", url=ALLENAI),
    "wmt16-en-de-dist-6-1": Recipe("trans_ende-dist_6-1_0.2", "checkpoint_top5_average.pt", "en", "de", 0.6,
                                   companion="wmt16.en-de.deep-shallow.dist", url=ALLENAI),
    "wmt19-de-en-6-6-base": Recipe("wmt19_deen_base_dr0.1_1", "checkpoint_last3_avg.pt", "de", "en", 0.6,
                                   companion="wmt19.de-en", url=ALLENAI),
    "wmt19-de-en-6-6-big": Recipe("wmt19_deen_big_dr0.1_2", "checkpoint_last3_avg.pt", "de", "en", 0.6,
                                  companion="wmt19.de-en", url=ALLENAI),
}
TARBALLS = (".tar.gz", ".tgz", ".tar.bz2", ".tar")


@dataclass(frozen=True)
class LMRecipe:
    """A fairseq ``transformer_lm`` archive (model.pt + dict.txt + bpecodes)."""

    archive: str
    lang: str  # the language of its text (documentation; the moses rules are fairseq's hub default)
    checkpoint: str = "model.pt"
    url: str = ""


#: The WMT19 language models of the noisy-channel systems (fairseq ``transformer_lm.wmt19.{en,de,ru}``).
#: fairseq's hub loads them with ``tokenizer="moses"`` and no language, i.e. MosesTokenizerConfig's
#: default source_lang "en" for all three; we tokenize exactly so (``--lang en``).
LM_RECIPES = {
    f"wmt19-lm-{lang}": LMRecipe(f"wmt19.{lang}", lang, url=FAIRSEQ + f"lm/wmt19.{lang}.tar.gz")
    for lang in ("en", "de", "ru")
}
#: Noisy-channel reranking of each WMT19 direction: the reverse direction as the channel model
#: (``--score-model1 ... --backwards1``) and the target-side LM (``--language-model``).
NOISY_CHANNEL = {
    "wmt19-en-de": {"channel": "wmt19-de-en", "lm": "wmt19-lm-de"},
    "wmt19-de-en": {"channel": "wmt19-en-de", "lm": "wmt19-lm-en"},
    "wmt19-en-ru": {"channel": "wmt19-ru-en", "lm": "wmt19-lm-ru"},
    "wmt19-ru-en": {"channel": "wmt19-en-ru", "lm": "wmt19-lm-en"},
}


@contextlib.contextmanager
def opened_archive(recipe: Recipe, path: Path, checkpoint: str) -> Iterator[Path]:
    """The folder holding ``checkpoint``: ``path`` itself, ``path/<archive name>``, or an extracted tarball."""
    if path.is_file() and path.name.endswith(TARBALLS):
        with tempfile.TemporaryDirectory(prefix="fsmt_recipe_") as tmp:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")  # no absolute paths, links out, or devices
            found = sorted(Path(tmp).rglob(checkpoint))
            if not found:
                raise MissingFileError(f"{path}: the tarball has no {checkpoint}; is it the {recipe.archive} archive?")
            yield found[0].parent
        return
    for folder in (path, path / recipe.archive):
        if (folder / checkpoint).is_file():
            yield folder
            return
    raise MissingFileError(f"{path}: no {checkpoint} in it or in {path / recipe.archive}; give the extracted "
                           f"{recipe.archive} folder (download: {recipe.url})")


def find_file(names: list[str], folders: list[Path]) -> Path | None:
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def archive_files(recipe: Recipe, folder: Path, original: Path, files_from: Path | None) -> dict[str, Path]:
    """dict.SRC.txt, dict.TGT.txt and bpecodes, from the archive or its companion."""
    roots = [folder] + ([files_from] if files_from else [])
    if recipe.companion:
        roots += [p / recipe.companion for p in dict.fromkeys([folder.parent, original.parent, original])]
    searched = [d for root in roots for d in (root, root / "data-bin")]
    wanted = {"src_dict": [f"dict.{recipe.src}.txt"], "tgt_dict": [f"dict.{recipe.tgt}.txt"],
              "bpecodes": ["bpecodes", "code"]}
    files, missing = {}, []
    for key, names in wanted.items():
        found = find_file(names, searched)
        if found is None:
            missing.append(names[0])
        else:
            files[key] = found
    if missing:
        where = (f"; this family ships them in the {recipe.companion} archive: extract it next to {folder.name} "
                 "or pass --files-from" if recipe.companion else "; pass --files-from FOLDER")
        raise MissingFileError(f"{folder}: {', '.join(missing)} not found{where}")
    return files


def convert_recipe(name: str, archive: str | Path, output_dir: str | Path, *, checkpoint: str | None = None,
                   files_from: str | Path | None = None, force: bool = False, dtype: str = "keep") -> Path:
    if name in LM_RECIPES:
        return convert_lm_recipe(name, archive, output_dir, force=force, dtype=dtype)
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}, {', '.join(LM_RECIPES)}")
    recipe = RECIPES[name]
    checkpoint = checkpoint or recipe.checkpoint
    archive = Path(archive)
    with opened_archive(recipe, archive, checkpoint) as folder:
        files = archive_files(recipe, folder, archive, Path(files_from) if files_from else None)
        return convert(folder / checkpoint, output_dir, src_lang=recipe.src, tgt_lang=recipe.tgt,
                       src_dict=str(files["src_dict"]), tgt_dict=str(files["tgt_dict"]),
                       bpecodes=str(files["bpecodes"]), force=force, storage_dtype=dtype,
                       generation_overrides={"length_penalty": recipe.length_penalty})


def convert_lm_recipe(name: str, archive: str | Path, output_dir: str | Path, *, force: bool = False,
                      dtype: str = "keep") -> Path:
    recipe = LM_RECIPES[name]
    archive = Path(archive)
    as_recipe = Recipe(recipe.archive, recipe.checkpoint, recipe.lang, recipe.lang, 1.0, url=recipe.url)
    with opened_archive(as_recipe, archive, recipe.checkpoint) as folder:
        dictionary = find_file(["dict.txt"], [folder])
        codes = find_file(["bpecodes", "code"], [folder])
        if dictionary is None or codes is None:
            raise MissingFileError(f"{folder}: dict.txt and bpecodes must be next to {recipe.checkpoint}")
        return convert(folder / recipe.checkpoint, output_dir, tgt_dict=str(dictionary), bpecodes=str(codes),
                       lang="en", tokenizer="moses", force=force, storage_dtype=dtype)


def recipes_table() -> str:
    lines = ["| recipe | archive | checkpoint | pair | length_penalty | dictionaries from |", "|---|---|---|---|---:|---|"]
    lines += [f"| {n} | {r.archive} | {r.checkpoint} | {r.src}-{r.tgt} | {r.length_penalty} | "
              f"{r.companion or 'the archive'} |" for n, r in RECIPES.items()]
    lines += [f"| {n} | {r.archive} | {r.checkpoint} | {r.lang} (language model) | | the archive |"
              for n, r in LM_RECIPES.items()]
    lines += ["", "| noisy-channel reranking of | channel model (--backwards1) | language model |", "|---|---|---|"]
    lines += [f"| {n} | {r['channel']} | {r['lm']} |" for n, r in NOISY_CHANNEL.items()]
    return "\n".join(lines)


class ListAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(recipes_table())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python convert/recipes.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action=ListAction, help="print the known recipes and exit")
    parser.add_argument("recipe", choices=list(RECIPES) + list(LM_RECIPES), metavar="RECIPE",
                        help="one of: " + ", ".join(list(RECIPES) + list(LM_RECIPES)))
    parser.add_argument("archive", metavar="ARCHIVE", help="extracted archive folder, its parent, or the tarball")
    parser.add_argument("output_dir", metavar="OUT_DIR", help="converted model folder to write")
    options = parser.add_argument_group("options")
    options.add_argument("--checkpoint", default=None,
                         help="checkpoint file inside the archive (default: the recipe's, e.g. model4.pt)")
    options.add_argument("--files-from", default=None,
                         help="folder with dict.*.txt and bpecodes when the archive lacks them (default: the "
                              "archive, then its companion archive next to it)")
    options.add_argument("--dtype", default="keep", choices=["keep", "fp32", "fp16", "bf16"],
                         help="storage dtype of model.safetensors (default: %(default)s)")
    options.add_argument("--force", action="store_true", help="replace an existing OUT_DIR (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        out = convert_recipe(args.recipe, args.archive, args.output_dir, checkpoint=args.checkpoint,
                             files_from=args.files_from, force=args.force, dtype=args.dtype)
        what = (f"length_penalty {RECIPES[args.recipe].length_penalty}" if args.recipe in RECIPES
                else "language model")
        print(f"wrote {out} ({what})", file=sys.stderr)

    return run_cli(job)


if __name__ == "__main__":
    sys.exit(main())
